#!/usr/bin/env python3
"""report: bench/RESULTS.md from the records bench/run.sh wrote.

It only formats and computes statistics (median, min-max, ratios taken
pair by pair within a round); it never runs anything. Input: the JSON lines
of the runs and a tab-separated meta file; output: Markdown to a file or
to stdout ("-").

  report.py RECORDS META OUT
"""

import json
import re
import statistics
import sys

CASES = {
    1: "Full copy of a raw disk of incompressible data",
    2: "Used-block copy of an ext4 image",
    3: "Incremental: 1 % of the 4 KiB blocks rewritten",
    4: "Import a qcow2 of the case 2 image",
    5: "Streams 1/2 and compression 0/3 (cases 1 and 2)",
    6: "Boot: QEMU start to a completed TLS handshake (TCG)",
    7: "Used-block copy of an XFS image (some data deleted)",
    8: "Cutover of a live ext4: change tracking against a rescan",
    9: "A wave of servers through Ansible: all at once against one after another",
    10: "Used-block copy of a btrfs image (some data deleted)",
    11: "Through a relay: the relay instance against a direct connection",
}
# ferry's entry in each case; the ratios are ferry/this.
REF = {1: "c1_ferry", 2: "c2_ferry", 3: "c3_sync", 4: "c4_import", 7: "c7_ferry",
       10: "c10_ferry", 11: "c11_relay"}
VARIANT = re.compile(r"^c([12])_s([12])z([03])$")


def human(n):
    if n is None:
        return "—"
    n = float(n)
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= k:
            return "%.2f %s" % (n / k, unit) if unit == "GiB" else "%.1f %s" % (n / k, unit)
    return "%d B" % n


def md(text):
    """A label inside a Markdown table cell."""
    return text.replace("|", "\\|")


def total(r):
    if r.get("up") is None:
        return None
    return r["up"] + (r.get("down") or 0)


def mib(kib):
    return "—" if kib is None else "%.1f MiB" % (kib / 1024.0)


def secs(x):
    return "%.2f" % x if x < 10 else "%.1f" % x


def span(xs):
    if len(xs) < 2:
        return "—"
    return "%s–%s" % (secs(min(xs)), secs(max(xs)))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Contender:
    def __init__(self, cid, label):
        self.id = cid
        self.label = label
        self.runs = {}       # rep -> record (timed rounds, ok only)
        self.count = []      # the counting round's records (wire bytes)
        self.failed = []     # records
        self.notyet = None   # record

    def ok(self):
        return [self.runs[k] for k in sorted(self.runs)]

    def med_secs(self):
        return med([r["secs"] for r in self.ok()])


def load(path_rec, path_meta):
    recs = []
    with open(path_rec) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    meta = {}
    with open(path_meta) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    return recs, meta


def group(recs):
    """case -> ordered {id: Contender}; case 5's variants move to case 5."""
    cases = {}
    for r in recs:
        c = r["case"]
        if VARIANT.match(r["id"]):
            c = 5
        d = cases.setdefault(c, {})
        k = d.get(r["id"])
        if k is None:
            k = d[r["id"]] = Contender(r["id"], r["label"])
        if r["status"] == "ok":
            k.runs[r["rep"]] = r
        elif r["status"] == "count":
            k.count.append(r)
        elif r["status"] == "fail":
            k.failed.append(r)
        else:
            k.notyet = r
    return cases


def pair_ratios(ref, other, field="secs"):
    out = []
    for rep, r in ref.runs.items():
        o = other.runs.get(rep)
        if o and o.get(field) and r.get(field) is not None:
            out.append(r[field] / o[field])
    return out


def ratio_cell(ref, k):
    if ref is None or k is ref or not ref.runs or not k.runs:
        return "—"
    rs = pair_ratios(ref, k)
    if not rs:
        return "—"
    s = "%.2f" % statistics.median(rs)
    if len(rs) > 1:
        s += " (%.2f–%.2f)" % (min(rs), max(rs))
    return s


