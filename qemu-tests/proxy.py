#!/usr/bin/env python3
"""A TCP proxy for fault tests, on 127.0.0.1 only.

Forwards every connection to 127.0.0.1:TARGET and counts the bytes each
way. After --after BYTES sent by clients (over all connections) it does
one thing, once:
  --kill-pidfile F   SIGKILL the process whose pid is in F (the agent)
  --cut              close the connection in progress (a network cut)
Prints "PORT n" when listening; on exit (SIGTERM) prints the counters to
--stats FILE as "up N\\ndown N\\n".
"""
import argparse, os, select, signal, socket, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--target", type=int, required=True)
ap.add_argument("--after", type=int, default=-1)
ap.add_argument("--kill-pidfile")
ap.add_argument("--cut", action="store_true")
ap.add_argument("--stats")
ap.add_argument("--trace", help="append 'seconds bytes' per client read")
a = ap.parse_args()

lock = threading.Lock()
trace = open(a.trace, "a", buffering=1) if a.trace else None
up = down = 0
fired = False


def write_stats():
    if a.stats:
        with open(a.stats + ".tmp", "w") as f:
            f.write("up %d\ndown %d\nfired %d\n" % (up, down, int(fired)))
        os.replace(a.stats + ".tmp", a.stats)


def fire(conns):
    global fired
    fired = True
    if a.kill_pidfile:
        try:
            os.kill(int(open(a.kill_pidfile).read().split()[0]), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    if a.cut:
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def serve(c):
    global up, down
    s = socket.create_connection(("127.0.0.1", a.target))
    for x in (c, s):
        x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pair = {c: s, s: c}
    try:
        while True:
            r, _, _ = select.select([c, s], [], [], 300)
            if not r:
                return
            for x in r:
                b = x.recv(1 << 16)
                if not b:
                    return
                with lock:
                    if x is c:
                        # Only what passes the threshold goes on.
                        if not fired and a.after >= 0 and up + len(b) >= a.after:
                            b = b[: a.after - up]
                            pair[x].sendall(b)
                            up += len(b)
                            write_stats()
                            fire([c, s])
                            return
                        up += len(b)
                        if trace:
                            trace.write("%.6f %d\n" % (time.monotonic(), len(b)))
                    else:
                        down += len(b)
                pair[x].sendall(b)
    except OSError:
        return
    finally:
        for x in (c, s):
            try:
                x.close()
            except OSError:
                pass
        with lock:
            write_stats()


def stop(*_):
    with lock:
        write_stats()
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
L = socket.socket()
L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L.bind(("127.0.0.1", 0))
L.listen(8)
print("PORT", L.getsockname()[1], flush=True)
while True:
    c, _ = L.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
