# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads the agent's NDJSON events (ferry ... --json) and the wave's rows.

This file owns the meaning of ferry's events for Ansible: it folds a run's
events into one flat dict (the `ferry` fact) and turns many hosts' facts
into the wave's table, JSON and CSV. It never runs ferry, touches a
destination or a file: the module and the action plugins do I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io
import json
import re

# A line longer than this is not one of ferry's events (the longest, a
# check or report line, is well under 2 KiB): it is skipped, not parsed.
MAX_LINE = 64 * 1024
# Events kept verbatim in a result; the fold below sees them all.
KEEP_EVENTS = 200

# Phases, in the order a host goes through them.
PHASES = (
    'not_started',  # nothing recorded on the source
    'checked',  # ferry check ran, no migration yet
    'check_failed',  # ferry check (or migrate's own checks) found a FAIL
    'starting',  # the agent runs, no plan yet
    'copying',  # the first pass (the initial copy)
    'in_step',  # first pass done; incremental passes at the interval
    'cutover',  # SIGUSR1 sent: final frozen pass, verify, finish
    'stopped',  # interrupted (SIGINT): the destination stays in migration mode
    'failed',  # the agent exited with an error
    'synced',  # a one-pass ferry sync finished
    'migrated',  # finished: the destination has the data and handed off
    'cleaned',  # ferry clean aborted the migration
)
FINAL_PHASES = ('migrated', 'cleaned')


_EVENT = re.compile(r'\{"event":"([a-z_]+)"')
_NUM = re.compile(r'"([a-z_]+)":(-?[0-9]+(?:\.[0-9]+)?)(?=[,}])')
_STR = re.compile(r'"([a-z_]+)":"((?:[^"\\]|\\.)*)"(?=[,}])')
_CUT_RESULT = re.compile(r'"result":"([^"]*?),"[a-z_]+":')


def _salvage(line):
    """An event line that is not JSON but complete (it ends with "}"):
    ferry 0.1 cuts a summary's long result ("interrupted: ...") at 63 bytes
    without its closing quote. Its numbers and whole strings are kept, the
    cut result as far as it goes; a line cut short is not salvaged."""
    m = _EVENT.match(line)
    if not m or not line.endswith('}'):
        return None
    obj = {'event': m.group(1)}
    for k, v in _STR.findall(line):
        try:
            obj.setdefault(k, json.loads('"%s"' % v))
        except ValueError:
            pass
    for k, v in _NUM.findall(line):
        obj.setdefault(k, float(v) if '.' in v else int(v))
    r = _CUT_RESULT.search(line)
    if r and 'result' not in obj:
        obj['result'] = r.group(1)
    return obj


