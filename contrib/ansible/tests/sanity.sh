#!/bin/bash
# Static checks of the ferry.migrate collection, all offline:
#   - ansible-galaxy collection build, then install into OUT/collections
#     (every later check runs on the installed tree, as users get it);
#   - ansible-test sanity: every test that runs without pip (ansible-test
#     fetches pip and the requirements of ansible-doc, import, pep8, pylint,
#     runtime-metadata, validate-modules and yamllint from the network);
#     those are covered below by the same tools from Debian where it has
#     them: ansible-doc, pycodestyle with ansible-test's pep8 settings,
#     yamllint, and argspec.py for validate-modules' core (argument_spec
#     against DOCUMENTATION); plus ansible-lint and py_compile;
#   - ansible-playbook --syntax-check of every playbook (by ansible-lint);
#   - the module's unit tests (Python unittest).
#
#   contrib/ansible/tests/sanity.sh OUT
#
# Prints one "ok: ..." line per check; exits non-zero at the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$here/../ferry
out=${1:?usage: sanity.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=/usr/bin/python3
export ANSIBLE_COLLECTIONS_PATH=$out/collections
export ANSIBLE_LOCAL_TEMP=$out/tmp ANSIBLE_REMOTE_TEMP=$out/tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0

die() {
	echo "sanity: FAIL: $*" >&2
	exit 1
}

rm -rf "$out/collections" "$out"/ferry-migrate-*.tar.gz
ansible-galaxy collection build --output-path "$out" "$src" >"$out/build.log" 2>&1 ||
	die "ansible-galaxy collection build: $(tail -n 3 "$out/build.log")"
tarball=$(ls "$out"/ferry-migrate-*.tar.gz)
ansible-galaxy collection install -p "$out/collections" "$tarball" >"$out/install.log" 2>&1 ||
	die "ansible-galaxy collection install: $(tail -n 3 "$out/install.log")"
col=$out/collections/ansible_collections/ferry/migrate
[ -f "$col/plugins/modules/agent.py" ] || die "the tarball has no plugins/modules/agent.py"
echo "ok: built $(basename "$tarball") ($(stat -c %s "$tarball") bytes) and installed it"

cd "$col"
skip=(ansible-doc import pep8 pylint runtime-metadata validate-modules yamllint)
args=()
for t in "${skip[@]}"; do
	args+=(--skip-test "$t")
done
ansible-test sanity --python "$($py -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
	"${args[@]}" >"$out/ansible-test.log" 2>&1 ||
	die "ansible-test sanity: $(grep -E 'ERROR|FATAL' "$out/ansible-test.log" | head -n 5)"
n=$(grep -c '^Running sanity test' "$out/ansible-test.log" || true)
[ "$n" -ge 20 ] || die "ansible-test sanity ran only $n tests: $(tail -n 3 "$out/ansible-test.log")"
echo "ok: ansible-test sanity, $n tests (offline; not run: ${skip[*]})"

find plugins tests -name '*.py' -print0 | xargs -0 -n 1 $py -m py_compile || die "py_compile"

pycodestyle --max-line-length 160 --ignore E402,W503,W504,E741 plugins ||
	die "pycodestyle (ansible-test's pep8 settings)"
# The unit tests' fixtures are the agent's event lines, verbatim.
pycodestyle --max-line-length 160 --ignore E402,W503,W504,E741,E501 tests ||
	die "pycodestyle tests"
yamllint -s . || die "yamllint"
echo "ok: py_compile, pycodestyle (ansible-test's pep8 settings), yamllint"

for m in ferry.migrate.agent ferry.migrate.wave_report; do
	ansible-doc "$m" >"$out/doc.txt" 2>&1 || die "ansible-doc $m: $(tail -n 3 "$out/doc.txt")"
	grep -q 'OPTIONS' "$out/doc.txt" || die "ansible-doc $m shows no options"
done
ansible-doc -t callback ferry.migrate.wave >"$out/doc.txt" 2>&1 ||
	die "ansible-doc -t callback ferry.migrate.wave: $(tail -n 3 "$out/doc.txt")"
echo "ok: ansible-doc of the modules and the callback"

# validate-modules needs pip; its core (argument_spec against DOCUMENTATION,
# no_log on secrets) runs offline from here.
pycodestyle --max-line-length 160 "$here/argspec.py" || die "pycodestyle argspec.py"
PYTHONPATH=$out/collections $py "$here/argspec.py" . || die "argument_spec and DOCUMENTATION differ"

ansible-lint --offline --nocolor -q --profile production >"$out/lint.log" 2>&1 || die "ansible-lint: $(tail -n 20 "$out/lint.log")"
echo "ok: ansible-lint (production profile, $(ansible-lint --version 2>/dev/null | head -n 1 | awk '{print $2}'))"

# ansible-lint ran ansible-playbook --syntax-check on the collection's
# playbooks; the example is the same file.
cmp -s playbooks/wave.yml "$here/../example/wave.yml" ||
	die "example/wave.yml and the collection's playbooks/wave.yml differ"
echo "ok: example/wave.yml is the collection's playbooks/wave.yml"

for t in tests/unit/plugins/*/test_*.py; do
	PYTHONPATH=$out/collections $py "$t" >"$out/unit.log" 2>&1 || die "unit test $t: $(tail -n 20 "$out/unit.log")"
	echo "ok: $(basename "$t"): $(grep -o 'Ran [0-9]* tests' "$out/unit.log")"
done
