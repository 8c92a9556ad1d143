#!/bin/bash
# The Ansible collection (contrib/ansible): its static checks
# (contrib/ansible/tests/sanity.sh), then a real wave with ansible-core from
# Debian: 4 sources (image files, ansible_connection=local) to 4 receivers
# (ferry-init serve on 127.0.0.1), tokens in Ansible Vault, the example
# playbook and ansible.cfg as a user copies them.
#  0. --check: the real `ferry check` runs where the agent is, nothing is
#     copied, started or written: destinations and sources unchanged, no
#     state; the report lists every host. The boot_config role writes each
#     destination's PXE entry and kernel command line with its token.
#  1. The wave starts; mid-copy one destination (d4) is killed -9 and so is
#     ansible-playbook (the control node dies). The other agents go on.
#  2. Re-run with the cutover: hosts 1-3 are picked up (attached to their
#     running agents: no new run, nothing sent again), cut over and are
#     identical; host 4 fails alone, listed with its error and the command
#     that resumes it; the run exits non-zero.
#  3. d4 back (same disk, same token), re-run: host 4 resumes through
#     ferry's state and sends less than its data; all identical; exit 0.
# The tokens never appear in ansible's output or the report.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../host.sh"
q_need "$FERRY" "$FERRY_INIT" mkfs.ext4 mkfs.vfat sfdisk python3 setsid
command -v ansible-playbook >/dev/null ||
	q_skip "ansible-core is not installed (scripts/deps.sh installs it)"
for t in ansible-galaxy ansible-test ansible-lint ansible-vault yamllint pycodestyle; do
	command -v "$t" >/dev/null || q_skip "$t is not installed (scripts/deps.sh installs it)"
done

A=$Q_TOP/contrib/ansible
N=4
W=$Q_TMP/wave

# Detached agents are no children of this script: stop any left at exit;
# set +e in the trap, or the failing (exit $rc) would skip lib.sh's cleanup
# (SIGKILL: an agent waiting to reconnect does not act on SIGTERM).
w_cleanup() {
	local f pid
	for f in "$Q_TMP"/src*/state/ansible/runs/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		grep -q -a -- "$Q_TMP" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	done
	return 0
}
trap 'rc=$?; set +e; w_cleanup; (exit $rc); _q_exit' EXIT

bash "$A/tests/sanity.sh" "$Q_TMP/sanity" || q_fail "the collection's static checks failed"
export ANSIBLE_COLLECTIONS_PATH=$Q_TMP/sanity/collections
export ANSIBLE_LOCAL_TEMP=$Q_TMP/ansible-tmp ANSIBLE_REMOTE_TEMP=$Q_TMP/ansible-tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_HOST_KEY_CHECKING=False
# Every run's output with timestamps, kept with the logs of a failed case.
export ANSIBLE_LOG_PATH=$Q_TMP/ansible.log

# serve N PORT: receiver N on 127.0.0.1:PORT (0: any) with disk dN.img and
# token TOKEN[N]; sets PORT[N], SPID[N], SLOG[N].
declare -a PORT SPID SLOG TOKEN
serve() {
	local n=$1 res=$Q_TMP/d$1.$RANDOM.result
	SLOG[n]=${res%.result}.log
	: >"$res"
	"$FERRY_INIT" serve --listen "127.0.0.1:$2" --token "${TOKEN[$n]}" --result "$res" --once \
		--disk "vda=$Q_TMP/d$n.img" >"${SLOG[$n]}" 2>&1 &
	SPID[n]=$!
	Q_PIDS+=("${SPID[$n]}")
	for _ in $(seq 1 100); do
		PORT[n]=$(sed -n 's/^FERRY READY port=\([0-9]*\).*/\1/p' "$res")
		[ -n "${PORT[$n]}" ] && return 0
		kill -0 "${SPID[$n]}" 2>/dev/null || q_fail "receiver $n exited: $(cat "${SLOG[$n]}")"
		sleep 0.05
	done
	q_fail "receiver $n did not listen: $(cat "${SLOG[$n]}")"
}

# Sources: three layouts, 64 MiB each; host 4 has the most data and a
# lower bandwidth cap, so it is still copying when its destination dies.
layouts=(x gpt mbr bare bare)
data=(x 16 20 20 28)
for n in $(seq 1 $N); do
	h_mkdisk "${layouts[$n]}" "$Q_TMP/s$n.img" 64 "${data[$n]}"
	truncate -s 64M "$Q_TMP/d$n.img"
	TOKEN[n]=$("$FERRY" token)
	serve "$n" 0
	mkdir -p "$Q_TMP/src$n/bin"