def wire_cell(k):
    ups = [r["up"] for r in k.count if r.get("up") is not None]
    if not ups:
        return "— (local, no network)" if k.ok() and not k.count else "—"
    downs = [r["down"] for r in k.count if r.get("down") is not None]
    s = human(med(ups))
    if downs and med(downs):
        s += " (%s back)" % human(med(downs))
    return s


def rss_cell(k):
    s = med([r["rss_s"] for r in k.ok()])
    r = med([r["rss_r"] for r in k.ok()])
    if r is None:
        return mib(s)
    return "%s / %s" % (mib(s), mib(r))


def round_name(rep):
    return "the counting round" if rep == 0 else "round %d" % rep


def cpu_cell(k):
    s = med([r.get("cpu_s") for r in k.ok()])
    r = med([r.get("cpu_r") for r in k.ok()])
    if s is None:
        return "—"
    if r is None:
        return "%.1f" % s
    return "%.1f / %.1f" % (s, r)


def table(lines, ks, ref, rate_bytes=None):
    head = ["contender", "median s", "min–max s"]
    if rate_bytes:
        head.append("MiB/s")
    head += ["wire bytes → (←)", "peak RSS send / recv", "CPU s send / recv", "ferry/this time",
             "ferry/this wire"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    notes = []
    for k in ks:
        if k.notyet is not None and not k.runs:
            cells = [md(k.label), "**not yet**"] + [""] * (len(head) - 2)
            lines.append("| " + " | ".join(cells) + " |")
            notes.append("%s: not yet — %s." % (k.label, k.notyet["note"]))
            continue
        if not k.runs:
            cells = [md(k.label), "**FAILED**"] + [""] * (len(head) - 2)
            lines.append("| " + " | ".join(cells) + " |")
            for f in k.failed:
                notes.append("%s, %s: FAILED — %s" % (k.label, round_name(f["rep"]), f["note"]))
            continue
        m = k.med_secs()
        cells = [("**%s**" % md(k.label)) if k is ref else md(k.label), secs(m),
                 span([r["secs"] for r in k.ok()])]
        if rate_bytes:
            cells.append("%.0f" % (rate_bytes / (1 << 20) / m) if m else "—")
        cells += [wire_cell(k), rss_cell(k), cpu_cell(k), ratio_cell(ref, k)]
        wr = "—"
        if ref is not None and k is not ref and ref.runs:
            a = med([total(r) for r in ref.count])
            b = med([total(r) for r in k.count])
            if a is not None and b:
                wr = "%.2f" % (a / b)
        cells.append(wr)
        lines.append("| " + " | ".join(cells) + " |")
        for f in k.failed:
            notes.append("%s, %s: FAILED — %s" % (k.label, round_name(f["rep"]), f["note"]))
    lines.append("")
    pc = med([r.get("pcpu") for k in ks for r in k.count])
    if pc is not None:
        lines.append("countproxy's own CPU in the counting round: %.2f s per run (median)." % pc)
        lines.append("")
    per = ["%s %s" % (k.label, ", ".join(secs(r["secs"]) for r in k.ok())) for k in ks if k.runs]
    if per and max(len(k.runs) for k in ks) > 1:
        lines.append("Each round (s): " + "; ".join(per) + ".")
        lines.append("")
    for n in notes:
        lines.append("- " + n)
    if notes:
        lines.append("")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    recs, meta = load(sys.argv[1], sys.argv[2])
    cases = group(recs)
    L = []
    full = meta.get("mode") == "full"
    L.append("# ferry benchmarks" if full else "# ferry benchmarks (smoke run: tiny sizes, not numbers)")
    L.append("")
    L.append("Written by `make bench` (`bench/run.sh`); regenerate, do not edit. "
             "Host mode over 127.0.0.1, data on tmpfs: the network stack, TLS, hashing "
             "and the programs are measured, not a disk.")
    L.append("")
    cores = int(meta.get("cores", "1") or 1)
    try:
        l1 = float(meta.get("load_start", "0").split()[0])
        l1e = float(meta.get("load_end", "0").split()[0])
    except ValueError:
        l1 = l1e = 0.0
    if max(l1, l1e) > 0.5 * cores:
        L.append("> **Measured under load** (load average %.2f at the start, %.2f at the end, "
                 "on %d cores): other work shared the CPUs, so the times are noisy and "
                 "pessimistic. Regenerate on a quiet machine before drawing conclusions."
                 % (l1, l1e, cores))
        L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| date | %s |" % meta.get("date", "?"))
    L.append("| commit | %s |" % meta.get("commit", "?"))
    L.append("| ferry | %s |" % meta.get("ferry", "?"))
    L.append("| machine | %s, %s cores, %s RAM, %s |" % (
        meta.get("cpu", "?"), meta.get("cores", "?"), meta.get("mem", "?"), meta.get("kernel", "?")))
    L.append("| load average (1/5/15 min) | start %s, end %s |" % (
        meta.get("load_start", "?"), meta.get("load_end", "?")))
    L.append("| rounds | %s; contenders alternate, the order rotated each round |" % meta.get("reps", "?"))
    L.append("| whole run | %s s |" % meta.get("total_secs", "?"))
    L.append("")
    L.append("How to read: *median* and *min–max* of the timed rounds' wall times (clock from "
             "the sender's start to the receiver's exit; listeners are up before). *Wire bytes "
             "→*: TCP payload client→server counted outside the programs by "
             "`bench/countproxy.py`, a splice(2) forwarder every networked contender goes "
             "through in an extra, untimed counting round (the timed rounds connect directly, "
             "so the proxy's hop is in no time); replies in parentheses. *Peak RSS*: the largest single process on the sending / receiving "
             "side (`/usr/bin/time -v`; for ssh the receiving side is the whole sshd tree). "
             "*CPU s*: user + system time of each side. *ferry/this*: ferry's time over the "
             "contender's, round by round, median (min–max); above 1 ferry is slower. Wire "
             "ratio: both directions together, below 1 ferry sends less.")
    L.append("")

    behind = []
    for c in sorted(CASES):
        L.append("## %d. %s" % (c, CASES[c]))
        L.append("")
        ks = list(cases.get(c, {}).values())
        st = meta.get("state:%d" % c, "")
        if c == 1 and "c1_bytes" in meta:
            L.append("%s of AES-CTR keystream (fixed seed) as a raw image with no partition "
                     "table or filesystem, so ferry sends it whole; the destination is a fresh "
                     "sparse file of the same size. ferry and the socat pipe use the same "
                     "TLS 1.2 suite (ECDHE-ECDSA-AES128-GCM-SHA256); ssh uses "
                     "aes128-gcm@openssh.com." % human(int(meta["c1_bytes"])))
            L.append("")
        if c == 2 and "c2_bytes" in meta:
            L.append("ext4 (4 KiB blocks, `mkfs.ext4 -d`) of %s holding %s; %s in use by the "
                     "block bitmaps. Every result passes `e2fsck -fn` and is byte-identical to "
                     "the source image. bmaptool copies locally (no network, no encryption): "
                     "it bounds what reading and writing the used blocks costs."
                     % (human(int(meta["c2_bytes"])), meta.get("c2_files", "?"),
                        human(int(meta.get("c2_used", 0)))))
            L.append("")
        if c == 3 and "c3_blocks" in meta:
            L.append("The case 1 image with %s random 4 KiB blocks rewritten (fixed seed); the "
                     "destination holds the old image. rsync runs over ssh (aes128-gcm) to a "
                     "private sshd, `--inplace --no-whole-file --ignore-times`; its block "
                     "checksums travel back (←). `ferry sync` is one incremental pass, not a "
                     "cutover: it compares every chunk by hash (hashes travel back), sends the "
                     "differing 4 KiB blocks, and the receiver holds the first MiB back until "
                     "the final pass, so its result is checked beyond the first MiB."
                     % meta["c3_blocks"])
            L.append("")
        if c == 4 and "c4_qcow2" in meta:
            L.append("`qemu-img convert -O qcow2` of the case 2 image (%s); converted back to raw "
                     "locally, compared with the original." % human(int(meta["c4_qcow2"])))
            L.append("")
        if c == 7 and "c7_bytes" in meta:
            L.append("A %s XFS image (mkfs.xfs defaults, its 64 MiB log included) with %s, "
                     "%s used, and %s of random data written and deleted before (left in "
                     "its free space). Checked: `xfs_repair -n` and every file's SHA-256; "
                     "ferry's wire bytes must stay within 1.02 x used. partclone.xfs sends "
                     "its used blocks through nc in plaintext; dd | nc sends the whole disk."
                     % (human(int(meta["c7_bytes"])), meta.get("c7_files", "?"),
                        human(int(meta.get("c7_used", 0))), human(int(meta.get("c7_gone", 0)))))
            L.append("")
        if c == 10 and "c10_bytes" in meta:
            L.append("A %s btrfs image (mkfs.btrfs defaults: DUP metadata) with %s, %s used "
                     "(data once, metadata and system twice), and %s of random data written "
                     "and deleted before. Checked: `btrfs check --readonly` and every file's "
                     "SHA-256; ferry's wire bytes must stay within 1.02 x (used + 1 MiB). "
                     "partclone.btrfs sends its used blocks through nc in plaintext; dd | nc "
                     "sends the whole disk."
                     % (human(int(meta["c10_bytes"])), meta.get("c10_files", "?"),
                        human(int(meta.get("c10_used", 0))), human(int(meta.get("c10_gone", 0)))))
            L.append("")
        if c == 11 and "c11_bytes" in meta:
            L.append("The first %s of the case 1 image, migrated by ferry directly and through "
                     "`ferry-init serve --relay` on 127.0.0.1 (`--proxy http://127.0.0.1:PORT`; "
                     "the relay splices, TLS stays end to end). *ferry/this* is the relayed "
                     "time over the direct one: the relay's throughput is its inverse times "
                     "the direct throughput (the issue asks at least 0.8x, a ratio of at most "
                     "1.25)." % human(int(meta["c11_bytes"])))
            L.append("")
        if c == 5:
            table5(L, cases, ks, int(meta.get("def_streams", "1") or 1))
            if meta.get("c5_note"):
                L.append("- " + meta["c5_note"])
                L.append("")
            continue
        if c == 6:
            table6(L, ks, meta)
            continue
        if c in (8, 9):
            # bench/cutover.sh and bench/wave.sh wrote the section's body.
            try:
                with open(meta["c%d_md" % c]) as f:
                    L.append(f.read().rstrip("\n"))
            except (KeyError, OSError):
                L.append("Not run%s." % (" (" + st + ")" if st else ""))
            L.append("")
            continue
        if not ks:
            L.append("Not run%s." % (" (" + st + ")" if st else ""))
            L.append("")
            continue
        byid = {k.id: k for k in ks}
        ref = byid.get(REF.get(c))
        ordered = ([ref] if ref else []) + [k for k in ks if k is not ref]
        rb = {1: "c1_bytes", 11: "c11_bytes"}.get(c)
        table(L, ordered, ref, rate_bytes=int(meta[rb]) if rb and rb in meta else None)
        # The best contender is the one ferry trails most, by the same
        # round-by-round ratio as the table (medians of noisy runs can
        # disagree with it).
        # Case 11 compares ferry with itself: not a contender to trail.
        if ref is not None and ref.runs and c != 11:
            for k in ks:
                rs = pair_ratios(ref, k) if k is not ref and k.runs else []
                if rs:
                    behind.append((statistics.median(rs), c, k.label, bool(k.count)))

    if behind:
        L.append("## Where ferry is furthest behind")
        L.append("")
        L.append("By the median of the round-by-round time ratios (above 1: ferry slower).")
        L.append("")
        # Local contenders (no network, no encryption) bound the cost of
        # the disk work alone; the networked ones do ferry's whole job.
        for title, pick in (("any contender", lambda x: True),
                            ("a networked contender", lambda x: x[3])):
            sel = [x for x in behind if pick(x)]
            if not sel:
                continue
            r, c, label, _ = max(sel)
            L.append("- Against %s: case %d, %s: **%.2f**%s." % (
                title, c, md(label), r,
                "" if r > 1 else " (ferry is at least as fast everywhere)"))
        L.append("")

    L.append("## Contenders (Debian packages)")
    L.append("")
    L.append("| package | version |")
    L.append("|---|---|")
    for k in sorted(meta):
        if k.startswith("pkg:"):
            L.append("| %s | %s |" % (k[4:], meta[k] or "not installed"))
    L.append("")

    text = "\n".join(L)
    if sys.argv[3] == "-":
        sys.stdout.write(text)
    else:
        with open(sys.argv[3], "w") as f:
            f.write(text)
    return 0


def table5(L, cases, ks, def_streams=1):
    ny = [k for k in ks if k.notyet is not None and not k.runs]
    if not ks:
        L.append("Not run.")
        L.append("")
        return
    if ny:
        L.append("**not yet**: %s." % ny[0].notyet["note"])
        L.append("")
        return
    head = ["data", "streams", "compress", "median s", "min–max s", "wire bytes → (←)",
            "peak RSS send / recv", "CPU s send / recv", "this/default time"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for c in (1, 2):
        base = cases.get(c, {}).get("c%d_ferry" % c)
        rows = [(def_streams, 0, base)] + [(int(m.group(2)), int(m.group(3)), k) for k in ks
                                 for m in [VARIANT.match(k.id)] if m and int(m.group(1)) == c]
        for s, z, k in rows:
            if k is None:
                continue
            if not k.runs:
                L.append("| case %d | %d | %d | **FAILED** | | | | | |" % (c, s, z))
                continue
            rt = "—"
            if k is not base and base is not None and base.runs:
                rs = pair_ratios(k, base)
                rt = "%.2f" % statistics.median(rs) if rs else "—"
            L.append("| case %d | %d | %d | %s | %s | %s | %s | %s | %s |" % (
                c, s, z, secs(k.med_secs()), span([r["secs"] for r in k.ok()]),
                wire_cell(k), rss_cell(k), cpu_cell(k), rt))
    L.append("")


def table6(L, ks, meta):
    k = ks[0] if ks else None
    if k is None:
        L.append("Not run.")
        L.append("")
    elif k.notyet is not None and not k.runs:
        L.append("**not yet**: %s." % k.notyet["note"])
        L.append("")
    else:
        xs = [r["secs"] for r in k.ok()]
        ls = [r["listen"] for r in k.ok() if r.get("listen") is not None]
        L.append("`qemu-system-x86_64 -accel tcg -cpu max -m 512` direct kernel boot with "
                 "user networking (hostfwd to 443), timed until `ferry status --wait 60` "
                 "completes its authenticated TLS exchange. *Console*: when the guest's "
                 "console printed `listening on` (polled every 50 ms): the probe retries with "
                 "short attempts that a not yet listening guest leaves hanging, so the "
                 "handshake time is rounded up by up to one attempt.")
        L.append("")
        L.append("| boots | handshake median s | min–max s | console `listening` median s | min–max s |")
        L.append("|---|---|---|---|---|")
        if xs:
            L.append("| %d of %d | %s | %s | %s | %s |" % (
                len(xs), len(xs) + len(k.failed), secs(statistics.median(xs)), span(xs),
                secs(statistics.median(ls)) if ls else "—", span(ls) if ls else "—"))
        else:
            L.append("| 0 of %d | **FAILED** | | | |" % len(k.failed))
        L.append("")
        for f in k.failed:
            L.append("- boot %s: FAILED — %s" % (f["rep"], f["note"]))
        if k.failed:
            L.append("")
    sizes = [(n[5:], int(v)) for n, v in meta.items() if n.startswith("size:")]
    if sizes:
        L.append("| artifact (build/out) | size |")
        L.append("|---|---|")
        for n, v in sizes:
            L.append("| %s | %s (%d bytes) |" % (n, human(v), v))
        L.append("")


if __name__ == "__main__":
    sys.exit(main())
