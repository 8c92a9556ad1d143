#!/usr/bin/env python3
"""Regenerates the seed corpora of fuzz_xfs and fuzz_fat:
src/fuzz/corpus/{xfs,fat}/. Good seeds are real filesystems made small:
mkfs.xfs (v5 with 4 KiB blocks, v4 with 1 KiB blocks; fstests' variables
let it make 32 MiB) and mkfs.vfat (FAT12, FAT16, FAT32) with files from a
prototype or mtools, then cut to their non-zero sectors in the sparse
format of src/fuzz/fuzz_vol.h. Bad seeds: one file per class the readers
refuse (bad-*); XFS v5 ones set flags bit 0 so the fuzzer fixes their CRCs
and the class itself is what fails. Needs xfsprogs, dosfstools, mtools."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="ferry-fsseeds-")
ENV = dict(os.environ, TEST_DIR="1", TEST_DEV="1", QA_CHECK_FS="1", MTOOLS_SKIP_CHECK="1")


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=T, env=ENV)


def sparse(img, flags=0):
    """flags, size, then every run of non-zero sectors as pieces."""
    out = bytearray([flags]) + struct.pack("<Q", len(img))
    s, n = 0, len(img) // 512
    while s < n:
        if not img[s * 512:(s + 1) * 512].strip(b"\0"):
            s += 1
            continue
        e = s
        while e < n and e - s < 127 and img[e * 512:(e + 1) * 512].strip(b"\0"):
            e += 1
        out += struct.pack("<IH", s, (e - s) * 512) + img[s * 512:e * 512]
        s = e
    return bytes(out)


def out(kind, name, img, flags=0):
    d = os.path.join(HERE, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(sparse(img, flags))


def be32(b, o):
    return struct.unpack_from(">I", b, o)[0]


def proto(n):
    """An mkfs.xfs prototype: a few files of several sizes, a directory."""
    os.makedirs(os.path.join(T, "p"), exist_ok=True)
    lines = ["/dev/null", "0 0", "d--755 0 0"]
    for i in range(n):
        p = os.path.join(T, "p", "f%d" % i)
        with open(p, "wb") as f:
            # Zeros: allocated like any data, but left out of the sparse seed.
            f.write(bytes(1 + i * 1531))
        lines.append("f%d ---644 0 0 %s" % (i, p))
    lines += ["d d--755 0 0", "$", "$"]
    with open(os.path.join(T, "proto"), "w") as f:
        f.write("\n".join(lines) + "\n")


def mkxfs(name, *opts):
    p = os.path.join(T, name)
    with open(p, "wb") as f:
        f.truncate(32 << 20)
    run("mkfs.xfs", "-q", "-f", *opts, "-p", "proto", p)
    with open(p, "rb") as f:
        return bytearray(f.read())


def xfs_seeds():
    proto(40)
    v5 = mkxfs("v5.img", "-d", "agcount=2")
    v4 = mkxfs("v4.img", "-m", "crc=0", "-b", "size=1024", "-d", "agcount=2")
    out("xfs", "v5", v5)
    out("xfs", "v5-fixcrc", v5, 1)
    out("xfs", "v4", v4)
    bs, ss = be32(v5, 4), struct.unpack_from(">H", v5, 102)[0]
    agb = be32(v5, 84)
    agf1 = agb * bs + ss  # AG 1's AGF
    root0 = be32(v5, ss + 16) * bs  # AG 0's free-space tree root

    def bad(name, edits, base=v5, flags=1):
        b = bytearray(base)
        for off, data in edits:
            b[off:off + len(data)] = data
        out("xfs", "bad-" + name, b, flags)

    bad("sb-magic", [(0, b"XFSC")])
    bad("sb-blocksize", [(4, struct.pack(">I", 3000))])
    bad("sb-agcount", [(88, struct.pack(">I", 1000000))])
    bad("sb-dblocks", [(8, struct.pack(">Q", 1 << 40))])
    bad("sb-log", [(48, struct.pack(">Q", 0xfffffffff))])
    bad("agf-magic", [(agf1, b"XAGG")])
    bad("agf-levels", [(ss + 28, struct.pack(">I", 10))])
    bad("agf-length", [(ss + 12, struct.pack(">I", 100))])
    bad("agf-freeblks", [(ss + 52, struct.pack(">I", 7))])
    bad("bt-magic", [(root0, b"ABTB")])
    bad("bt-numrecs", [(root0 + 6, struct.pack(">H", 4000))])
    n = struct.unpack_from(">H", v5, root0 + 6)[0]
    if n >= 2:  # the first two records swapped: no longer ascending
        r0 = bytes(v5[root0 + 56:root0 + 64])
        r1 = bytes(v5[root0 + 64:root0 + 72])
        bad("bt-order", [(root0 + 56, r1 + r0)])
    # The root made a node (AGF: 2 levels) whose one pointer is out of the
    # AG, or the root itself: a loop.
    ptrs = root0 + 56 + 8 * ((bs - 56) // 12)
    node = [(ss + 28, struct.pack(">I", 2)), (root0 + 4, struct.pack(">HH", 1, 1))]
    bad("bt-ptr-outside", node + [(ptrs, struct.pack(">I", 0xffffff))])
    bad("bt-loop", node + [(ptrs, struct.pack(">I", root0 // bs))])
    bad("bt-crc", [(root0 + 60, b"\x7f")], flags=0)
    # No log record is an unmount record any more: dirty.
    ls, agblklog = struct.unpack_from(">Q", v5, 48)[0], v5[124]
    log = ((ls >> agblklog) * agb + (ls & ((1 << agblklog) - 1))) * bs
    edits = []
    for o in range(log, log + be32(v5, 96) * bs, 512):
        if be32(v5, o) == 0xfeedbabe:
            edits.append((o + 512 + 9, b"\x00"))
    bad("log-dirty", edits)
    bad("v4-bt-numrecs", [(be32(v4, 512 + 16) * 1024 + 6, struct.pack(">H", 999))], v4, 0)


def mkfat(name, kib, *opts):
    p = os.path.join(T, name)
    if os.path.exists(p):
        os.unlink(p)
    run("mkfs.vfat", *opts, "-C", p, str(kib))
    run("mmd", "-i", p, "::/EFI", "::/EFI/BOOT")
    for i in range(12):
        q = os.path.join(T, "m%d" % i)
        with open(q, "wb") as f:
            f.write(bytes(1 + i * 3001))
        run("mcopy", "-i", p, q, "::/EFI/BOOT/F%d" % i)
    run("mdel", "-i", p, "::/EFI/BOOT/F3")
    with open(p, "rb") as f:
        return bytearray(f.read())


def fat_seeds():
    f12 = mkfat("f12.img", 2048, "-F", "12")
    f16 = mkfat("f16.img", 16384, "-F", "16")
    f32 = mkfat("f32.img", 40960, "-F", "32", "-s", "1")
    out("fat", "fat12", f12)
    out("fat", "fat16", f16)
    out("fat", "fat32", f32)

    def bad(name, base, off, data):
        b = bytearray(base)
        b[off:off + len(data)] = data
        out("fat", "bad-" + name, b)

    bad("signature", f16, 510, b"\x55\x00")
    bad("sector-size", f16, 11, struct.pack("<H", 3000))
    bad("cluster-size", f16, 13, b"\x03")
    bad("no-fats", f16, 16, b"\x00")
    bad("total", f32, 32, struct.pack("<I", 0xffffff))
    bad("fat-too-small", f16, 22, struct.pack("<H", 1))
    bad("media", f16, struct.unpack_from("<H", f16, 14)[0] * 512, b"\x12")
    bad("root-cluster", f32, 44, struct.pack("<I", 0x0fffffff))
    bad("active-fat", f32, 40, struct.pack("<H", 0x83))
    bad("root-entries-fat32", f32, 17, struct.pack("<H", 512))


def main():
    for kind in ("xfs", "fat"):
        shutil.rmtree(os.path.join(HERE, kind), ignore_errors=True)
    try:
        xfs_seeds()
        fat_seeds()
    finally:
        shutil.rmtree(T, ignore_errors=True)
    for kind in ("xfs", "fat"):
        d = os.path.join(HERE, kind)
        print("%s: %d seeds, %d bytes" % (kind, len(os.listdir(d)),
                                          sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))))


if __name__ == "__main__":
    sys.exit(main())