done

# The wave directory: the example's playbook and ansible.cfg, this
# machine's inventory, the tokens in a vault.
mkdir -p "$W/group_vars/wave"
cp "$A/example/wave.yml" "$A/example/ansible.cfg" "$W/"
{
	echo "---"
	echo "wave:"
	echo "  hosts:"
	for n in $(seq 1 $N); do
		echo "    src$n:"
		echo "      ferry_to: \"127.0.0.1:${PORT[$n]}\""
		echo "      ferry_disks: [\"$Q_TMP/s$n.img=vda\"]"
		echo "      ferry_state_dir: \"$Q_TMP/src$n/state\""
		echo "      ferry_agent_path: \"$Q_TMP/src$n/bin/ferry\""
		echo "      ferry_dest_mac: \"52:54:00:00:00:0$n\""
	done
	echo "      ferry_bwlimit: 3M" # src4, the last host: slow
	echo "  vars:"
	echo "    ansible_connection: local"
	echo "    ansible_python_interpreter: /usr/bin/python3"
} >"$W/inventory.yml"
cat >"$W/group_vars/wave/vars.yml" <<EOF
---
ferry_agent_src: "$FERRY"
ferry_token: "{{ vault_ferry_tokens[inventory_hostname] }}"
ferry_sync_interval: 5s
ferry_checksum: true
ferry_streams: 1
ferry_bwlimit: 24M
ferry_flush_every: 2
ferry_retries: 0
EOF
{
	echo "---"
	echo "vault_ferry_tokens:"
	for n in $(seq 1 $N); do
		echo "  src$n: ${TOKEN[$n]}"
	done
} >"$W/group_vars/wave/vault.yml"
echo "wave-test-$RANDOM" >"$Q_TMP/vault-pass"
ansible-vault encrypt --vault-password-file "$Q_TMP/vault-pass" "$W/group_vars/wave/vault.yml" \
	>/dev/null 2>&1 || q_fail "ansible-vault encrypt failed"
head -c 14 "$W/group_vars/wave/vault.yml" | grep -q -F 'ANSIBLE_VAULT' || q_fail "the vault is not encrypted"

play() { # LOG ARGS...: ansible-playbook in the wave directory
	local log=$1
	shift
	(cd "$W" && ansible-playbook --vault-password-file "$Q_TMP/vault-pass" "$@") >"$log" 2>&1
}
report() { # FIELD HOST: a field of a host's row in the report
	python3 - "$W/ferry-wave.json" "$@" <<'PY'
import json, sys
rows = {r["host"]: r for r in json.load(open(sys.argv[1]))["hosts"]}
print(rows[sys.argv[3]][sys.argv[2]])
PY
}
report_lists_all() { # STEP
	python3 - "$W/ferry-wave.json" "$W/ferry-wave.csv" "$N" <<'PY' || q_fail "$1: the report does not list every host"
import csv, json, sys
n = int(sys.argv[3])
want = ["src%d" % i for i in range(1, n + 1)]
assert [r["host"] for r in json.load(open(sys.argv[1]))["hosts"]] == want
assert [r["host"] for r in csv.DictReader(open(sys.argv[2]))] == want
PY
}
no_token_in() { # FILE...
	local n f
	for n in $(seq 1 $N); do
		for f in "$@"; do
			! grep -q -- "${TOKEN[$n]}" "$f" || q_fail "the token of src$n is in $f"
		done
	done
}
runs_of() { find "$Q_TMP/src$1/state/ansible/runs/" -name '[0-9]*.json' 2>/dev/null | wc -l; }
digests() { for n in $(seq 1 $N); do md5sum "$Q_TMP/s$n.img" "$Q_TMP/d$n.img"; done; }

# 0. Check mode. The agent is already on sources 1 and 2 (the real check
# runs there); on 3 and 4 it would be copied.
t0=$(q_now)
cp "$FERRY" "$Q_TMP/src1/bin/ferry"
cp "$FERRY" "$Q_TMP/src2/bin/ferry"
before=$(digests)
play "$Q_TMP/check.log" --check -v -e ferry_cutover=true wave.yml ||
	q_fail "0: check mode failed: $(tail -n 30 "$Q_TMP/check.log")"
[ "$(digests)" = "$before" ] || q_fail "0: check mode changed a source or destination disk"
for n in 3 4; do
	[ ! -e "$Q_TMP/src$n/bin/ferry" ] || q_fail "0: check mode copied the agent to src$n"
done
for n in $(seq 1 $N); do
	[ ! -e "$Q_TMP/src$n/state" ] || q_fail "0: check mode wrote $Q_TMP/src$n/state"
