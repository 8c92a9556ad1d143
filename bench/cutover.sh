#!/bin/bash
# bench/cutover.sh - case 7 of bench/run.sh: the cutover of a live ext4 with
# and without change tracking, in the same run. For each size, a sparse
# file on tmpfs behind a loop device holds an ext4 with that much in use
# (random data, at most 256 MiB and half of it, the rest fallocated: the
# bitmaps say used, so a rescan reads and hashes all of it), mounted, and
# a writer changes it
# (an append-only log fsynced every 5 ms, a 64 KiB file fsynced every 20
# lines). `ferry migrate --sync-interval 2s --freeze` runs twice to fresh
# destinations: tracked (the default) and --no-track (every pass hashes
# every used chunk, as before). After two incremental passes SIGUSR1 cuts
# over. Recorded: the freeze (ms), the final pass's bytes read and sent
# and seconds, the incremental passes' seconds; every destination must
# pass e2fsck -fn.
#
#   bench/cutover.sh FERRY FERRY_INIT WORKDIR OUT.md SIZES_MIB...
#
# Writes the body of a markdown section to OUT.md (bench/report.py puts
# it under case 7 of bench/RESULTS.md) and one line per run on stdout
# ("cutover: ..."); exits 1 if a run failed. Needs root (loop, mount,
# freeze) and runs in a private mount namespace.
set -uo pipefail
if [ "${FERRY_IN_NS:-}" != 1 ] && command -v unshare >/dev/null; then
	FERRY_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
FERRY=$1 FERRY_INIT=$2 W=$3 OUTMD=$4
shift 4
SIZES=("$@")
PY=${PYTHON:-python3}
TAG=cutover
say() { printf '%s: %s\n' "$TAG" "$*"; }
mkdir -p "$W"
REC=$W/cutover.jsonl
: >"$REC"
fails=0
loop='' writer='' agent='' serve=''
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	[ -n "$serve" ] && kill "$serve" 2>/dev/null
	[ -n "$writer" ] && kill "$writer" 2>/dev/null
	fsfreeze -u "$W/mnt" 2>/dev/null
	umount "$W/mnt" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT

# field FILE EVENT KEY: the key of the last event of that kind.
field() {
	"$PY" - "$@" <<'PY'
import json, sys
v = None
for l in open(sys.argv[1]):
    try:
        o = json.loads(l)
    except ValueError:
        continue
    if o.get("event") == sys.argv[2] and sys.argv[3] in o:
        v = o[sys.argv[3]]
print("" if v is None else v)
PY
}

# one MIB MODE: a migration with a cutover; appends a record.
one() {
	local mib=$1 mode=$2 lb=$W/c7-$1-$2 token port i n rc=0 extra=()
	[ "$mode" = rescan ] && extra=(--no-track)
	rm -f "$lb.dst"
	truncate -s "$((mib + 2048))M" "$lb.dst"
	token=$("$FERRY" token)
	: >"$lb.result"
	timeout -k 5 1800 "$FERRY_INIT" serve --listen 127.0.0.1:0 --token "$token" \
		--disk "vda=$lb.dst" --once --result "$lb.result" >"$lb.recv.log" 2>&1 &
	serve=$!
	for i in $(seq 1 200); do
		port=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$lb.result")
		[ -n "$port" ] && break
		sleep 0.05
	done
	# Not under timeout: SIGUSR1 must reach ferry itself.
	"$FERRY" migrate --to "127.0.0.1:$port" --token "$token" --disk "$loop=vda" \
		--sync-interval 2s --freeze --freeze-timeout 600 --ignore-check --json \
		--state-dir "$lb.st" "${extra[@]}" >"$lb.json" 2>"$lb.err" &
	agent=$!
	# The first pass, then two incremental ones.
	for i in $(seq 1 18000); do
		n=$(grep -c '"event":"pass"' "$lb.json")
		[ "$n" -ge 2 ] && break
		[ "$i" = 18000 ] && kill "$agent"
		kill -0 "$agent" 2>/dev/null || break
		sleep 0.1
	done
	kill -USR1 "$agent" 2>/dev/null
	wait "$agent" || rc=$?
	agent=''
	wait "$serve"
	serve=''
	local err=''
	if [ "$rc" != 0 ]; then
		err="migrate exited $rc: $(tail -n 2 "$lb.err" | tr '\n"' '  ')"
	elif ! e2fsck -fn "$lb.dst" >"$lb.fsck" 2>&1; then
		err="e2fsck -fn of the destination: $(tail -n 2 "$lb.fsck" | tr '\n"' '  ')"
	fi
	"$PY" - "$lb.json" "$mib" "$mode" "$err" >>"$REC" <<'PY'
import json, sys
path, mib, mode, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ev = []
for l in open(path):
    try:
        ev.append(json.loads(l))
    except ValueError:
        pass
passes = [o for o in ev if o.get("event") == "pass"]
summ = [o for o in ev if o.get("event") == "summary"]
frz = [o for o in ev if o.get("event") == "freeze"]
plan = [o for o in ev if o.get("event") == "plan"]
s = summ[-1] if summ else {}
print(json.dumps({
    "mib": mib, "mode": mode, "err": err,
    "used": plan[0]["send"] if plan else None,
    "freeze_ms": frz[-1]["ms"] if frz else None,
    "final_read": s.get("final_bytes_read"), "final_sent": s.get("final_bytes_sent"),
    "final_secs": s.get("final_seconds"),
    "inc_secs": [p["seconds"] for p in passes if p["pass"] >= 2],
    "inc_read": [p["bytes_read"] for p in passes if p["pass"] >= 2],
}))
PY
	if [ -n "$err" ]; then
		fails=$((fails + 1))
		say "FAIL $mib MiB $mode: $err"
	else
		say "$mib MiB $mode: frozen $(field "$lb.json" freeze ms) ms, final pass read $(field "$lb.json" summary final_bytes_read) bytes in $(field "$lb.json" summary final_seconds) s"
	fi
	rm -f "$lb.dst"
}

