#!/bin/bash
# Everything that tests the Ansible collection: its static checks
# (tests/sanity.sh) and the wave on this machine (qemu-tests case
# 60-ansible-wave, which runs the static checks first, as make check does).
#
#   contrib/ansible/tests/run.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
exec "$top/qemu-tests/run.sh" 60-ansible-wave
