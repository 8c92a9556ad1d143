#!/bin/sh
# Builds the musl sysroot the static binaries link against, from Debian
# source packages compiled with musl-gcc: BearSSL, libblkid (util-linux),
# libext2fs + libcom_err + libe2p (e2fsprogs), libzstd, zlib (compressed
# qcow2 clusters and VMDK grains in src/image); the kernel UAPI
# headers and xxhash.h; static e2fsck and resize2fs for the initramfs, and
# busybox-static's binary.  Every input is pinned in sources.lock.
# The result lives in $FERRY_CACHE/sysroot-<key> (key: Debian versions,
# musl, gcc, this recipe) and build/sysroot points at it; a complete entry
# is only relinked.  Debian's own glibc-built .a files never enter it, and
# nothing is compiled against /usr/include.
set -eu
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# Source packages built here, and busybox-static's binary (the initramfs's
# shell and tools), all pinned in sources.lock.
PKGS="bearssl util-linux e2fsprogs libzstd zlib"
DEBS="busybox-static"
JOBS=$(nproc)

# The key: the lock lines themselves, the toolchain and this recipe.
KEYTEXT=$(for p in $PKGS $DEBS linux-source-6.1; do lock_line "$p"; done
	printf '%s\n' \
	"musl-dev $(deb_version musl-dev)" \
	"libxxhash-dev $(deb_version libxxhash-dev)" \
	"gcc $(gcc -dumpfullversion)" \
	"recipe $(recipe_hash "$ROOT/scripts/sysroot.sh")")
KEY=$(printf '%s\n' "$KEYTEXT" | short_hash)
S=$FERRY_CACHE/sysroot-$KEY
STAGE=$S.tmp
W=$FERRY_CACHE/work/sysroot-$KEY
LOGS=$FERRY_CACHE/logs/sysroot-$KEY

# FERRY_NOLINK=1 (scripts/cold.sh): build into the cache, leave build/ alone.
link() {
	[ "${FERRY_NOLINK:-0}" = 1 ] && return 0
	mkdir -p "$ROOT/build"
	if [ -d "$ROOT/build/sysroot" ] && [ ! -L "$ROOT/build/sysroot" ]; then
		rm -rf "$ROOT/build/sysroot"
	fi
	ln -sfn "$S" "$ROOT/build/sysroot"
	touch "$S/.stamp"
}

if [ -f "$S/.complete" ]; then
	link
	say "cached $(basename "$S")"
	exit 0
fi

export CC=musl-gcc
# Kernel UAPI headers for the autoconf builds.  -isystem, not -I: musl-gcc's
# own -isystem comes first, so musl's headers always win.
UAPI="-isystem $LINUX_HDR"

fetch() {
	# shellcheck disable=SC2086
	lock_fetch $PKGS $DEBS linux-source-6.1
}

headers() {
	mkdir -p "$STAGE/include" "$STAGE/lib" "$STAGE/bin"
	cp -a "$LINUX_HDR"/. "$STAGE/include/"
	# Header-only; XXH_INLINE_ALL in the one file that uses it.
	cp /usr/include/xxhash.h "$STAGE/include/"
	cp "$(lock_dir busybox-static)/root/bin/busybox" "$STAGE/bin/busybox"
}

bearssl() {
	d=$W/bearssl
	lock_extract bearssl "$d"
	make -C "$d" -j"$JOBS" CC=musl-gcc LD=musl-gcc LDDLL=musl-gcc AR=ar lib
	cp "$d/build/libbearssl.a" "$STAGE/lib/"
	cp "$d"/inc/bearssl*.h "$STAGE/include/"
}

zstd() {
	d=$W/libzstd
	lock_extract libzstd "$d"
	# The static library is single-threaded by default; legacy (pre-1.0)
	# frame formats are never on our wire.
	make -C "$d/lib" -j"$JOBS" CC=musl-gcc ZSTD_LEGACY_SUPPORT=0 libzstd.a
	cp "$d/lib/libzstd.a" "$STAGE/lib/"
	cp "$d/lib/zstd.h" "$d/lib/zstd_errors.h" "$d/lib/zdict.h" "$STAGE/include/"
}

