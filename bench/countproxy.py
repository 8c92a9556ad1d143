#!/usr/bin/env python3
"""countproxy: a TCP forwarder that counts the bytes on the wire.

Listens on 127.0.0.1 (port 0 picks a free one), connects every accepted
client to --to HOST:PORT and copies both directions, counting payload bytes
(what the programs write to their sockets, not TCP/IP headers). It owns the
counting only: it never looks at or changes the data, so a benchmarked
program's own statistics are not needed and cannot flatter it.

The copy uses splice(2) through a pipe per direction, so the data never
enters Python and the proxy costs every contender the same small, mostly
kernel-side hop. Without os.splice (Python < 3.10) it falls back to
recv_into/sendall.

  countproxy.py --to 127.0.0.1:B --port-file F --report R

writes the listening port to F once it listens; on SIGTERM or SIGINT it
stops accepting, waits for the open connections to end (their programs
have exited by then) and writes one line to R:

  up=BYTES down=BYTES conns=N refused=N cpu=SECONDS

up is client->server (the migration direction), down the replies; cpu is
the proxy's own user + system time, the overhead it added to the run.
"""

import argparse
import fcntl
import os
import resource
import signal
import socket
import sys
import threading

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
CHUNK = 1 << 20


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.up = 0
        self.down = 0
        self.conns = 0
        self.refused = 0

    def add(self, up, down):
        with self.lock:
            if up:
                self.up += up
            if down:
                self.down += down


def pump_splice(src, dst, count):
    """Copies src to dst until EOF; returns the bytes moved."""
    r, w = os.pipe()
    try:
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only costs speed
        total = 0
        sfd, dfd = src.fileno(), dst.fileno()
        while True:
            try:
                n = os.splice(sfd, w, CHUNK)
            except ConnectionResetError:
                break
            if n == 0:
                break
            left = n
            while left:
                m = os.splice(r, dfd, left)
                left -= m
            total += n
            count(n)
        return total
    finally:
        os.close(r)
        os.close(w)


def pump_copy(src, dst, count):
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    while True:
        try:
            n = src.recv_into(buf)
        except ConnectionResetError:
            break
        if n == 0:
            break
        dst.sendall(view[:n])
        total += n
        count(n)
    return total


PUMP = pump_splice if hasattr(os, "splice") else pump_copy


def one_way(src, dst, count, done):
    try:
        PUMP(src, dst, count)
    except OSError:
        pass  # the peer went away: what was counted stands
    finally:
        # Pass the EOF on, so half-closing protocols (nc -N) still end.
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        done()


def serve_conn(client, target, totals):
    try:
        server = socket.create_connection(target)
    except OSError:
        with totals.lock:
            totals.refused += 1
        client.close()
        return
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with totals.lock:
        totals.conns += 1
    left = [2]
    lk = threading.Lock()

    def done():
        with lk:
            left[0] -= 1
            last = left[0] == 0
        if last:
            client.close()
            server.close()

    t = threading.Thread(target=one_way,
                         args=(server, client, lambda n: totals.add(0, n), done),
                         daemon=True)
    t.start()
    one_way(client, server, lambda n: totals.add(n, 0), done)
    t.join()


def main():
    ap = argparse.ArgumentParser(description="counting TCP proxy")
    ap.add_argument("--to", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--report", required=True)
    a = ap.parse_args()

    host, _, port = a.to.rpartition(":")
    target = (host or "127.0.0.1", int(port))
    totals = Totals()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.listen_port))
    ls.listen(16)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, a.port_file)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        # Wakes accept(); the listening socket is not used again.
        try:
            ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    workers = []
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except OSError:
            if stop.is_set():
                break
            continue
        t = threading.Thread(target=serve_conn, args=(c, target, totals), daemon=True)
        t.start()
        workers.append(t)
    ls.close()
    # The programs have exited when the harness stops us; a connection still
    # open after that is a hung peer, not data to wait for.
    for t in workers:
        t.join(timeout=10)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with totals.lock:
        line = "up=%d down=%d conns=%d refused=%d cpu=%.2f\n" % (
            totals.up, totals.down, totals.conns, totals.refused, ru.ru_utime + ru.ru_stime)
    tmp = a.report + ".tmp"
    with open(tmp, "w") as f:
        f.write(line)
    os.rename(tmp, a.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
