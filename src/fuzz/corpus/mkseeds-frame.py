#!/usr/bin/env python3
"""Regenerates the protocol seeds of fuzz_frame (src/fuzz/corpus/frame/):
whole sessions as an agent sends them, cut into the target's pieces (a
length byte, then that many bytes). The target's proof is all zeros and
its inventory has one disk, vda of 1 GiB, so a seed's PLAN is accepted and
what follows it (DATA, FLUSH with its ranges, HASHES?, FINISH) reaches the
engine; "join" is an extra stream's HELLO. Deterministic."""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frame")
VERSION = 3


def frame(t, payload):
    return struct.pack(">BBHI", t, 0, 0, len(payload)) + payload


def s(text):
    b = text.encode()
    return struct.pack(">H", len(b)) + b


def hello(join=None):
    p = struct.pack(">HH", VERSION, VERSION) + s("ferry 0.2") + s("host") + bytes(32)
    if join:
        p += struct.pack(">QBB", *join)
    return frame(0x01, p)


def plan(streams=1):
    p = struct.pack(">IQQBBH", 65536, 0x1122334455667788, 7, 0, streams, 1)
    p += s("vda") + s("/dev/sda") + struct.pack(">QIBQ", 1 << 30, 512, 0, 1 << 20)
    return frame(0x10, p)


def data_zero(off, n):
    return frame(0x12, struct.pack(">HBBQI", 0, 1, 0, off, n))


def data_raw(off, payload):
    return frame(0x12, struct.pack(">HBBQI", 0, 0, 0, off, len(payload)) + payload)


def flush(seq, *ranges):
    p = struct.pack(">QH", seq, len(ranges))
    for disk, off, end in ranges:
        p += struct.pack(">HQQ", disk, off, end)
    return frame(0x13, p)


def finish(zeroed=0, first=(0, 0, 0), n=0):
    return frame(0x17, struct.pack(">BBQIHQQ", 0, 0, zeroed, n, *first))


def hash_req(off, n):
    return frame(0x15, struct.pack(">HIQQ", 0, 65536, off, n))


def pieces(b):
    out = bytearray()
    i = 0
    while i < len(b):
        n = min(64, len(b) - i)
        out.append(n - 1)
        out += b[i:i + n]
        i += n
    return bytes(out)


seeds = {
    "hello": hello(),
    "join": hello((0x1122334455667788, 1, 2)) + data_zero(16 << 20, 65536)
    + flush(1, (0, 16 << 20, 17 << 20)),
    "session": hello() + plan(2) + data_raw(0, bytes(range(256)) * 16) + data_zero(4096, 61440)
    + flush(1, (0, 0, 65536)) + hash_req(0, 65536) + flush(2, (0, 65536, 16 << 20), (0, 32 << 20, 48 << 20))
    + finish(),
    "flush-outside": hello() + plan(1) + flush(1, (0, 4096, (1 << 30) + 512)),
    "finish-zeroed": hello() + plan(1) + data_zero(0, 65536) + flush(1, (0, 0, 1 << 30))
    + finish(8192, (0, 1 << 20, (1 << 20) + 4096), 2),
}
os.makedirs(HERE, exist_ok=True)
for name, b in seeds.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(pieces(b))