# zlib's own configure (not autoconf): --static builds only libz.a.
zlib() {
	d=$W/zlib
	lock_extract zlib "$d"
	cd "$d"
	CC=musl-gcc ./configure --static
	make -j"$JOBS" libz.a
	cp libz.a "$STAGE/lib/"
	cp zlib.h zconf.h "$STAGE/include/"
}

# Debian's util-linux patches touch configure.ac and Makefile.am files
# (an install-time option for the tty tools); make would rerun aclocal and
# automake.  The generated files are still right for libblkid: mark them
# newer than their sources.
autotools_fresh() {
	find "$1" \( -name aclocal.m4 -o -name configure -o -name config.h.in \
		-o -name Makefile.in \) -exec touch {} +
}

blkid() {
	d=$W/util-linux
	lock_extract util-linux "$d"
	autotools_fresh "$d"
	cd "$d"
	./configure CC=musl-gcc CPPFLAGS="$UAPI" \
		--disable-all-programs --enable-libblkid \
		--disable-shared --enable-static \
		--without-systemd --without-udev --without-python --disable-nls \
		--without-readline --without-ncursesw --without-tinfo \
		--disable-bash-completion --disable-asciidoc --disable-poman
	make -j"$JOBS" libblkid.la
	mkdir -p "$STAGE/include/blkid"
	cp .libs/libblkid.a "$STAGE/lib/"
	cp libblkid/src/blkid.h "$STAGE/include/blkid/"
}

# e2fsprogs builds its own private libuuid and libblkid for e2fsck and
# resize2fs (PKG_CONFIG=/bin/false keeps configure away from glibc's .pc
# files); only libext2fs, libcom_err and libe2p go into the sysroot, so
# include/blkid is util-linux's.
e2fsprogs() {
	d=$W/e2fsprogs
	lock_extract e2fsprogs "$d"
	cd "$d"
	./configure CC=musl-gcc CPPFLAGS="$UAPI" PKG_CONFIG=/bin/false \
		--prefix=/usr --enable-libuuid --enable-libblkid --disable-nls \
		--disable-fuse2fs --disable-uuidd --disable-elf-shlibs \
		--disable-bsd-shlibs --disable-tdb --disable-debugfs \
		--disable-imager --disable-defrag --disable-e2initrd-helper
	make -j"$JOBS" libs
	make -C e2fsck -j"$JOBS" e2fsck.static
	make -C resize -j"$JOBS" resize2fs.static
	inst=$W/e2fsprogs-install
	for l in et ext2fs e2p; do
		make -C "lib/$l" install DESTDIR="$inst"
	done
	cp -a "$inst/usr/include/et" "$inst/usr/include/ext2fs" "$inst/usr/include/e2p" \
		"$STAGE/include/"
	cp "$inst/usr/lib/libcom_err.a" "$inst/usr/lib/libext2fs.a" "$inst/usr/lib/libe2p.a" \
		"$STAGE/lib/"
	cp e2fsck/e2fsck.static "$STAGE/bin/e2fsck"
	cp resize/resize2fs.static "$STAGE/bin/resize2fs"
	strip "$STAGE/bin/e2fsck" "$STAGE/bin/resize2fs"
}