done
c=$(grep -c 'TLS handshake and token valid' "$Q_TMP/check.log" || true)
[ "$c" -ge 2 ] || q_fail "0: the real ferry check did not reach the destinations ($c)"
grep -q 'FERRY WAVE' "$Q_TMP/check.log" || q_fail "0: no wave table from the callback"
report_lists_all 0
no_token_in "$Q_TMP/check.log" "$W/ferry-wave.json" "$W/ferry-wave.csv"
# The module alone: ferry status of a destination, the token from the vault.
(cd "$W" && ansible src1 --vault-password-file "$Q_TMP/vault-pass" -m ferry.migrate.agent \
	-a "command=status to={{ ferry_to }} token={{ ferry_token }} agent=$FERRY") >"$Q_TMP/status.log" 2>&1 ||
	q_fail "0: ferry.migrate.agent command=status failed: $(tail -n 20 "$Q_TMP/status.log")"
grep -q '"state": "waiting"' "$Q_TMP/status.log" || q_fail "0: status did not report the destination waiting"
no_token_in "$Q_TMP/status.log"
# The destinations' boot entries from the same inventory.
(cd "$W" && ansible-playbook --vault-password-file "$Q_TMP/vault-pass" ferry.migrate.boot_config \
	--limit src1,src4 -e "ferry_boot_dir=$Q_TMP/tftp") >"$Q_TMP/boot.log" 2>&1 ||
	q_fail "0: boot_config failed: $(tail -n 20 "$Q_TMP/boot.log")"
[ ! -e "$Q_TMP/tftp/src2.cmdline" ] || q_fail "0: boot_config wrote outside --limit"
for n in 1 4; do
	grep -q "ferry.token=${TOKEN[$n]} ferry.listen=:443 ip=dhcp" "$Q_TMP/tftp/src$n.cmdline" ||
		q_fail "0: src$n.cmdline lacks its token"
	grep -q "APPEND .*ferry.token=${TOKEN[$n]}" "$Q_TMP/tftp/pxelinux.cfg/01-52-54-00-00-00-0$n" ||
		q_fail "0: the pxelinux entry of src$n lacks its token"
	grep -q "^kernel vmlinuz .*ferry.token=${TOKEN[$n]}" "$Q_TMP/tftp/src$n.ipxe" ||
		q_fail "0: src$n.ipxe lacks its token"
done
rm -f "$Q_TMP/src1/bin/ferry" "$Q_TMP/src2/bin/ferry"
q_log "0: check mode changed nothing, the report lists $N hosts ($(q_elapsed "$t0") s)"

# 1. The wave; d4 and the control node die while d4 is copying.
t0=$(q_now)
setsid ansible-playbook --version >/dev/null # setsid works here
(cd "$W" && exec setsid ansible-playbook --vault-password-file "$Q_TMP/vault-pass" wave.yml) \
	>"$Q_TMP/run1.log" 2>&1 &
ctl=$!
ev4=$Q_TMP/src4/state/ansible/runs/1.ndjson
python3 - "$ev4" <<'PY' || q_fail "1: src4 never got half way: $(tail -n 5 "$Q_TMP/run1.log")"
import json, os, sys, time
end = time.time() + 90
while time.time() < end:
    send = durable = 0
    if os.path.exists(sys.argv[1]):
        for l in open(sys.argv[1]):
            if l.startswith("{"):
                try:
                    e = json.loads(l)
                except ValueError:
                    continue
                if e["event"] == "plan":
                    send += e["send"]
                if e["event"] == "flush":
                    durable = e["durable"]
    if send and durable >= send * 0.45:
        if durable >= send:
            sys.exit("src4 finished before the kill")
        print(durable, send)
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
kill -9 "${SPID[4]}"
kill -0 "$ctl" 2>/dev/null || q_fail "1: ansible-playbook ended before the control node could die"
kill -9 -- "-$ctl" 2>/dev/null || kill -9 "$ctl"
rc=0
wait "$ctl" || rc=$?
[ "$rc" = 137 ] || q_fail "1: ansible-playbook was not killed (exit $rc)"
wait "${SPID[4]}" 2>/dev/null || true
for n in 1 2 3; do
	pid=$(cat "$Q_TMP/src$n/state/ansible/runs/1.pid" 2>/dev/null) ||
		q_fail "1: src$n's agent was not started before the control node died"
	grep -q ferry "/proc/$pid/cmdline" 2>/dev/null || q_fail "1: src$n's agent died with the control node"
done
for _ in $(seq 1 100); do
	[ -s "$Q_TMP/src4/state/ansible/runs/1.rc" ] && break
	sleep 0.1
