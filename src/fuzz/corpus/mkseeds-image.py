#!/usr/bin/env python3
"""Regenerates the seed corpora of the fuzz_image_<fmt> targets:
src/fuzz/corpus/image_{raw,qcow2,vhd,vmdk}/. Good seeds are tiny real
images: qemu-img/qemu-io made (qcow2 with 512-byte clusters), or built
here where qemu cannot make them small (VHD with 4 KiB blocks, VMDK with
4 KiB grains, a streamOptimized VMDK with its grain directory at the end)
and then checked to read back right with `qemu-img convert`. Bad seeds:
one file per refused class (bad-*). Needs qemu-utils. Deterministic."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="ferry-seeds-")


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=T)


def rd(p):
    with open(os.path.join(T, p), "rb") as f:
        return bytearray(f.read())


def out(fmt, name, data):
    d = os.path.join(HERE, "image_" + fmt)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pattern(n, seed):
    return bytes((seed * 7 + i * 13 + (i >> 9)) & 0xFF for i in range(n))


def check(path, fmt, want):
    """The image reads back as want through qemu-img convert."""
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", path, "check.raw")
    got = rd("check.raw")
    if got[: len(want)] != want or any(got[len(want):]):
        sys.exit("seed %s does not read back right" % path)


def be(b, off, fmt, v):
    struct.pack_into(">" + fmt, b, off, v)


def le(b, off, fmt, v):
    struct.pack_into("<" + fmt, b, off, v)


# ---- raw -------------------------------------------------------------------
raw = bytearray(64 * 1024)
raw[4096:8192] = pattern(4096, 1)
raw[40000:40100] = pattern(100, 2)
out("raw", "data-holes", raw)
out("raw", "tiny", b"ferry")
out("raw", "qcow2-magic-only", b"QFI\xfb")

# ---- qcow2 -----------------------------------------------------------------
run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "v3.qcow2", "1M")
run("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1k", "-c", "write -c -P 0x22 64k 512",
    "-c", "write -z 128k 1k", "-c", "write -P 0x33 1020k 4k", "v3.qcow2")
run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,compat=0.10",
    "v2.qcow2", "1M")
run("qemu-io", "-f", "qcow2", "-c", "write -P 0x44 4k 2k", "v2.qcow2")
run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=16k,extended_l2=on",
    "sub.qcow2", "256k")
run("qemu-io", "-f", "qcow2", "-c", "write -P 0x55 1k 1k", "-c", "write -z 8k 1k", "sub.qcow2")
shutil.copy(os.path.join(T, "v3.qcow2"), os.path.join(T, "snap.qcow2"))
run("qemu-img", "snapshot", "-c", "s1", "snap.qcow2")
run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "base.qcow2", "1M")
run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "-b", "base.qcow2",
    "-F", "qcow2", "backed.qcow2")
run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,data_file=x.raw",
    "datafile.qcow2", "64k")
for n in ("v3", "v2", "sub", "snap", "backed", "datafile"):
    out("qcow2", ("bad-" if n in ("backed", "datafile") else "") + n, rd(n + ".qcow2"))

q = rd("v3.qcow2")
l1 = struct.unpack_from(">Q", q, 40)[0]
l2 = struct.unpack_from(">Q", q, l1)[0] & 0x00FFFFFFFFFFFE00
l1n = struct.unpack_from(">I", q, 36)[0]
first = next(l2 + 8 * i for i in range(64) if struct.unpack_from(">Q", q, l2 + 8 * i)[0])
l2s = [struct.unpack_from(">Q", q, l1 + 8 * i)[0] & 0x00FFFFFFFFFFFE00 for i in range(l1n)]
ents = [struct.unpack_from(">Q", q, t + 8 * i)[0] for t in l2s if t for i in range(64)]
comp = max(e & ((1 << 61) - 1) for e in ents if e >> 62 & 1)  # 512-byte clusters: 61 bits
assert 0 < comp < len(q)


def qbad(name, fn):
    b = bytearray(q)
    fn(b)
    out("qcow2", "bad-" + name, b)


qbad("crypt-aes", lambda b: be(b, 32, "I", 1))
qbad("l1-huge", lambda b: be(b, 36, "I", 0x7FFFFFFF))
qbad("l1-trunc32", lambda b: be(b, 36, "I", 0x20000001))
qbad("l1-past-eof", lambda b: be(b, 40, "Q", 1 << 40))
qbad("l1-unaligned", lambda b: be(b, 40, "Q", l1 + 8))
qbad("cluster-bits-30", lambda b: be(b, 20, "I", 30))
qbad("vsize-2-62", lambda b: be(b, 24, "Q", 1 << 62))
qbad("vsize-past-l1", lambda b: be(b, 24, "Q", 1 << 40))
qbad("incompat-unknown", lambda b: be(b, 72, "Q", 1 << 40))
qbad("corrupt", lambda b: be(b, 72, "Q", 2))
qbad("zstd", lambda b: (be(b, 72, "Q", 8), be(b, 100, "I", 112), b.__setitem__(104, 1)))
qbad("l2-past-eof", lambda b: be(b, first, "Q", (1 << 63) | (1 << 40)))
qbad("l2-wrap32", lambda b: be(b, first, "Q", struct.unpack_from(">Q", q, first)[0] + (1 << 32)))
qbad("l2-on-l1", lambda b: be(b, first, "Q", (1 << 63) | l1))
qbad("l2-on-header", lambda b: be(b, first, "Q", (1 << 62) | 100))
qbad("l2-on-itself", lambda b: be(b, first, "Q", (1 << 63) | l2))
qbad("compressed-truncated", lambda b: b.__delitem__(slice(comp + 10, None)))
qbad("compressed-garbage", lambda b: b.__setitem__(slice(comp, comp + 8), b"\xff" * 8))


def shared(b):
    for i in range(1, l1n):
        be(b, l1 + 8 * i, "Q", struct.unpack_from(">Q", q, l1)[0])


qbad("l1-shared-l2", shared)
hl = struct.unpack_from(">I", q, 100)[0]
qbad("hdr-ext-overrun", lambda b: (be(b, hl, "I", 0x12345678), be(b, hl + 4, "I", 0xFFFFFFF0)))

# ---- vhd -------------------------------------------------------------------
def vhd_sum(b, off, n, skip):
    s = sum(b[off:off + n]) - sum(b[off + skip:off + skip + 4])
    return ~s & 0xFFFFFFFF


def footer(size, dtype, data_off):
    f = bytearray(512)
    f[0:8] = b"conectix"
    be(f, 8, "I", 2)
    be(f, 12, "I", 0x00010000)
    be(f, 16, "Q", data_off)
    f[28:32] = b"qem2"  # qemu then takes current_size, as ferry does
    be(f, 32, "I", 0x00050003)
    f[36:40] = b"Wi2k"
    be(f, 40, "Q", size)
    be(f, 48, "Q", size)
    be(f, 56, "I", (2 << 16) | (16 << 8) | 63)
    be(f, 60, "I", dtype)
    f[68:84] = bytes(range(16))
    be(f, 64, "I", vhd_sum(f, 0, 512, 64))
    return f


VSIZE, BLOCK = 64 * 1024, 4096
want = bytearray(VSIZE)
want[0:4096] = pattern(4096, 3)
want[5 * 4096:5 * 4096 + 2048] = pattern(2048, 4)  # bitmap: first 4 sectors only
want[VSIZE - 512:] = pattern(512, 5)
nb = VSIZE // BLOCK
dyn = bytearray(1024)
dyn[0:8] = b"cxsparse"
be(dyn, 8, "Q", 0xFFFFFFFFFFFFFFFF)
be(dyn, 16, "Q", 1536)
be(dyn, 24, "I", 0x00010000)
be(dyn, 28, "I", nb)
be(dyn, 32, "I", BLOCK)
be(dyn, 36, "I", vhd_sum(dyn, 0, 1024, 36))
bat = bytearray(b"\xff" * 512)
img = bytearray(footer(VSIZE, 3, 512)) + dyn + bat
for blk, bm in ((0, 0xFF), (5, 0xF0), (nb - 1, 0x01)):
    be(img, 1536 + 4 * blk, "I", len(img) // 512)
    bitmap = bytearray(512)
    bitmap[0] = bm
    img += bitmap + want[blk * BLOCK:(blk + 1) * BLOCK]
img += footer(VSIZE, 3, 512)
with open(os.path.join(T, "dyn.vhd"), "wb") as f:
    f.write(img)
check("dyn.vhd", "vpc", want)
out("vhd", "dynamic-4k-blocks", img)
fixed = bytearray(want[:8192]) + footer(8192, 2, 0xFFFFFFFFFFFFFFFF)
with open(os.path.join(T, "fixed.vhd"), "wb") as f:
    f.write(fixed)
check("fixed.vhd", "vpc", want[:8192])
out("vhd", "fixed-8k", fixed)
run("qemu-img", "create", "-q", "-f", "vpc", "qemu.vhd", "1M")
out("vhd", "qemu-dynamic-empty", rd("qemu.vhd"))


def vbad(name, fn, base=img, fix=True):
    b = bytearray(base)
    fn(b)
    if fix and b[0:8] == b"conectix":
        be(b, 64, "I", vhd_sum(b, 0, 512, 64))
        be(b, 512 + 36, "I", vhd_sum(b, 512, 1024, 36))
    out("vhd", "bad-" + name, b)


vbad("footer-checksum", lambda b: be(b, 24, "I", 0x12345678), fix=False)
vbad("fixed-footer-checksum", lambda b: be(b, len(b) - 512 + 24, "I", 1), base=fixed, fix=False)
vbad("dynheader-checksum", lambda b: be(b, 512 + 32, "I", 1 << 30), fix=False)
vbad("differencing", lambda b: be(b, 60, "I", 4))
vbad("bat-past-eof", lambda b: be(b, 1536, "I", 0x7FFFFF00))
vbad("bat-on-bat", lambda b: be(b, 1536, "I", 3))
vbad("bat-shared", lambda b: [be(b, 1536 + 4 * i, "I", struct.unpack_from(">I", img, 1536)[0])
                              for i in range(nb)])
vbad("bat-entries-trunc32", lambda b: be(b, 512 + 28, "I", 0x40000001))
vbad("block-size-odd", lambda b: be(b, 512 + 32, "I", 3000))
vbad("block-size-huge", lambda b: be(b, 512 + 32, "I", 1 << 31))
vbad("vsize-2-62", lambda b: be(b, 48, "Q", 1 << 62))
vbad("vsize-past-bat", lambda b: be(b, 48, "Q", 1 << 30))
vbad("dynheader-past-eof", lambda b: be(b, 16, "Q", 1 << 40))
vbad("fixed-bigger-than-file", lambda b: (be(b, len(b) - 512 + 48, "Q", 1 << 20),
                                          be(b, len(b) - 512 + 64, "I",
                                             vhd_sum(b, len(b) - 512, 512, 64))),
     base=fixed, fix=False)

# ---- vmdk ------------------------------------------------------------------
GRAIN, GTES, CAP = 8, 512, 2048  # sectors: 4 KiB grains, a 1 MiB disk


def desc(create, name):
    t = ('# Disk DescriptorFile\nversion=1\nCID=fe77e001\nparentCID=ffffffff\n'
         'createType="%s"\n\n# Extent description\nRW %d SPARSE "%s"\n\n'
         '# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\n'
         'ddb.adapterType = "ide"\n' % (create, CAP, name)).encode()
    return t + bytes(512 - len(t))


def vhdr(version, flags, gd, algo, overhead):
    h = bytearray(512)
    le(h, 0, "I", 0x564D444B)
    le(h, 4, "I", version)
    le(h, 8, "I", flags)
    le(h, 12, "Q", CAP)
    le(h, 20, "Q", GRAIN)
    le(h, 28, "Q", 1)
    le(h, 36, "Q", 1)
    le(h, 44, "I", GTES)
    le(h, 48, "Q", 0)
    le(h, 56, "Q", gd)
    le(h, 64, "Q", overhead)
    h[73:77] = b"\n \r\n"
    le(h, 77, "H", algo)
    return h


vwant = bytearray(CAP * 512)
vwant[0:4096] = pattern(4096, 6)
vwant[100 * 4096:100 * 4096 + 4096] = pattern(4096, 7)
vwant[CAP * 512 - 4096:] = pattern(4096, 8)
grains = (0, 100, CAP // GRAIN - 1)
# monolithicSparse: header, descriptor, GD (sector 2), GT (3..6), grains.
sp = vhdr(1, 1, 2, 0, 7) + desc("monolithicSparse", "sparse.vmdk")
gd = bytearray(512)
le(gd, 0, "I", 3)
gt = bytearray(GTES * 4)
data = bytearray()
for i, g in enumerate(grains):
    le(gt, 4 * g, "I", 7 + i * GRAIN)
    data += vwant[g * 4096:(g + 1) * 4096]
sp += gd + gt + data
with open(os.path.join(T, "sparse.vmdk"), "wb") as f:
    f.write(sp)
check("sparse.vmdk", "vmdk", vwant)
out("vmdk", "sparse-4k-grains", sp)

# streamOptimized, grain directory at the end behind a footer.
st = vhdr(3, 1 | (1 << 16) | (1 << 17), 0xFFFFFFFFFFFFFFFF, 1, 2) + desc("streamOptimized",
                                                                       "stream.vmdk")
gt = bytearray(GTES * 4)
for g in grains:
    le(gt, 4 * g, "I", len(st) // 512)
    z = zlib.compress(bytes(vwant[g * 4096:(g + 1) * 4096]), 9)
    m = bytearray(struct.pack("<QI", g * GRAIN, len(z))) + z
    st += m + bytes(-len(m) % 512)


def marker(nsec, mtype):
    m = bytearray(512)
    le(m, 0, "Q", nsec)
    le(m, 12, "I", mtype)
    return m


st += marker(4, 1)
gt_sec = len(st) // 512
st += gt + marker(1, 2)
gd_sec = len(st) // 512
gd = bytearray(512)
le(gd, 0, "I", gt_sec)
st += gd + marker(1, 3) + vhdr(3, 1 | (1 << 16) | (1 << 17), gd_sec, 1, 2) + bytes(512)
with open(os.path.join(T, "stream.vmdk"), "wb") as f:
    f.write(st)
check("stream.vmdk", "vmdk", vwant)
out("vmdk", "stream-gd-at-end", st)
run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk",
    "64k")
run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse",
    "split.vmdk", "3G")
out("vmdk", "bad-desc-monolithicflat", rd("flat.vmdk"))
out("vmdk", "bad-desc-twogb-split", rd("split.vmdk"))


def kbad(name, fn, base=sp):
    b = bytearray(base)
    fn(b)
    out("vmdk", "bad-" + name, b)


g1 = 7 * 512  # the sparse image's first grain
s_gt = (st.find(marker(4, 1)) + 512)
s_g0 = 2 * 512  # the stream image's first grain header
kbad("gt-entry-past-eof", lambda b: le(b, 3 * 512, "I", 0x7FFFFFFF))
kbad("gt-entry-on-descriptor", lambda b: le(b, 3 * 512, "I", 1))
kbad("gt-entry-on-gt", lambda b: le(b, 3 * 512, "I", 3))
kbad("gd-entry-past-eof", lambda b: le(b, 2 * 512, "I", 0x7FFFFFFF))
kbad("gd-past-eof", lambda b: le(b, 56, "Q", 1 << 40))
kbad("gtes-trunc32", lambda b: le(b, 44, "I", 0x40000001))
kbad("grain-size-huge", lambda b: le(b, 20, "Q", 1 << 40))
kbad("capacity-2-62", lambda b: le(b, 12, "Q", 1 << 53))
kbad("capacity-overflow", lambda b: le(b, 12, "Q", 1 << 60))
kbad("no-descriptor", lambda b: le(b, 36, "Q", 0))
kbad("descriptor-past-eof", lambda b: le(b, 28, "Q", 1 << 30))
kbad("delta-disk", lambda b: b.__setitem__(slice(512, 1024),
                                           desc("monolithicSparse", "s.vmdk").replace(
                                               b"parentCID=ffffffff", b"parentCID=12345678")))
kbad("gt-shared", lambda b: [le(b, 3 * 512 + 4 * i, "I", 7) for i in range(GTES)])
kbad("grain-size-zero", lambda b: le(b, s_g0 + 8, "I", 0), base=st)
kbad("grain-size-huge-marker", lambda b: le(b, s_g0 + 8, "I", 0xFFFFFFF0), base=st)
kbad("grain-lba-mismatch", lambda b: le(b, s_g0, "Q", 7), base=st)
kbad("grain-truncated", lambda b: le(b, s_g0 + 8, "I", 20), base=st)
kbad("footer-missing", lambda b: b.__delitem__(slice(len(b) - 1536, None)), base=st)
kbad("footer-marker-zero-size", lambda b: b.__setitem__(slice(len(b) - 1536, len(b) - 1024),
                                                        bytes(512)), base=st)
kbad("footer-gd-at-end", lambda b: le(b, len(b) - 1024 + 56, "Q", 0xFFFFFFFFFFFFFFFF), base=st)
kbad("stream-gt-past-eof", lambda b: le(b, s_gt, "I", 0x7FFFFFF0), base=st)

shutil.rmtree(T)
