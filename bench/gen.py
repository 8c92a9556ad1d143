#!/usr/bin/env python3
"""gen: the benchmark data, the same bytes on every machine for a seed.

The byte source is AES-128-CTR over zeros keyed by the seed (openssl enc):
incompressible, fast (GB/s with AES-NI) and reproducible, unlike
/dev/urandom; Python's own generators are 10x slower for gigabytes.
It only makes data; it never measures or cleans up.

  gen.py random OUT BYTES SEED           raw image of incompressible bytes
  gen.py tree DIR MIB SEED               files for mkfs.ext4 -d, 4 KiB..32 MiB;
                                         3 in 10 files are hex text (zstd ~2:1),
                                         the rest incompressible
  gen.py rewrite IMG PERCENT SEED        rewrites PERCENT % of the 4 KiB
                                         blocks, chosen at random, in place;
                                         prints the number of blocks
"""

import os
import random
import subprocess
import sys

CHUNK = 1 << 20


class Stream:
    """Reads the seed's keystream."""

    def __init__(self, seed):
        key = "%032x" % (int(seed) & ((1 << 128) - 1))
        self.p = subprocess.Popen(
            ["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", key, "-iv", "0",
             "-in", "/dev/zero"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)

    def read(self, n):
        out = bytearray()
        while len(out) < n:
            b = self.p.stdout.read(min(n - len(out), CHUNK))
            if not b:
                sys.exit("gen: openssl enc stopped early")
            out += b
        return bytes(out)

    def close(self):
        self.p.kill()
        self.p.wait()


def write_stream(f, s, n):
    while n > 0:
        k = min(n, CHUNK)
        f.write(s.read(k))
        n -= k


def cmd_random(out, nbytes, seed):
    s = Stream(seed)
    with open(out, "wb") as f:
        write_stream(f, s, int(nbytes))
    s.close()


def cmd_tree(d, mib, seed):
    import binascii
    r = random.Random(int(seed))
    s = Stream(int(seed) + 1)
    left = int(mib) << 20
    sizes = [4096, 65536, 1 << 20, 4 << 20, 16 << 20, 32 << 20]
    i = 0
    while left > 0:
        sub = os.path.join(d, "d%02d" % (i // 64))
        os.makedirs(sub, exist_ok=True)
        n = min(left, r.choice(sizes) + r.randrange(4096))
        text = r.random() < 0.3
        with open(os.path.join(sub, "f%04d.%s" % (i, "txt" if text else "bin")), "wb") as f:
            if text:
                # Hex of random bytes: 4 bits of entropy per byte, lines
                # like a log; zstd -3 gets about 2:1.
                k = n
                while k > 0:
                    raw = s.read(min((k + 1) // 2, CHUNK // 2))
                    h = binascii.hexlify(raw, b"\n", 32)[:k]
                    f.write(h)
                    k -= len(h)
            else:
                write_stream(f, s, n)
        left -= n
        i += 1
    os.makedirs(os.path.join(d, "etc"), exist_ok=True)
    with open(os.path.join(d, "etc", "hostname"), "w") as f:
        f.write("bench-%s\n" % seed)
    s.close()
    print(i)


def cmd_rewrite(img, percent, seed):
    size = os.path.getsize(img)
    nblk = size // 4096
    k = max(1, int(nblk * float(percent) / 100))
    r = random.Random(int(seed))
    picks = sorted(r.sample(range(nblk), k))
    s = Stream(int(seed) + 2)
    fd = os.open(img, os.O_WRONLY)
    for b in picks:
        os.pwrite(fd, s.read(4096), b * 4096)
    os.close(fd)
    s.close()
    print(k)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmds = {"random": (cmd_random, 3), "tree": (cmd_tree, 3), "rewrite": (cmd_rewrite, 3)}
    c = cmds.get(sys.argv[1])
    if not c or len(sys.argv) != 2 + c[1]:
        sys.exit(__doc__)
    c[0](*sys.argv[2:])


if __name__ == "__main__":
    main()
