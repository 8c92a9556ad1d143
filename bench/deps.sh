#!/bin/sh
# Installs the contenders the benchmarks measure ferry against, by their
# Debian names, through scripts/deps.sh (idempotent; no daemon is started:
# the bench runs its own sshd on a free port). Kept apart from the
# project's list: the build and the tests never need these.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
DEPS_TAG=bench-deps exec "$here/../scripts/deps.sh" --no-services \
	netcat-openbsd openssh-server openssh-client socat openssl partclone \
	bmap-tools rsync qemu-utils qemu-system-x86 time python3 e2fsprogs xfsprogs \
	btrfs-progs