done
[ "$(cat "$Q_TMP/src4/state/ansible/runs/1.rc" 2>/dev/null)" = 1 ] ||
	q_fail "1: src4's agent did not fail when its destination died"
q_log "1: d4 and the control node killed mid-copy; agents 1-3 go on ($(q_elapsed "$t0") s)"

# 2. Re-run with the cutover, d4 still down.
t0=$(q_now)
rc=0
play "$Q_TMP/run2.log" -e ferry_cutover=true wave.yml || rc=$?
[ "$rc" != 0 ] || q_fail "2: the run succeeded with a destination down"
for n in 1 2 3; do
	wait "${SPID[$n]}" || q_fail "2: receiver $n did not finish: $(tail -n 5 "${SLOG[$n]}")"
	cmp -s "$Q_TMP/s$n.img" "$Q_TMP/d$n.img" || q_fail "2: d$n differs from s$n"
	[ "$(runs_of "$n")" = 1 ] || q_fail "2: src$n started a second agent instead of attaching"
	[ "$(report phase "src$n")" = migrated ] || q_fail "2: src$n is $(report phase "src$n")"
done
[ "$(report phase src4)" = failed ] || q_fail "2: src4 is $(report phase src4), not failed"
err4=$(report error src4)
case "$err4" in
*"127.0.0.1:${PORT[4]}"*) ;;
*) q_fail "2: src4's error does not name its destination: $err4" ;;
esac
resume4=$(report resume_command src4)
for want in " migrate " "--state-dir $Q_TMP/src4/state" "--token-file $Q_TMP/src4/state/ansible/token"; do
	case "$resume4" in
	*"$want"*) ;;
	*) q_fail "2: src4's resume command lacks '$want': $resume4" ;;
	esac
done
[ -s "$Q_TMP/src4/state/ansible/token" ] || q_fail "2: the token file of src4's resume command is gone"
grep -q 'resume src4: ' "$Q_TMP/run2.log" || q_fail "2: the table has no resume line for src4"
report_lists_all 2
no_token_in "$Q_TMP/run2.log" "$W/ferry-wave.json" "$W/ferry-wave.csv"
q_log "2: 3 hosts migrated and identical; src4 failed alone: $err4 ($(q_elapsed "$t0") s)"

# 3. d4 comes back (same disk, same token, same port); the re-run resumes.
t0=$(q_now)
serve 4 "${PORT[4]}"
play "$Q_TMP/run3.log" -e ferry_cutover=true wave.yml ||
	q_fail "3: the re-run failed: $(tail -n 40 "$Q_TMP/run3.log")"
wait "${SPID[4]}" || q_fail "3: receiver 4 did not finish: $(tail -n 5 "${SLOG[4]}")"
cmp -s "$Q_TMP/s4.img" "$Q_TMP/d4.img" || q_fail "3: d4 differs from s4"
for n in 1 2 3; do
	[ "$(runs_of "$n")" = 1 ] || q_fail "3: src$n ran the agent again after it finished"
done
for n in $(seq 1 $N); do
	[ "$(report phase "src$n")" = migrated ] || q_fail "3: src$n is $(report phase "src$n")"
done
report_lists_all 3
total4=$(report bytes_total src4)
applied4=$(h_applied "${SLOG[4]}")
last=$(runs_of 4)
sent4=$(h_json_field "$Q_TMP/src4/state/ansible/runs/$last.ndjson" summary bytes_sent)
{ [ "$applied4" -gt 0 ] && [ "$applied4" -lt $((total4 * 3 / 4)) ]; } ||
	q_fail "3: the resumed d4 applied $applied4 bytes of src4's $total4: not a resume"
[ "$sent4" -lt $((total4 * 3 / 4)) ] || q_fail "3: the resumed run sent $sent4 bytes of $total4"
grep -q 'FERRY WAVE' "$Q_TMP/run3.log" || q_fail "3: no wave table"
no_token_in "$Q_TMP/run3.log" "$W/ferry-wave.json" "$W/ferry-wave.csv" "$ANSIBLE_LOG_PATH"
q_log "3: src4 resumed: its destination applied $applied4 bytes, the agent sent $sent4, of $total4 to send ($(q_elapsed "$t0") s)"
sed -n '/FERRY WAVE/,$p' "$Q_TMP/run3.log" | head -n 8
echo "ok: a wave of $N through Ansible: check mode changed nothing; a destination and the control node killed mid-wave failed that host only; re-runs attached to the running agents and resumed src4 with $sent4 of $total4 bytes; all identical"
