#!/usr/bin/env python3
"""Regenerates the seed corpora of fuzz_lvm_text and fuzz_btrfs_node:
src/fuzz/corpus/{lvm_text,btrfs_node}/. Good seeds come from real tools:
VG text that pvcreate/vgcreate/lvcreate (and vgcfgrestore, for a thin
pool) wrote on a loop device, read back out of its metadata area with the
PV's uuid set to the one the target uses; btrfs superblocks and tree
blocks of a mkfs.btrfs image filled through the kernel. Bad seeds: one
file per refused class (bad-*). Needs root, lvm2, btrfs-progs."""
import os
import re
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="ferry-seeds-")
PV_ID = "DLfFjV-IQDB-3HZm-1xzj-6p51-AulV-ZUAJTx"
ENV = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, env=ENV, cwd=T,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()


def out(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vg_text(img):
    with open(os.path.join(T, img), "rb") as f:
        d = f.read(1 << 20)
    mda = d[4096:4608]
    off, size = struct.unpack("<QQ", mda[40:56])
    t = d[4096 + off:4096 + off + size].rstrip(b"\0").decode()
    pv = re.search(r'pv0 \{\nid = "([^"]+)"', t).group(1)
    return t.replace(pv, PV_ID)


def overlap(t):
    """The swap LV put on root's first extent."""
    i = t.index("\nswap {")
    return t[:i] + re.sub(r'"pv0", \d+', '"pv0", 0', t[i:], count=1)


def lvm_seeds():
    sh("truncate -s 256M pv.img")
    dev = sh("losetup -f --show pv.img").strip()
    o = "--devices " + dev
    c = o + " --driverloaded n -an -Zn -q"
    try:
        sh(f"pvcreate -q {o} {dev} && vgcreate -q {o} -s 4M vgs {dev}")
        sh(f"lvcreate {c} -L 40M -n root vgs && lvcreate {c} -L 8M -n swap vgs && "
           f"lvcreate {c} -L 8M -n gap vgs && lvcreate {c} -L 8M -n data vgs && "
           f"lvremove -q {o} -f vgs/gap && lvextend {o} --driverloaded n -q -L +16M vgs/root")
        basic = vg_text("pv.img")
        out("lvm_text", "good-linear", basic.encode())
        # A thin pool, an old-style snapshot and a mirror-like raid1, in LVM's own syntax.
        extra = ('pool {\nid = "aaaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ", "WRITE", "VISIBLE"]\n'
                 'flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 2\n'
                 'type = "thin-pool"\nmetadata = "pool_tmeta"\npool = "pool_tdata"\ntransaction_id = 0\n'
                 'chunk_size = 128\n}\n}\n'
                 'thin1 {\nid = "bbbbbb-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ", "WRITE", "VISIBLE"]\n'
                 'flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 9\n'
                 'type = "thin"\nthin_pool = "pool"\ntransaction_id = 0\ndevice_id = 1\n}\n}\n'
                 'pool_tmeta {\nid = "cccccc-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ", "WRITE"]\n'
                 'flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 1\n'
                 'type = "striped"\nstripe_count = 1\nstripes = [\n"pv0", 40\n]\n}\n}\n'
                 'pool_tdata {\nid = "dddddd-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ", "WRITE"]\n'
                 'flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 2\n'
                 'type = "striped"\nstripe_count = 1\nstripes = [\n"pv0", 41\n]\n}\n}\n'
                 'snap {\nid = "eeeeee-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ", "WRITE", "VISIBLE"]\n'
                 'flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 1\n'
                 'type = "striped"\nstripe_count = 1\nstripes = [\n"pv0", 43\n]\n}\n}\n'
                 'snapshot0 {\nid = "ffffff-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ"]\n'
                 'flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 15\n'
                 'type = "snapshot"\nchunk_size = 8\norigin = "root"\ncow_store = "snap"\n}\n}\n')
        rich = basic.replace("logical_volumes {\n", "logical_volumes {\n" + extra, 1)
        out("lvm_text", "good-thin-snapshot", rich.encode())
        two = basic.replace("physical_volumes {\n", 'physical_volumes {\npv1 {\nid = '
                            '"zzzzzz-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\ndevice = "/dev/sdb"\nstatus = '
                            '["ALLOCATABLE"]\nflags = []\ndev_size = 524288\npe_start = 2048\n'
                            'pe_count = 63\n}\n', 1)
        two = two.replace("logical_volumes {\n", 'logical_volumes {\nst {\nid = "gggggg-aaaa-aaaa-'
                          'aaaa-aaaa-aaaa-aaaaaa"\nstatus = ["READ", "WRITE", "VISIBLE"]\nflags = []\n'
                          'segment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 4\ntype = '
                          '"striped"\nstripe_count = 2\nstripe_size = 128\nstripes = [\n"pv0", 50,\n'
                          '"pv1", 0\n]\n}\n}\n', 1)
        out("lvm_text", "good-two-pvs", two.encode())
        bad = {
            "bad-pe-count": basic.replace("pe_count = ", "pe_count = 99999999", 1),
            "bad-stripe-range": basic.replace('"pv0", 0\n', '"pv0", 60\n', 1),
            "bad-overlap": overlap(basic),
            "bad-unknown-pv": basic.replace('"pv0", 0\n', '"pv9", 0\n', 1),
            "bad-hole": basic.replace("start_extent = 10", "start_extent = 11", 1),
            "bad-truncated": basic[:basic.index("segment1 {") + 10],
            "bad-deep": "a { " * 40 + "}" * 40,
            "bad-unclosed-string": 'vgs {\nid = "abc',
            "bad-nested-array": 'vgs {\nstatus = [["a"]]\n}\n',
            "bad-number": basic.replace("extent_size = ", "extent_size = 99999999999999999999", 1),
            "bad-uuid": basic.replace(PV_ID, "not-a-uuid", 1),
            "bad-two-vgs": basic + "\nvg2 {\n}\n",
            "bad-negative": basic.replace("extent_count = 10", "extent_count = -10", 1),
            "bad-float": basic.replace("pe_start = ", "pe_start = 1.5 #", 1),
        }
        for k, v in bad.items():
            out("lvm_text", k, v.encode())
    finally:
        subprocess.run(["losetup", "-d", dev])


def crc32c(b):
    c = 0xffffffff
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    return c ^ 0xffffffff


def fix(b):
    b[0:4] = struct.pack("<I", crc32c(bytes(b[32:])))
    return b


def btrfs_seeds():
    sh("truncate -s 300M b.img && mkfs.btrfs -q -f b.img && mkdir -p m && mount -o loop b.img m")
    try:
        sh("for i in $(seq 1 300); do echo $i > m/f$i; done; head -c 8M /dev/urandom > m/big; "
           "btrfs -q subvolume create m/sv; sync; rm m/f1*; sync")
    finally:
        sh("umount m")
    with open(os.path.join(T, "b.img"), "rb") as f:
        img = f.read()
    sb = bytearray(img[65536:65536 + 4096])
    out("btrfs_node", "good-superblock", bytes([1]) + sb)
    ns = struct.unpack("<I", sb[0x94:0x98])[0]
    sel = {4096: 0, 16384: 2, 65536: 4}[ns]

    def block(logical):
        o = sh(f"btrfs-map-logical -l {logical} b.img | head -n 1")
        phys = int(re.search(r"physical (\d+)", o).group(1))
        return bytearray(img[phys:phys + ns])

    root, chunk_root = struct.unpack("<QQ", sb[0x50:0x60])
    leaves = {"good-chunk-leaf": block(chunk_root), "good-root-leaf": block(root)}
    ext = sh("btrfs inspect-internal dump-tree -t extent b.img | head -n 3")
    m = re.search(r"(leaf|node) (\d+)", ext)
    leaves["good-extent-" + m.group(1)] = block(int(m.group(2)))
    for k, v in leaves.items():
        out("btrfs_node", k, bytes([sel]) + v)
    c = leaves["good-chunk-leaf"]
    bad = {}
    b = bytearray(c); b[0x60:0x64] = struct.pack("<I", 5000); bad["bad-nritems"] = fix(b)
    b = bytearray(c); b[101 + 17:101 + 21] = struct.pack("<I", ns); bad["bad-item-offset"] = fix(b)
    b = bytearray(c); b[101:101 + 8] = struct.pack("<Q", 2 ** 63); bad["bad-key-order"] = fix(b)
    b = bytearray(c); b[0x64] = 9; bad["bad-level"] = fix(b)
    b = bytearray(c); b[200] ^= 1; bad["bad-csum"] = b
    for k, v in bad.items():
        out("btrfs_node", k, bytes([sel | (8 if k != "bad-csum" else 0)]) + v)
    b = bytearray(sb); b[0xa0:0xa4] = struct.pack("<I", 40)
    out("btrfs_node", "bad-sys-array-cut", bytes([1 | 8]) + fix(b))
    b = bytearray(sb); b[0x32b + 17 + 44] = 0
    out("btrfs_node", "bad-sys-chunk-no-stripes", bytes([1 | 8]) + fix(b))
    b = bytearray(sb); b[0x32b + 17 + 16:0x32b + 17 + 24] = struct.pack("<Q", 3)
    out("btrfs_node", "bad-sys-chunk-stripe-len", bytes([1 | 8]) + fix(b))


lvm_seeds()
btrfs_seeds()
subprocess.run(["rm", "-rf", T])
