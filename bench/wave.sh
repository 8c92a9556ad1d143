#!/bin/bash
# bench/wave.sh - case 9 of bench/run.sh: a wave of N sources to N
# destinations through Ansible on this machine, against the same N one
# after another. The real collection (contrib/ansible/ferry, built and
# installed with ansible-galaxy) and the example playbook run with
# ansible-core from Debian, ansible_connection=local; the sources are ext4
# image files, the destinations `ferry-init serve --once` on 127.0.0.1
# with file-backed disks. Each run migrates all N to the end (-e
# ferry_cutover=true: check, copy, frozen final pass, verify, hand-off):
#
#   wave      forks N, the playbook's serial 100%: every host at once;
#   serial    -e ferry_serial=1: the play runs host after host;
#   plain     `ferry migrate --checksum --freeze` N times in a row, no
#             Ansible: what the agents alone cost.
#
# Measured: wall time; the bytes the agents sent (their summary events'
# bytes_sent, summed) and the bytes the receivers applied (their logs);
# the control node's memory: ansible-playbook is sampled every 100 ms
# (/proc, its process tree): the sum of RSS and of PSS (shared pages
# counted once) of ansible-playbook and its forks (what a control node
# holds), and the PSS of the whole tree with the modules' processes (the
# AnsiballZ Python that runs on the sources in a real wave, here local);
# the agents are detached from the tree (their own session) and not
# counted. /usr/bin/time -v's largest single process is given too. Every
# destination must equal its source (cmp).
#
#   bench/wave.sh FERRY FERRY_INIT WORKDIR OUT.md N IMAGE_MIB FILES_MIB
#
# Writes the body of a markdown section to OUT.md (bench/report.py puts it
# under case 9 of bench/RESULTS.md) and "wave: ..." lines on stdout; exits
# 1 if a run failed, 77 if ansible-playbook is missing.
set -uo pipefail
FERRY=$1 FERRY_INIT=$2 W=$3 OUTMD=$4 N=$5 IMG_MIB=$6 FILES_MIB=$7
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PY=${PYTHON:-python3}
TAG=wave
say() { printf '%s: %s\n' "$TAG" "$*"; }
for t in ansible-playbook ansible-galaxy /usr/bin/time mkfs.ext4 cmp; do
	command -v "$t" >/dev/null || { say "$t not installed"; exit 77; }