def parse_events(text):
    """Returns the JSON objects with an "event" key, one per line of text;
    anything else (log lines, a cut-off last line) is skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith('{') or len(line) > MAX_LINE:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = _salvage(line)
        if isinstance(obj, dict) and isinstance(obj.get('event'), str):
            out.append(obj)
    return out


def _num(v, default=0):
    if isinstance(v, bool):
        return default
    if isinstance(v, (int, float)):
        return v
    return default


def fold(events):
    """Folds one run's events into a flat dict. Keys that no event set are
    present with an empty value, so a template never needs a default."""
    f = {
        'plan': [], 'bytes_total': 0, 'disk_bytes': 0, 'bytes_done': 0,
        'rate': 0, 'eta': None, 'first_pass_done': False, 'passes': 0,
        'last_pass': {}, 'verify': [], 'freeze': {}, 'report': [],
        'verdict': '', 'reconnects': 0, 'last_reconnect': '', 'error': '',
        'result': '', 'summary': {}, 'checks': [], 'check_summary': {},
        'status': {}, 'synced': False, 'seconds': 0.0,
    }
    flushes = []  # (t, durable) of the last two flushes: the rate between progress lines
    for e in events:
        kind = e.get('event')
        t = _num(e.get('t'), None)
        if t is not None:
            f['seconds'] = t
        if kind == 'plan':
            f['plan'].append({k: e.get(k) for k in
                              ('source', 'destination', 'size', 'table', 'partitions', 'send')})
            f['bytes_total'] += _num(e.get('send'))
            f['disk_bytes'] += _num(e.get('size'))
        elif kind == 'progress':
            # The first pass's lines only: verify and later passes have
            # their own rates, which are not the copy's.
            if e.get('phase') == 'sending' and not f['first_pass_done']:
                f['bytes_done'] = max(f['bytes_done'], _num(e.get('done')))
                if _num(e.get('total')) > 0 and not f['bytes_total']:
                    f['bytes_total'] = _num(e.get('total'))
                if _num(e.get('rate')) > 0:
                    f['rate'] = _num(e.get('rate'))
                eta = _num(e.get('eta'), -1)
                f['eta'] = eta if eta >= 0 else None
        elif kind == 'flush':
            if not f['first_pass_done']:
                d = _num(e.get('durable'))
                if t is not None:
                    flushes = (flushes + [(t, d)])[-2:]
                f['bytes_done'] = max(f['bytes_done'], min(d, f['bytes_total'] or d))
        elif kind == 'done':
            f['first_pass_done'] = True
            f['bytes_done'] = max(f['bytes_done'], f['bytes_total'])
            f['eta'] = 0
            f['passes'] = max(f['passes'], 1)
        elif kind == 'synced':
            f['synced'] = True
            f['first_pass_done'] = True
        elif kind == 'pass':
            f['passes'] += 1
            f['last_pass'] = {k: e.get(k) for k in ('pass', 'compared', 'changed', 'seconds')}
        elif kind == 'verify':
            f['verify'].append({k: e.get(k) for k in ('round', 'differing_chunks')})
        elif kind == 'freeze':
            f['freeze'] = {k: e.get(k) for k in ('filesystems', 'ms')}
        elif kind == 'report':
            f['report'].append({'level': e.get('level'), 'text': e.get('text')})
        elif kind == 'reconnect':
            f['reconnects'] += 1
            f['last_reconnect'] = e.get('reason') or ''
        elif kind == 'error':
            f['error'] = e.get('message') or ''
        elif kind == 'summary':
            f['summary'] = dict((k, v) for k, v in e.items() if k != 'event')
            f['result'] = e.get('result') or ''
        elif kind == 'check':
            f['checks'].append({k: e.get(k) for k in ('check', 'level', 'found', 'fix')})
        elif kind == 'check_summary':
            f['check_summary'] = {k: e.get(k) for k in ('result', 'pass', 'warn', 'fail')}
        elif kind == 'status':
            f['status'] = dict((k, v) for k, v in e.items() if k != 'event')
    if f['bytes_total']:
        # A resumed run re-sends up to a flush window: never past 100 %.
        f['bytes_done'] = min(f['bytes_done'], f['bytes_total'])
    if f['report']:
        levels = [r.get('level') for r in f['report']]
        f['verdict'] = 'fail' if 'fail' in levels else 'warn' if 'warn' in levels else 'pass'
    # Progress lines come every 5 s; between them the flushes tell the rate.
    if not f['first_pass_done'] and len(flushes) == 2 and flushes[1][0] > flushes[0][0]:
        r = (flushes[1][1] - flushes[0][1]) / (flushes[1][0] - flushes[0][0])
        if r > 0:
            f['rate'] = r
    if not f['first_pass_done'] and f['rate'] > 0 and f['bytes_total']:
        f['eta'] = max(0, int((f['bytes_total'] - f['bytes_done']) / f['rate'] + 0.5))
    if f['first_pass_done'] and not f['summary']:
        f['eta'] = None
    return f


def phase_of(f, running, rc, cutover_requested):
    """The phase of a run from its fold, whether its process lives, its exit
    status (None while running or unknown) and whether a cutover was asked."""
    result = f.get('result') or ''
    if running:
        if cutover_requested:
            return 'cutover'
        if f.get('first_pass_done'):
            return 'in_step'
        return 'copying' if f.get('plan') else 'starting'
    if result.startswith('migrated'):
        return 'migrated'
    if result.startswith('interrupted'):
        return 'stopped'
    if result == 'synced' and rc in (0, None):
        return 'synced'
    if rc == 3 or (f.get('check_summary') or {}).get('fail'):
        return 'check_failed'
    return 'failed'


def human_bytes(n):
    if n is None:
        return '-'
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024.0
    return '%.1f TiB' % n


def human_eta(secs):
    if secs is None or secs < 0:
        return '-'
    secs = int(secs)
    if secs >= 3600:
        return '%d:%02d:%02d' % (secs // 3600, secs // 60 % 60, secs % 60)
    return '%d:%02d' % (secs // 60, secs % 60)


ROW_FIELDS = ('host', 'phase', 'bytes_done', 'bytes_total', 'bytes_sent', 'rate', 'eta',
              'passes', 'run', 'verdict', 'error', 'resume_command')


def row_of(host, fact, failure=None):
    """One host's row of the wave from its `ferry` fact and, if a task of
    the role failed, that failure ({'task': ..., 'msg': ...})."""
    fact = fact or {}
    row = {
        'host': host,
        'phase': fact.get('phase') or 'unknown',
        'bytes_done': fact.get('bytes_done') or 0,
        'bytes_total': fact.get('bytes_total') or 0,
        'bytes_sent': fact.get('bytes_sent_all_runs') or 0,
        'rate': int(fact.get('rate') or 0),
        'eta': fact.get('eta'),
        'passes': fact.get('passes') or 0,
        'run': fact.get('run') or 0,
        'verdict': fact.get('verdict') or '',
        'error': fact.get('error') or '',
        'resume_command': fact.get('resume_command') or '',
    }
    if failure and failure.get('msg'):
        # What failed in this run (a check FAIL, a timeout, the copy of
        # the agent) is newer than the last run's error in the fact.
        row['error'] = str(failure.get('msg'))
        if row['phase'] not in ('failed', 'check_failed'):
            row['phase'] = 'failed'
    if not fact:
        row['error'] = row['error'] or 'no result from this host (unreachable, or the role did not run)'
    if row['phase'] not in ('failed', 'check_failed', 'stopped'):
        row['resume_command'] = ''
    return row


def table(rows, width=60):
    """The wave as a fixed-width text table, one line per host, then totals."""
    head = ('HOST', 'PHASE', 'SENT / TOTAL', 'RATE', 'ETA', 'PASSES', 'LAST ERROR')
    lines = []
    body = []
    for r in rows:
        body.append((
            r['host'], r['phase'],
            '%s / %s' % (human_bytes(r['bytes_done']), human_bytes(r['bytes_total'])),
            ('%.1f MB/s' % (r['rate'] / 1e6)) if r['rate'] else '-',
            human_eta(r['eta']) if r['phase'] == 'copying' else '-',
            str(r['passes']),
            _clip(r['error'], width) or '-',
        ))
    w = [len(h) for h in head]
    for b in body:
        w = [max(a, len(c)) for a, c in zip(w, b)]
    fmt = '  '.join('%%-%ds' % n for n in w)
    lines.append((fmt % head).rstrip())
    for b in body:
        lines.append((fmt % b).rstrip())
    counts = {}
    for r in rows:
        counts[r['phase']] = counts.get(r['phase'], 0) + 1
    done = sum(r['bytes_done'] for r in rows)
    total = sum(r['bytes_total'] for r in rows)
    lines.append('%d host(s): %s; %s of %s copied' % (
        len(rows), ', '.join('%d %s' % (counts[k], k) for k in sorted(counts)),
        human_bytes(done), human_bytes(total)))
    for r in rows:
        if r['resume_command']:
            lines.append('resume %s: %s' % (r['host'], r['resume_command']))
    return lines


def _clip(s, width):
    s = ' '.join(str(s or '').split())
    return s if len(s) <= width else s[:width - 3] + '...'


def to_csv(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROW_FIELDS), lineterminator='\n')
    w.writeheader()
    for r in rows:
        w.writerow(dict((k, '' if r.get(k) is None else r.get(k)) for k in ROW_FIELDS))
    return buf.getvalue()