# check: every strong undefined symbol of every archive member is defined
# by musl, libgcc or the sysroot itself (a glibc-built object would want
# __*_chk, __isoc99_*, fcntl64 ...); the binaries are static musl and run;
# a program using every library links statically and opens an ext4 image.
check() {
	set -x
	# Debian's musl-gcc specs link from here (-print-file-name would
	# answer with glibc's libc.a).
	musl_libc=/usr/lib/x86_64-linux-musl/libc.a
	nm -g --defined-only "$musl_libc" "$STAGE"/lib/*.a "$(musl-gcc -print-libgcc-file-name)" \
		2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$W/defined"
	nm -A "$STAGE"/lib/*.a | awk 'NF >= 2 && $(NF-1) == "U" { print $NF }' |
		sort -u >"$W/undefined"
	test -s "$W/undefined"
	bad=$(comm -23 "$W/undefined" "$W/defined" | grep -vx '_GLOBAL_OFFSET_TABLE_' || true)
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad" | while read -r sym; do
			nm -A "$STAGE"/lib/*.a | grep " U $sym\$"
		done
		echo "symbols no musl library defines (glibc-built objects?)" >&2
		return 1
	fi
	for b in e2fsck resize2fs busybox; do
		file "$STAGE/bin/$b" | grep -q 'statically linked'
	done
	"$STAGE/bin/e2fsck" -V
	"$STAGE/bin/resize2fs" 2>&1 | grep -q 'resize2fs'
	t=$W/check
	mkdir -p "$t"
	cat >"$t/t.c" <<'EOF'
#include <sys/types.h>
#include <stdio.h>
#include <string.h>
#include <bearssl.h>
#include <blkid/blkid.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>
#include <zstd.h>
#include <zlib.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <linux/fs.h>

int main(int argc, char **argv)
{
	br_sha256_context sha;
	blkid_probe pr;
	ext2_filsys fs;
	errcode_t err;

	br_sha256_init(&sha);
	pr = blkid_new_probe();
	blkid_free_probe(pr);
	if (argc > 1) {
		err = ext2fs_open(argv[1], 0, 0, 0, unix_io_manager, &fs);
		if (err == 0)
			ext2fs_close_free(&fs);
		else
			printf("%s\n", error_message(err));
	}
	/* zlib: a deflate round trip, so inflate's code runs too. */
	{
		static const unsigned char msg[] = "ferry ferry ferry ferry";
		unsigned char z[64], back[sizeof(msg)];
		uLongf zn = sizeof(z), bn = sizeof(back);

		if (compress2(z, &zn, msg, sizeof(msg), 9) != Z_OK ||
		    uncompress(back, &bn, z, zn) != Z_OK || bn != sizeof(msg) ||
		    memcmp(back, msg, bn) != 0)
			return 1;
	}
	printf("zstd %u zlib %s xxh3 %llx blkgetsize64 %lx\n", ZSTD_versionNumber(),
	       zlibVersion(), (unsigned long long)XXH3_64bits("ferry", 5),
	       (unsigned long)BLKGETSIZE64);
	return 0;
}
EOF
	musl-gcc -static -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror \
		-isystem "$STAGE/include" -o "$t/t" "$t/t.c" -L"$STAGE/lib" \
		-lext2fs -lcom_err -lblkid -lzstd -lz -lbearssl
	file "$t/t" | grep -q 'statically linked'
	"$t/t"
	# ext2fs_open on a real image, so the archives' code actually runs.
	rm -f "$t/img"
	mke2fs -q -F -t ext4 "$t/img" 8M
	"$t/t" "$t/img"
	"$STAGE/bin/e2fsck" -fn "$t/img"
	ls -l "$STAGE/lib" "$STAGE/bin"
}

# One sysroot build at a time per cache (make -j, or two checkouts); the
# lock holder clears what interrupted builds left behind.
mkdir -p "$FERRY_CACHE/locks"
exec 9>"$FERRY_CACHE/locks/sysroot"
flock 9
if [ -f "$S/.complete" ]; then
	link
	say "cached $(basename "$S")"
	exit 0
fi
rm -rf "$FERRY_CACHE"/sysroot-*.tmp "$FERRY_CACHE"/work/sysroot-*
mkdir -p "$W" "$LOGS"
step "$LOGS/fetch.log" "fetch sources" fetch
linux_headers
step "$LOGS/headers.log" "headers (uapi, xxhash), busybox" headers
step "$LOGS/bearssl.log" "bearssl $(lock_version bearssl)" bearssl
step "$LOGS/zstd.log" "libzstd $(lock_version libzstd)" zstd
step "$LOGS/zlib.log" "zlib $(lock_version zlib)" zlib
step "$LOGS/blkid.log" "libblkid $(lock_version util-linux)" blkid
step "$LOGS/e2fsprogs.log" "e2fsprogs $(lock_version e2fsprogs)" e2fsprogs
step "$LOGS/check.log" "check (static link of all libs)" check
printf '%s\n' "$KEYTEXT" >"$STAGE/.complete"
rm -rf "$S"
mv "$STAGE" "$S"
rm -rf "$W"
link
say "$(basename "$S"): $(du -sh "$S" | cut -f1), logs in $LOGS"