done
mkdir -p "$W"
W=$(cd "$W" && pwd)
FERRY=$(realpath "$FERRY") FERRY_INIT=$(realpath "$FERRY_INIT")
REC=$W/wave.jsonl
: >"$REC"
serves=()
cleanup() {
	local p
	for p in "${serves[@]}"; do
		kill "$p" 2>/dev/null
	done
	# Agents left by a failed run (detached: no children of ours).
	for p in "$W"/*/src*/state/ansible/runs/*.pid; do
		[ -f "$p" ] || continue
		grep -q -a -- "$W" "/proc/$(cat "$p")/cmdline" 2>/dev/null && kill -9 "$(cat "$p")"
	done
	wait 2>/dev/null
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# The collection as users get it: built, installed.
export ANSIBLE_COLLECTIONS_PATH=$W/collections
export ANSIBLE_LOCAL_TEMP=$W/ansible-tmp ANSIBLE_REMOTE_TEMP=$W/ansible-tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
ansible-galaxy collection build --force --output-path "$W" "$root/contrib/ansible/ferry" \
	>"$W/galaxy.log" 2>&1 &&
	ansible-galaxy collection install --force -p "$W/collections" "$W"/ferry-migrate-*.tar.gz \
		>>"$W/galaxy.log" 2>&1 || { say "FAIL: the collection: $(tail -n 3 "$W/galaxy.log")"; exit 1; }

# The sources: one ext4 image with FILES_MIB of files, copied N times.
tree=$W/tree
mkdir -p "$tree"
"$PY" "$here/gen.py" tree "$tree" "$FILES_MIB" 20240709 >/dev/null || exit 1
truncate -s "${IMG_MIB}M" "$W/src.img"
mkfs.ext4 -q -F -b 4096 -d "$tree" "$W/src.img" || exit 1
rm -rf "$tree"
for n in $(seq 1 "$N"); do
	cp "$W/src.img" "$W/s$n.img"
done
rm -f "$W/src.img"

# serve_all DIR: fresh destinations and N receivers; sets PORTS, TOKENS.
PORTS=() TOKENS=()
serve_all() {
	local d=$1 n i port res
	PORTS=() TOKENS=() serves=()
	for n in $(seq 1 "$N"); do
		rm -f "$d/d$n.img"
		truncate -s "${IMG_MIB}M" "$d/d$n.img"
		TOKENS[n]=$("$FERRY" token)
		res=$d/d$n.result
		: >"$res"
		timeout -k 5 900 "$FERRY_INIT" serve --listen 127.0.0.1:0 --token "${TOKENS[$n]}" \
			--disk "vda=$d/d$n.img" --once --result "$res" >"$d/d$n.log" 2>&1 &
		serves[n]=$!
		port=''
		for i in $(seq 1 200); do
			port=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$res")
			[ -n "$port" ] && break
			sleep 0.05
		done
		[ -n "$port" ] || return 1
		PORTS[n]=$port
	done
}
# reap_all OK: the receivers' exit; 0 if all ended well. After a failed
# run (OK=1) they get 2 s: a receiver whose agent never came waits for ever.
reap_all() {
	local n i rc=0
	for n in $(seq 1 "$N"); do
		if [ "$1" != 0 ]; then
			for i in $(seq 1 40); do
				kill -0 "${serves[$n]}" 2>/dev/null || break
				sleep 0.05
			done
			kill "${serves[$n]}" 2>/dev/null
		fi
		wait "${serves[$n]}" || rc=1
	done
	serves=()
	return "$rc"
}

# sampler PID OUT: the control node's peak memory while PID lives.
sampler() {
	"$PY" - "$@" <<'PY'
import os, sys, time
root, out = int(sys.argv[1]), sys.argv[2]
peak = {"rss": 0, "pss": 0, "tree_pss": 0, "procs": 0}
def kib(path, key):
    try:
        with open(path) as f:
            for l in f:
                if l.startswith(key):
                    return int(l.split()[1])
    except OSError:
        pass
    return 0
while os.path.exists("/proc/%d" % root):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(p))
    tree, todo = [], [root]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(kids.get(p, []))
    rss = pss = tpss = n = 0
    for p in tree:
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        ps = kib("/proc/%d/smaps_rollup" % p, "Pss:")
        tpss += ps
        args = cmd.split(b"\0")
        # ansible-playbook and its forks: python3 .../ansible-playbook ...
        # (not time(1) around it, whose arguments name it too).
        if any(a.endswith(b"/ansible-playbook") for a in args[:2]) and \
                not args[0].endswith(b"time"):
            rss += kib("/proc/%d/status" % p, "VmRSS:")
            pss += ps
            n += 1
    peak["rss"] = max(peak["rss"], rss)
    peak["pss"] = max(peak["pss"], pss)
    peak["tree_pss"] = max(peak["tree_pss"], tpss)
    peak["procs"] = max(peak["procs"], n)
    time.sleep(0.1)
with open(out, "w") as f:
    f.write("%(rss)d %(pss)d %(tree_pss)d %(procs)d\n" % peak)
PY
}

# bytes_of DIR: the agents' bytes_sent (the last run of each host), and
# the receivers' applied DATA bytes.
bytes_of() {
	"$PY" - "$1" "$N" "$2" <<'PY'
import glob, json, os, re, sys
d, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sent = 0
for i in range(1, n + 1):
    if mode == "plain":
        files = [os.path.join(d, "a%d.json" % i)]
    else:
        files = sorted(glob.glob(os.path.join(d, "src%d/state/ansible/runs/*.ndjson" % i)))
    for path in files:
        for l in open(path):
            if l.startswith("{") and '"event":"summary"' in l:
                sent += json.loads(l)["bytes_sent"]
applied = 0
for i in range(1, n + 1):
    for l in open(os.path.join(d, "d%d.log" % i)):
        m = re.search(r": ([0-9]+) bytes of DATA applied in this session", l) or \
            re.search(r": stream [0-9]+ ended, ([0-9]+) bytes of DATA applied", l)
        if m:
            applied += int(m.group(1))
print(sent, applied)
PY
}

# run_wave MODE: wave (forks N) or serial (serial 1).
run_wave() {
	local mode=$1 d=$W/$1 n t0 rc=0 secs err='' mem
	rm -rf "$d"
	mkdir -p "$d/group_vars/wave"
	serve_all "$d" || { say "FAIL $mode: a receiver did not start"; return 1; }
	cp "$root/contrib/ansible/example/wave.yml" "$root/contrib/ansible/example/ansible.cfg" "$d/"
	{
		echo "---"
		echo "wave:"
		echo "  hosts:"
		for n in $(seq 1 "$N"); do
			echo "    src$n:"
			echo "      ferry_to: \"127.0.0.1:${PORTS[$n]}\""
			echo "      ferry_token: \"${TOKENS[$n]}\""
			echo "      ferry_disks: [\"$W/s$n.img=vda\"]"
			echo "      ferry_state_dir: \"$d/src$n/state\""
			echo "      ferry_agent_path: \"$d/src$n/bin/ferry\""
		done
		echo "  vars:"
		echo "    ansible_connection: local"
		echo "    ansible_python_interpreter: /usr/bin/python3"
		echo "    ferry_agent_src: \"$FERRY\""
		echo "    ferry_handoff: poweroff"
	} >"$d/inventory.yml"
	for n in $(seq 1 "$N"); do
		mkdir -p "$d/src$n/bin"
	done
	local extra=()
	[ "$mode" = serial ] && extra=(-e ferry_serial=1)
	t0=$(now)
	(cd "$d" && ANSIBLE_LOG_PATH=$d/ansible.log exec /usr/bin/time -v -o "$d/time.txt" ansible-playbook --forks "$N" \
		-e ferry_cutover=true "${extra[@]}" wave.yml) >"$d/play.log" 2>&1 &
	local ppid=$!
	sampler "$ppid" "$d/mem.txt" &
	local spid=$!
	wait "$ppid" || rc=$?
	secs=$(elapsed "$t0")
	wait "$spid"
	reap_all "$rc" || err="a receiver failed"
	[ "$rc" = 0 ] || err="ansible-playbook exited $rc: $(grep -E 'FAILED|fatal|resume ' "$d/play.log" | head -n 3 | tr '\n"' '  ')"
	for n in $(seq 1 "$N"); do
		cmp -s "$W/s$n.img" "$d/d$n.img" || { err=${err:-"d$n differs from s$n"}; break; }
	done
	mem=$(cat "$d/mem.txt" 2>/dev/null)
	record "$mode" "$secs" "$(bytes_of "$d" "$mode")" "$mem" \
		"$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$d/time.txt")" \
		"$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$d/time.txt")" "$err"
}

# run_plain: the same N, ferry alone, one after another.
run_plain() {
	local d=$W/plain n t0 rc=0 secs err=''
	rm -rf "$d"
	mkdir -p "$d"
	serve_all "$d" || { say "FAIL plain: a receiver did not start"; return 1; }
	t0=$(now)
	for n in $(seq 1 "$N"); do
		"$FERRY" migrate --to "127.0.0.1:${PORTS[$n]}" --token "${TOKENS[$n]}" \
			--disk "$W/s$n.img=vda" --checksum --freeze --handoff poweroff \
			--state-dir "$d/st$n" --json >"$d/a$n.json" 2>"$d/a$n.err" ||
			{ rc=$?; err="ferry migrate $n exited $rc: $(tail -n 2 "$d/a$n.err" | tr '\n"' '  ')"; break; }
	done
	secs=$(elapsed "$t0")
	reap_all "$rc" || err=${err:-"a receiver failed"}
	for n in $(seq 1 "$N"); do
		cmp -s "$W/s$n.img" "$d/d$n.img" || { err=${err:-"d$n differs from s$n"}; break; }
	done
	record plain "$secs" "$(bytes_of "$d" plain)" "" "" "" "$err"
}

# record MODE SECS "SENT APPLIED" "RSS PSS TREE_PSS PROCS" MAXRSS CPU ERR
record() {
	"$PY" - "$@" >>"$REC" <<'PY'
import json, sys
mode, secs, by, mem, maxrss, cpu, err = sys.argv[1:8]
sent, applied = (int(x) for x in by.split()) if by.strip() else (None, None)
m = [int(x) for x in mem.split()] if mem.strip() else [None] * 4
print(json.dumps({"mode": mode, "secs": float(secs), "sent": sent, "applied": applied,
                  "rss_kib": m[0], "pss_kib": m[1], "tree_pss_kib": m[2], "procs": m[3],
                  "maxrss_kib": int(maxrss) if maxrss else None,
                  "cpu": float(cpu) if cpu else None, "err": err}))
PY
	if [ -n "$7" ]; then
		say "FAIL $1: $7"
	else
		say "$1: ${2} s, sent/applied $3 bytes, control node rss/pss/tree-pss/procs (KiB) ${4:--}"
	fi
}

fails=0
for mode in wave serial plain; do
	if [ "$mode" = plain ]; then
		run_plain || fails=$((fails + 1))
	else
		run_wave "$mode" || fails=$((fails + 1))
	fi
done
grep -q '"err": "[^"]' "$REC" && fails=$((fails + 1))

# The section's body.
"$PY" - "$REC" "$N" "$IMG_MIB" "$FILES_MIB" "$(ansible-playbook --version | head -n 1)" >"$OUTMD" <<'PY'
import json, sys
recs = {r["mode"]: r for r in (json.loads(l) for l in open(sys.argv[1]))}
n, img, files, ver = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def mib(b):
    return "—" if b is None else "%.1f MiB" % (b / 1048576.0)
def kib(k):
    return "—" if k is None else "%.1f MiB" % (k / 1024.0)
L = []
L.append("%d sources (ext4 images of %d MiB, %d MiB of files each) to %d `ferry-init serve` "
         "receivers on 127.0.0.1, migrated to the end (check, copy, frozen final pass, "
         "`--checksum` verify, hand-off) by the example playbook of the collection with %s, "
         "`ansible_connection=local`. *wave*: `--forks %d`, every host at once; *serial*: "
         "`-e ferry_serial=1`, the play runs host after host; *plain*: `ferry migrate "
         "--checksum --freeze` %d times in a row, no Ansible. *Sent*: the agents' "
         "`bytes_sent`; *applied*: the DATA the receivers wrote. *Control node*: "
         "ansible-playbook and its forks, sampled every 100 ms from /proc: peak of the summed "
         "RSS and of the summed PSS (shared pages counted once); *with modules*: PSS of its "
         "whole process tree, the modules' Python included (in a real wave that runs on the "
         "sources); the agents run detached and are not counted. *Largest process*: "
         "`/usr/bin/time -v`. Every destination equals its source." % (n, img, files, n, ver, n, n))
L.append("")
L.append("| run | wall s | sent | applied | control node RSS | PSS | PSS with modules | "
         "largest process | ansible CPU s | ok |")
L.append("|---|---|---|---|---|---|---|---|---|---|")
for mode in ("wave", "serial", "plain"):
    r = recs.get(mode)
    if not r:
        continue
    L.append("| %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        mode, r["secs"], mib(r["sent"]), mib(r["applied"]), kib(r["rss_kib"]),
        kib(r["pss_kib"]), kib(r["tree_pss_kib"]), kib(r["maxrss_kib"]),
        "—" if r["cpu"] is None else "%.1f" % r["cpu"], "yes" if not r["err"] else
        "**FAILED**: " + r["err"]))
L.append("")
w, s, p = recs.get("wave"), recs.get("serial"), recs.get("plain")
out = []
if w and s and not w["err"] and not s["err"]:
    out.append("the wave took **%.2f x** the time of the same %d one after another through "
               "Ansible (%.1f s against %.1f s) and sent %.3f x the bytes; its control node "
               "peaked at %.2f x the PSS of the serial run (%s against %s, %d against %d "
               "ansible-playbook processes)" % (
                   w["secs"] / s["secs"], n, w["secs"], s["secs"],
                   w["sent"] / float(s["sent"]) if s["sent"] else float("nan"),
                   w["pss_kib"] / float(s["pss_kib"]) if s["pss_kib"] else float("nan"),
                   kib(w["pss_kib"]), kib(s["pss_kib"]), w["procs"], s["procs"]))
if w and p and not w["err"] and not p["err"]:
    out.append("against ferry alone one after another: %.2f x the time (%.1f s against "
               "%.1f s)" % (w["secs"] / p["secs"], w["secs"], p["secs"]))
if s and p and not s["err"] and not p["err"]:
    out.append("Ansible's own cost, host after host: %.1f s over ferry alone (%.1f s a host)"
               % (s["secs"] - p["secs"], (s["secs"] - p["secs"]) / n))
if out:
    L.append("Ratios: " + "; ".join(out) + ".")
    L.append("")
sys.stdout.write("\n".join(L) + "\n")
PY
cat "$OUTMD"
[ "$fails" = 0 ]