for mib in "${SIZES[@]}"; do
	img=$W/c7-src-$mib.img
	rm -f "$img"
	truncate -s "$((mib + 2048))M" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$img" >/dev/null ||
		{ say "FAIL mkfs"; fails=$((fails + 1)); continue; }
	loop=$(losetup -f --show "$img") || { say "FAIL losetup"; fails=$((fails + 1)); continue; }
	mkdir -p "$W/mnt"
	mount "$loop" "$W/mnt" || { say "FAIL mount"; fails=$((fails + 1)); continue; }
	mkdir -p "$W/mnt/data"
	rnd=$((mib / 2 < 256 ? mib / 2 : 256))
	head -c "${rnd}M" /dev/urandom >"$W/mnt/data/random.bin"
	fallocate -l "$(((mib - rnd) << 20))" "$W/mnt/data/fill.bin"
	sync
	"$PY" - "$W/mnt" <<'PY' &
import os, sys, time
d = sys.argv[1]
with open(os.path.join(d, "append.log"), "a") as log:
    i = 0
    while True:
        log.write("line %08d %s\n" % (i, "x" * 100))
        log.flush()
        os.fsync(log.fileno())
        if i % 20 == 0:
            with open(os.path.join(d, "data", "new%06d.bin" % i), "wb") as f:
                f.write(os.urandom(64 << 10))
                f.flush()
                os.fsync(f.fileno())
        i += 1
        time.sleep(0.005)
PY
	writer=$!
	sleep 1
	for mode in tracked rescan; do
		one "$mib" "$mode"
	done
	kill "$writer"
	wait "$writer" 2>/dev/null
	writer=''
	umount "$W/mnt"
	losetup -d "$loop"
	loop=''
	rm -f "$img"
done

"$PY" - "$REC" "$OUTMD" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def h(n):
    if n is None:
        return "—"
    n = float(n)
    for u in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or u == "GiB":
            return ("%d %s" % (n, u)) if u == "B" else ("%.1f %s" % (n, u))
        n /= 1024
L = []
L.append("A loop device over a sparse file on tmpfs holds an ext4 with the given space in use "
         "(random data, up to 256 MiB, the rest fallocated: the bitmaps say used, so a rescan reads "
         "and hashes all of it), mounted, while a writer appends a line to a log and fsyncs it "
         "every 5 ms and writes a 64 KiB file every 20 lines. `ferry migrate --sync-interval 2s "
         "--freeze`, two incremental passes, then SIGUSR1: *tracked* is the default, *rescan* "
         "is `--no-track` (every pass hashes every used chunk on both sides, as before change "
         "tracking). Both measured in the same run, one after the other on the same source; "
         "every destination passes `e2fsck -fn`.")
L.append("")
L.append("| used | mode | frozen ms | final pass s | final pass read | final pass sent | incremental passes s | ok |")
L.append("|---|---|---|---|---|---|---|---|")
for r in recs:
    L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        h(r["used"]) if r["used"] else "%d MiB" % r["mib"], r["mode"],
        r["freeze_ms"] if r["freeze_ms"] is not None else "—",
        r["final_secs"] if r["final_secs"] is not None else "—",
        h(r["final_read"]), h(r["final_sent"]),
        ", ".join("%.2f" % s for s in r["inc_secs"]) or "—",
        "yes" if not r["err"] else "**FAILED**: " + r["err"][:120]))
L.append("")
tr = {r["mib"]: r for r in recs if r["mode"] == "tracked" and not r["err"]}
rs = {r["mib"]: r for r in recs if r["mode"] == "rescan" and not r["err"]}
both = sorted(set(tr) & set(rs))
if both:
    L.append("Frozen, tracked against rescan: " + "; ".join("%s used: %s ms against %s ms" % (
        h(tr[g]["used"]), tr[g]["freeze_ms"], rs[g]["freeze_ms"]) for g in both) + ".")
    L.append("")
open(sys.argv[2], "w").write("\n".join(L) + "\n")
PY
exit $((fails > 0))
