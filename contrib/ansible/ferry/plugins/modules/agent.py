#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drives the ferry agent on a source server.

This module owns a source's side of a wave: it runs `ferry` with --json,
keeps each long run (migrate, sync, cutover) as a detached process whose
events, exit status and exact command line are recorded under
STATE_DIR/ansible, and folds those events into the `ferry` fact. It never
keeps migration state of its own: what was committed is ferry's state file,
so a re-run (or a new control node) resumes through ferry. Copying the
agent onto the source is the action plugin's part.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: agent
short_description: Run the ferry agent (check, migrate, sync, cutover, status, clean) on a source server
version_added: "0.1.0"
description:
  - Copies the static C(ferry) agent onto the source when it is missing or
    different (with I(agent_src), through the action plugin), then runs one
    of its commands with C(--json) and returns the parsed events as the
    C(ferry) fact (plan, bytes, rate, ETA, passes, verify, boot-readiness
    report, exit status, error and the exact command that resumes a failed
    run).
  - C(migrate), C(sync) and C(cutover) run the agent as a detached process
    whose events go to I(state_dir)C(/ansible/runs/); the module waits for
    it as I(wait) says. A migration therefore outlives the task, the SSH
    connection and the control node, and the next run of the module
    attaches to it instead of starting a second agent.
  - Resuming is ferry's own (its state file in I(state_dir), keyed by the
    destination's token). A migration that failed is started again with the
    same options and continues from what the destination committed.
author:
  - ferry contributors
options:
  command:
    description:
      - C(check) runs C(ferry check) (read-only; fails when a check FAILs).
      - C(migrate) starts C(ferry migrate) (or attaches to the one running);
        with I(sync_interval) the agent keeps the destination in step after
        the first pass until C(cutover).
      - C(sync) runs one incremental pass (C(ferry sync)).
      - C(cutover) sends SIGUSR1 to the running migration (a final pass, with
        I(freeze) the filesystems frozen, then verify and hand-off); without a
        running agent it runs C(ferry migrate --freeze), which resumes.
      - C(status) runs C(ferry status) against the destination (read-only).
      - C(clean) stops a running agent and runs C(ferry clean).
      - C(stop) interrupts the running agent (SIGINT); the destination stays
        in migration mode and C(migrate) continues later.
      - C(progress) only reads what is recorded on the source (no connection
        to the destination); with I(wait) it waits for the run.
    type: str
    required: true
    choices: [check, migrate, sync, cutover, status, clean, stop, progress]
  to:
    description:
      - The destination, C(HOST[:PORT]) (port 443 by default). Required by
        every command but C(progress) and C(stop); C(check) without it runs
        only the source's checks.
    type: str
  token:
    description:
      - The destination's pairing token (keep it in Ansible Vault). It is
        written to I(state_dir)C(/ansible/token) (mode 0600) and given to the
        agent with C(--token-file), never on a command line. Removed when the
        migration is finished or cleaned.
    type: str
  token_file:
    description:
      - A file on the source that holds the token, instead of I(token).
    type: path
  disks:
    description:
      - C(SRC=DST) pairs (C(/dev/sda=vda)); a source may be an image file.
        Without it every whole disk of the source is sent, in ferry's order.
    type: list
    elements: str
    default: []
  agent:
    description:
      - Where the agent is (or goes) on the source.
    type: path
    default: /usr/local/sbin/ferry
  agent_src:
    description:
      - The static agent on the control node (C(build/out/ferry)). Copied to
        I(agent) (mode 0755) when missing or different, by checksum; in check
        mode only reported.
    type: path
  state_dir:
    description:
      - ferry's state directory (C(--state-dir)); the module's records go to
        its C(ansible/) subdirectory.
    type: path
    default: /var/lib/ferry
  wait:
    description:
      - C(exit) waits until the agent exits; C(first_pass) until the first
        pass (the initial copy) is done or the agent exits; C(none) returns
        at once.
      - The default is C(none) for C(progress), C(exit) for the others.
      - Long waits belong under Ansible's C(async)/C(poll); the agent is
        detached, so an async timeout never kills a migration.
    type: str
    choices: [exit, first_pass, none]
  timeout:
    description:
      - Seconds to wait at most (0, no limit). A wait that times out fails
        the task but leaves the agent running.
    type: int
    default: 0
  sync_interval:
    description:
      - C(migrate) only. After the first pass, an incremental pass every
        this long (C(90s), C(30m), C(1h)) until C(cutover) or C(stop).
    type: str
  freeze:
    description:
      - Freeze the source's mounted filesystems for the final pass of the
        cutover (C(--freeze)). Given to C(migrate) at its start; C(cutover)
        of an agent started without it restarts the agent with it.
    type: bool
    default: true
  freeze_timeout:
    description: Seconds the filesystems may stay frozen (C(--freeze-timeout)).
    type: int
  checksum:
    description: Verify every sent range by hashes after the copy (C(--checksum)).
    type: bool
    default: false
  grow:
    description: Grow the last partition into a larger destination disk (C(--grow)).
    type: bool
    default: false
  handoff:
    description: What the destination does after the migration or clean (C(--handoff)).
    type: str
    choices: [reboot, kexec, poweroff, shell]
  streams:
    description: Parallel TLS connections (C(--streams)).
    type: int
  bwlimit:
    description: Bandwidth cap (C(--bwlimit)), for example C(50M) or C(200Mbit).
    type: str
  compress:
    description: The zstd level, 0 for off (C(--compress)).
    type: int
  flush_every:
    description: MiB between the destination's durable points (C(--flush-every)).
    type: int
  retries:
    description: Reconnect attempts of a dropped connection (C(--retries)).
    type: int
  proxy:
    description:
      - HTTP CONNECT proxy URL (C(--proxy)) for every command that reaches the
        destination; a ferry relay (C(ferry.mode=relay)) is given here too,
        e.g. C(http://192.0.2.9:443).
      - Empty (C("")) ignores the source's C(https_proxy).
    type: str
  ignore_check:
    description: Go on when a check FAILs (C(--ignore-check)).
    type: bool
    default: false
  restart:
    description:
      - Start over (C(--restart)) instead of resuming, and start a new
        migration of a source whose last migration finished.
    type: bool
    default: false
  wipe:
    description: For C(clean), blank the disks the migration was writing (C(--wipe)).
    type: bool
    default: false
  extra_args:
    description: More arguments for the agent, appended as they are.
    type: list
    elements: str
    default: []
notes:
  - Check mode runs C(check), C(status) and C(progress) (they change
    nothing) and only reports what the other commands would do.
  - C(migrate), C(sync) and C(cutover) refuse to start a second agent for
    the same I(state_dir) while one runs.
seealso:
  - name: ferry(1)
    description: The agent's manual page, C(man -l doc/ferry.1).
'''

EXAMPLES = r'''
- name: Check the source and its destination
  ferry.migrate.agent:
    command: check
    agent_src: build/out/ferry
    to: "{{ ferry_to }}"
    token: "{{ ferry_token }}"

- name: Initial copy, then keep in step every 30 minutes (returns after the first pass)
  ferry.migrate.agent:
    command: migrate
    to: "{{ ferry_to }}"
    token: "{{ ferry_token }}"
    disks: [/dev/sda=vda]
    sync_interval: 30m
    wait: first_pass
  async: 86400
  poll: 30

- name: Where every host stands, read on the source
  ferry.migrate.agent:
    command: progress
  register: where

- name: Cut over (frozen final pass, verify, hand-off)
  ferry.migrate.agent:
    command: cutover
    to: "{{ ferry_to }}"
    token: "{{ ferry_token }}"
    disks: [/dev/sda=vda]
    checksum: true
  async: 7200
  poll: 10

- name: Give up and blank what was written
  ferry.migrate.agent:
    command: clean
    to: "{{ ferry_to }}"
    token: "{{ ferry_token }}"
    wipe: true
    handoff: poweroff
'''

RETURN = r'''
ferry:
  description: What the agent did, folded from its events; also set as the fact C(ansible_facts.ferry).
  returned: always
  type: dict
  contains:
    phase:
      description: >-
        not_started, checked, check_failed, starting, copying, in_step,
        cutover, stopped, failed, synced, migrated or cleaned.
      type: str
      sample: in_step
    running:
      description: Whether an agent process runs for this state directory.
      type: bool
    pid:
      description: The running agent's process id (0 when none).
      type: int
    run:
      description: Number of the agent runs recorded (each migrate, sync or cutover start).
      type: int
    rc:
      description: The last run's exit status (null while it runs).
      type: int
    plan:
      description: One entry per disk (source, destination, size, table, partitions, send).
      type: list
      elements: dict
    bytes_total:
      description: Bytes the first pass sends (the used blocks of every disk).
      type: int
    bytes_done:
      description: Bytes of I(bytes_total) done (durable at the destination).
      type: int
    bytes_sent:
      description: Bytes on the wire in the last run (its summary), 0 before it ends.
      type: int
    bytes_sent_all_runs:
      description: Bytes on the wire over every run of this migration.
      type: int
    rate:
      description: Bytes per second of the first pass, smoothed.
      type: float
    eta:
      description: Seconds left in the first pass (null when not copying).
      type: int
    passes:
      description: Passes done (the first pass counts as 1).
      type: int
    last_pass:
      description: The last incremental pass (pass, compared, changed, seconds).
      type: dict
    verify:
      description: C(--checksum) rounds (round, differing_chunks).
      type: list
      elements: dict
    freeze:
      description: The cutover's freeze (filesystems, ms).
      type: dict
    report:
      description: The destination's boot-readiness report (level, text).
      type: list
      elements: dict
    verdict:
      description: pass, warn or fail of the report.
      type: str
    error:
      description: The agent's last error message.
      type: str
    result:
      description: The summary's result (migrated, interrupted..., failed).
      type: str
    summary:
      description: The last summary event as ferry printed it.
      type: dict
    checks:
      description: The checks of the last C(check) (check, level, found, fix).
      type: list
      elements: dict
    status:
      description: The destination's status (C(status)).
      type: dict
    resume_command:
      description: The exact command that resumes the last run on the source (no token in it).
      type: str
    agent_version:
      description: C(ferry version) of the agent on the source.
      type: str
events:
  description: The last events of the command's run (at most 200).
  returned: when a command ran
  type: list
  elements: dict
cmd:
  description: The agent's command line (the token is never on it).
  returned: when a command ran or would run
  type: list
  elements: str
rc:
  description: The agent's exit status.
  returned: when a command ran to its end
  type: int
'''

import errno
import fcntl
import json
import os
import shlex
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ferry.migrate.plugins.module_utils.ferry_events import (
    KEEP_EVENTS, fold, parse_events, phase_of)

POLL = 0.5
# A started agent writes its pid at once; this long without one is a fault.
START_WAIT = 10
# Events after these mean the agent's signal handlers are installed (they
# are set right after the plan): SIGUSR1 before that would kill it.
SIGNAL_SAFE = ('flush', 'progress', 'done', 'pass', 'reconnect', 'freeze', 'summary')


class Runs(object):
    """The module's records under STATE_DIR/ansible: one directory entry
    set per agent run (N.json meta, N.ndjson events, N.err, N.pid, N.rc)."""

    def __init__(self, state_dir):
        self.dir = os.path.join(state_dir, 'ansible')
        self.runs = os.path.join(self.dir, 'runs')
        self.token = os.path.join(self.dir, 'token')
        self.check = os.path.join(self.dir, 'check.ndjson')
        self.cleaned = os.path.join(self.dir, 'cleaned')
        self._lock = None
        self.before_phase = None

    def ensure(self):
        for d in (self.dir, self.runs):
            if not os.path.isdir(d):
                os.makedirs(d, 0o700)

    def lock(self):
        """One module run at a time per state dir: two playbooks (or a dead
        control node's async task and a new one) never start two agents."""
        self.ensure()
        self._lock = open(os.path.join(self.dir, 'lock'), 'a')
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def unlock(self):
        """Waits happen unlocked: a second module run then attaches to the
        agent instead of blocking behind an hours-long wait."""
        if self._lock:
            self._lock.close()
            self._lock = None

    def path(self, n, ext):
        return os.path.join(self.runs, '%d.%s' % (n, ext))

    def numbers(self):
        try:
            names = os.listdir(self.runs)
        except OSError:
            return []
        out = []
        for name in names:
            stem, dot, ext = name.partition('.')
            if ext == 'json' and stem.isdigit():
                out.append(int(stem))
        return sorted(out)

    def meta(self, n):
        try:
            with open(self.path(n, 'json')) as f:
                return json.load(f)
        except (OSError, IOError, ValueError):
            return None

    def save_meta(self, n, meta):
        tmp = self.path(n, 'json.tmp')
        with open(tmp, 'w') as f:
            json.dump(meta, f)
        os.rename(tmp, self.path(n, 'json'))

    def read_small(self, n, ext):
        try:
            with open(self.path(n, ext)) as f:
                return f.read(64).strip()
        except (OSError, IOError):
            return ''

    def events(self, n):
        try:
            with open(self.path(n, 'ndjson'), 'rb') as f:
                return parse_events(f.read().decode('utf-8', 'replace'))
        except (OSError, IOError):
            return []

    def pid(self, n):
        v = self.read_small(n, 'pid')
        return int(v) if v.isdigit() else 0

    def rc(self, n):
        v = self.read_small(n, 'rc')
        try:
            return int(v)
        except ValueError:
            return None

    def alive(self, n, state_dir):
        """The run's agent lives: its pid is there and still ferry with this
        state dir on its command line (pids are reused)."""
        pid = self.pid(n)
        if not pid or self.rc(n) is not None:
            return 0
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                argv = f.read().split(b'\0')
        except (OSError, IOError):
            return 0
        if state_dir.encode() not in argv:
            return 0
        return pid


def token_write(runs, token):
    runs.ensure()
    fd = os.open(runs.token + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(token.strip() + '\n')
    os.rename(runs.token + '.tmp', runs.token)


def token_remove(runs):
    try:
        os.unlink(runs.token)
    except OSError:
        pass


def build_argv(p, command, token_file, freeze=None):
    """The agent's command line for migrate/sync/status/check/clean."""
    a = [p['agent'], command, '--json']
    if p['to']:
        a += ['--to', p['to']]
    if token_file:
        a += ['--token-file', token_file]
    if command in ('migrate', 'sync', 'check'):
        for d in p['disks']:
            a += ['--disk', d]
    if command in ('migrate', 'sync'):
        a += ['--state-dir', p['state_dir']]
        for opt, key in (('--bwlimit', 'bwlimit'), ('--streams', 'streams'),
                         ('--compress', 'compress'), ('--flush-every', 'flush_every'),
                         ('--retries', 'retries')):
            if p[key] is not None:
                a += [opt, str(p[key])]
        if p['checksum'] and command == 'migrate':
            a.append('--checksum')
        if p['ignore_check'] and command == 'migrate':
            a.append('--ignore-check')
        if p['restart']:
            a.append('--restart')
    if command in ('migrate', 'sync', 'status', 'check', 'clean') and p['proxy'] is not None:
        a += ['--proxy', p['proxy']]
    if command == 'migrate':
        if p['grow']:
            a.append('--grow')
        if p['sync_interval'] and freeze is None:
            a += ['--sync-interval', p['sync_interval']]
        if p['freeze'] if freeze is None else freeze:
            a.append('--freeze')
            if p['freeze_timeout']:
                a += ['--freeze-timeout', str(p['freeze_timeout'])]
    if command in ('migrate', 'clean') and p['handoff']:
        a += ['--handoff', p['handoff']]
    if command == 'clean' and p['wipe']:
        a.append('--wipe')
    return a + list(p['extra_args'])


def start_detached(runs, n, argv, meta):
    """Starts the agent in a session of its own, with a waiter process that
    records its exit status: it survives the task, the connection and the
    control node. Returns its pid."""
    runs.save_meta(n, meta)
    for ext in ('pid', 'rc'):
        try:
            os.unlink(runs.path(n, ext))
        except OSError:
            pass
    first = os.fork()
    if first == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            # The waiter: nothing of Ansible's pipes may stay open here, or
            # the connection would wait for the migration to end.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            ev = open(runs.path(n, 'ndjson'), 'ab')
            er = open(runs.path(n, 'err'), 'ab')
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=ev, stderr=er,
                                    close_fds=True, cwd='/')
            with open(runs.path(n, 'pid.tmp'), 'w') as f:
                f.write('%d\n' % proc.pid)
            os.rename(runs.path(n, 'pid.tmp'), runs.path(n, 'pid'))
            rc = proc.wait()
            if rc < 0:
                rc = 128 - rc
            with open(runs.path(n, 'rc.tmp'), 'w') as f:
                f.write('%d\n' % rc)
            os.rename(runs.path(n, 'rc.tmp'), runs.path(n, 'rc'))
        finally:
            os._exit(0)
    os.waitpid(first, 0)
    deadline = time.time() + START_WAIT
    while time.time() < deadline:
        pid = runs.pid(n)
        if pid:
            return pid
        time.sleep(0.05)
    return 0


def describe(runs, p, extra=None):
    """The `ferry` fact: the last run folded, its process state, every
    run's wire bytes, the last check."""
    nums = runs.numbers()
    fact = fold([])
    fact.update({'phase': 'not_started', 'running': False, 'pid': 0, 'run': len(nums),
                 'rc': None, 'bytes_sent': 0, 'bytes_sent_all_runs': 0,
                 'resume_command': '', 'command': '', 'started': None,
                 'agent_version': '', 'state_dir': p['state_dir']})
    if os.path.exists(runs.check):
        try:
            with open(runs.check) as f:
                chk = fold(parse_events(f.read()))
            fact['checks'] = chk['checks']
            fact['check_summary'] = chk['check_summary']
            fact['phase'] = 'check_failed' if (chk['check_summary'].get('fail') or 0) else 'checked'
        except (OSError, IOError):
            pass
    total = 0
    for n in nums:
        if n != nums[-1]:
            s = fold(runs.events(n))['summary']
            total += s.get('bytes_sent') or 0
    if nums:
        n = nums[-1]
        meta = runs.meta(n) or {}
        f = fold(runs.events(n))
        pid = runs.alive(n, p['state_dir'])
        rc = runs.rc(n)
        checks, check_summary = fact['checks'], fact['check_summary']
        fact.update(f)
        if not f['checks']:
            fact['checks'], fact['check_summary'] = checks, check_summary
        fact['running'] = bool(pid)
        fact['pid'] = pid
        fact['rc'] = rc
        fact['command'] = meta.get('command', '')
        fact['started'] = meta.get('started')
        fact['phase'] = phase_of(f, bool(pid), rc, bool(meta.get('cutover_requested')))
        if not pid and rc is None and not f['summary']:
            fact['error'] = f['error'] or 'the agent (pid %s) is gone without a summary: killed?' % (
                runs.pid(n) or '?')
        fails = fail_checks(f['checks'])
        if fact['phase'] == 'check_failed' and fails:
            # migrate's own checks stopped it: say which, not "see above".
            fact['error'] = fails
        if fact['phase'] in ('failed', 'check_failed') and not fact['error']:
            err = tail(runs.path(n, 'err'))
            fact['error'] = err or 'the agent exited with status %s' % rc
        fact['bytes_sent'] = f['summary'].get('bytes_sent') or 0
        total += fact['bytes_sent']
        argv = [a for a in meta.get('argv', []) if a != '--restart']
        fact['resume_command'] = ' '.join(shlex.quote(a) for a in argv)
    fact['bytes_sent_all_runs'] = total
    if os.path.exists(runs.cleaned) and not fact['running']:
        fact['phase'] = 'cleaned'
    if extra:
        fact.update(extra)
    return fact


def fail_checks(checks):
    """The FAIL lines of ferry check, with their fixes, as one message."""
    return '; '.join('%s: %s (%s)' % (c['check'], c['found'], c['fix'])
                     for c in checks if c.get('level') == 'FAIL')


def tail(path):
    """The agent's last error line (or last lines) from its stderr file."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 8192))
            return tail_text(f.read().decode('utf-8', 'replace'))
    except (OSError, IOError):
        return ''


def tail_text(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errs = [line for line in lines if 'error' in line]
    return (errs[-1] if errs else ' | '.join(lines[-3:])).replace('ferry: error: ', '')


def wait_run(runs, n, p, until):
    """Waits for run n: until it exits, or its first pass is done. Returns
    True when the condition held, False on timeout."""
    deadline = time.time() + p['timeout'] if p['timeout'] else None
    while True:
        pid = runs.alive(n, p['state_dir'])
        if not pid:
            # The waiter writes rc right after the exit; give it a moment.
            for _ in range(20):
                if runs.rc(n) is not None:
                    break
                time.sleep(0.05)
            return True
        if until == 'first_pass':
            evs = runs.events(n)
            if any(e['event'] in ('done', 'summary') for e in evs):
                return True
        if deadline and time.time() > deadline:
            return False
        time.sleep(POLL)


def waitu(runs, n, p, until):
    runs.unlock()
    return wait_run(runs, n, p, until)


def signal_run(runs, n, p, sig):
    """Sends sig once the agent's handlers are installed (see SIGNAL_SAFE);
    returns False if the agent exited first or the timeout passed."""
    deadline = time.time() + (p['timeout'] or 3600)
    while time.time() < deadline:
        pid = runs.alive(n, p['state_dir'])
        if not pid:
            return False
        if any(e['event'] in SIGNAL_SAFE for e in runs.events(n)):
            try:
                os.kill(pid, sig)
            except OSError as e:
                if e.errno == errno.ESRCH:
                    return False
                raise
            return True
        time.sleep(POLL)
    return False


def agent_version(module, p):
    if not os.access(p['agent'], os.X_OK):
        return ''
    rc, out, err = module.run_command([p['agent'], 'version'])
    return out.strip() if rc == 0 else ''


def token_arg(module, runs, p):
    """The --token-file the agent gets: the user's, or ours written from
    the token (not in check mode: nothing is written then)."""
    if p['token_file']:
        return p['token_file']
    if p['token']:
        if not module.check_mode:
            token_write(runs, p['token'])
        return runs.token
    return None


def run_foreground(module, p, argv):
    env = None
    if module.check_mode and p['token'] and not p['token_file']:
        # Nothing is written in check mode: the token goes by environment
        # (the agent reads FERRY_TOKEN) and not on the command line.
        argv = [a for a in argv]
        i = argv.index('--token-file')
        del argv[i:i + 2]
        env = {'FERRY_TOKEN': p['token']}
    rc, out, err = module.run_command(argv, environ_update=env)
    return rc, out, err


def finish(module, runs, p, changed, cmd=None, n=None, rc=None, extra=None, failed=False, msg='',
           events=None):
    fact = describe(runs, p, extra)
    fact['agent_version'] = agent_version(module, p)
    res = dict(changed=changed, ferry=fact, ansible_facts={'ferry': fact})
    if cmd is not None:
        res['cmd'] = cmd
    if events is not None:
        res['events'] = events[-KEEP_EVENTS:]
    elif n is not None:
        res['events'] = runs.events(n)[-KEEP_EVENTS:]
    if rc is not None:
        res['rc'] = rc
    if fact['phase'] == 'migrated' and not fact['running'] and not module.check_mode:
        token_remove(runs)
    if module._diff:
        res['diff'] = {'before': 'phase: %s\n' % (runs.before_phase or fact['phase']),
                       'after': 'phase: %s\n' % fact['phase']}
    if failed:
        module.fail_json(msg=msg or fact['error'] or 'ferry failed', **res)
    if msg:
        res['msg'] = msg
    module.exit_json(**res)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type='str', required=True,
                         choices=['check', 'migrate', 'sync', 'cutover', 'status', 'clean',
                                  'stop', 'progress']),
            to=dict(type='str'),
            token=dict(type='str', no_log=True),
            token_file=dict(type='path'),
            disks=dict(type='list', elements='str', default=[]),
            agent=dict(type='path', default='/usr/local/sbin/ferry'),
            agent_src=dict(type='path'),
            state_dir=dict(type='path', default='/var/lib/ferry'),
            wait=dict(type='str', choices=['exit', 'first_pass', 'none']),
            timeout=dict(type='int', default=0),
            sync_interval=dict(type='str'),
            freeze=dict(type='bool', default=True),
            freeze_timeout=dict(type='int'),
            checksum=dict(type='bool', default=False),
            grow=dict(type='bool', default=False),
            handoff=dict(type='str', choices=['reboot', 'kexec', 'poweroff', 'shell']),
            streams=dict(type='int'),
            bwlimit=dict(type='str'),
            compress=dict(type='int'),
            flush_every=dict(type='int'),
            retries=dict(type='int'),
            proxy=dict(type='str'),
            ignore_check=dict(type='bool', default=False),
            restart=dict(type='bool', default=False),
            wipe=dict(type='bool', default=False),
            extra_args=dict(type='list', elements='str', default=[]),
        ),
        mutually_exclusive=[['token', 'token_file']],
        required_if=[
            ['command', 'migrate', ['to']], ['command', 'sync', ['to']],
            ['command', 'cutover', ['to']], ['command', 'status', ['to']],
            ['command', 'clean', ['to']],
        ],
        supports_check_mode=True,
    )
    p = module.params
    cmd = p['command']
    if p['wait'] is None:
        p['wait'] = 'none' if cmd == 'progress' else 'exit'
    runs = Runs(p['state_dir'])
    if not module.check_mode and cmd != 'progress':
        runs.lock()
    before = describe(runs, p)
    runs.before_phase = before['phase']
    extra = {}

    if cmd == 'progress':
        nums = runs.numbers()
        if p['wait'] != 'none' and nums and before['running'] and not module.check_mode:
            if not waitu(runs, nums[-1], p, p['wait']):
                finish(module, runs, p, False, extra=extra, failed=True,
                       msg='still %s after %d s' % (describe(runs, p)['phase'], p['timeout']))
        finish(module, runs, p, False, extra=extra)

    agent_ok = os.access(p['agent'], os.X_OK)
    if not agent_ok and cmd != 'stop':
        if module.check_mode:
            finish(module, runs, p, cmd not in ('check', 'status'), extra=extra,
                   msg='the agent is not at %s yet (check mode: it would be copied there)' % p['agent'])
        module.fail_json(msg='no agent at %s: give agent_src (the static build/out/ferry) to copy it there'
                         % p['agent'])

    if cmd in ('check', 'status'):
        argv = build_argv(p, cmd, token_arg(module, runs, p) if p['to'] else None)
        rc, out, err = run_foreground(module, p, argv)
        evs = parse_events(out)
        if cmd == 'check' and not module.check_mode:
            with open(runs.check + '.tmp', 'w') as f:
                f.write(out)
            os.rename(runs.check + '.tmp', runs.check)
        f = fold(evs)
        if cmd == 'check':
            extra.update(checks=f['checks'], check_summary=f['check_summary'])
            if not before['running'] and before['run'] == 0:
                extra['phase'] = 'check_failed' if rc == 3 else 'checked'
        else:
            extra['status'] = f['status']
        msg = ''
        if rc != 0:
            msg = fail_checks(f['checks']) or f['error'] or tail_text(err) or 'ferry %s exited %d' % (cmd, rc)
            extra['error'] = msg
        finish(module, runs, p, False, cmd=argv, rc=rc, extra=extra, events=evs,
               failed=rc != 0, msg=msg)

    nums = runs.numbers()
    last = nums[-1] if nums else 0
    running = runs.alive(last, p['state_dir']) if last else 0

    if cmd == 'stop':
        if not running:
            finish(module, runs, p, False, extra=extra)
        if module.check_mode:
            finish(module, runs, p, True, extra=extra, msg='would interrupt the agent (pid %d)' % running)
        signal_run(runs, last, p, signal.SIGINT)
        waitu(runs, last, p, 'exit')
        finish(module, runs, p, True, n=last, rc=runs.rc(last), extra=extra)

    if cmd == 'clean':
        argv = build_argv(p, 'clean', token_arg(module, runs, p))
        if module.check_mode:
            finish(module, runs, p, True, cmd=argv, extra=extra, msg='would run ferry clean')
        if running:
            signal_run(runs, last, p, signal.SIGINT)
            waitu(runs, last, p, 'exit')
        rc, out, err = module.run_command(argv)
        evs = parse_events(out)
        extra['report'] = [{'level': e.get('level'), 'text': e.get('text')} for e in evs
                           if e['event'] == 'report']
        if rc != 0:
            msgs = [e.get('message') for e in evs if e['event'] == 'error']
            extra['error'] = (msgs[-1] if msgs else '') or \
                err.strip().replace('ferry: error: ', '') or 'ferry clean exited %d' % rc
            finish(module, runs, p, True, cmd=argv, rc=rc, extra=extra, failed=True)
        open(runs.cleaned, 'w').close()
        token_remove(runs)
        finish(module, runs, p, True, cmd=argv, rc=rc, extra=extra)

    # migrate, sync, cutover: the long runs.
    if before['phase'] == 'migrated' and not p['restart']:
        finish(module, runs, p, False, extra=extra, msg='already migrated')
    if cmd == 'sync' and running:
        module.fail_json(msg='a ferry %s run (pid %d) is active: cut it over or stop it first'
                         % (before['command'], running), ferry=before)

    if cmd == 'migrate' and running:
        # Attach: the agent started earlier (by a control node that may be
        # gone) goes on; nothing starts twice, nothing is sent again.
        if p['wait'] != 'none' and not module.check_mode:
            ok = waitu(runs, last, p, p['wait'])
            if not ok:
                finish(module, runs, p, False, n=last, extra=extra, failed=True,
                       msg='still %s after %d s' % (describe(runs, p)['phase'], p['timeout']))
        fact = describe(runs, p)
        finish(module, runs, p, False, n=last, extra=extra,
               failed=fact['phase'] in ('failed', 'check_failed'))

    tf = token_arg(module, runs, p)
    if cmd == 'cutover':
        started_with_freeze = running and '--freeze' in ((runs.meta(last) or {}).get('argv') or [])
        if running and (started_with_freeze or not p['freeze']):
            if module.check_mode:
                finish(module, runs, p, True, extra=extra,
                       msg='would cut over the agent (pid %d) with SIGUSR1' % running)
            meta = runs.meta(last) or {}
            meta['cutover_requested'] = time.time()
            runs.save_meta(last, meta)
            if not signal_run(runs, last, p, signal.SIGUSR1) and runs.alive(last, p['state_dir']):
                finish(module, runs, p, True, n=last, extra=extra, failed=True,
                       msg='the agent did not become ready for the cutover in time')
            ok = waitu(runs, last, p, 'exit')
            fact = describe(runs, p)
            finish(module, runs, p, True, n=last, rc=runs.rc(last), extra=extra,
                   failed=not ok or fact['phase'] != 'migrated',
                   msg='' if ok else 'the cutover did not finish in %d s' % p['timeout'])
        if running:
            # Started without --freeze: its cutover would send no final
            # pass. Stop it; the run below resumes with the final pass.
            if module.check_mode:
                finish(module, runs, p, True, extra=extra,
                       msg='would stop the agent (pid %d) and cut over with --freeze' % running)
            signal_run(runs, last, p, signal.SIGINT)
            waitu(runs, last, p, 'exit')
            runs.lock()
        argv = build_argv(p, 'migrate', tf, freeze=p['freeze'])
        wait = 'exit'
    elif cmd == 'sync':
        argv = build_argv(p, 'sync', tf)
        wait = p['wait'] if p['wait'] != 'first_pass' else 'exit'
    else:
        argv = build_argv(p, 'migrate', tf)
        wait = p['wait']

    if module.check_mode:
        finish(module, runs, p, True, cmd=argv, extra=extra,
               msg='would run: %s' % ' '.join(shlex.quote(a) for a in argv))
    if os.path.exists(runs.cleaned):
        os.unlink(runs.cleaned)
    n = (nums[-1] if nums else 0) + 1
    pid = start_detached(runs, n, argv, {
        'run': n, 'command': cmd, 'argv': argv, 'started': time.time(),
        'cutover_requested': time.time() if cmd == 'cutover' else None})
    if not pid:
        finish(module, runs, p, True, cmd=argv, n=n, extra=extra, failed=True,
               msg='the agent did not start: %s' % (tail(runs.path(n, 'err')) or '?'))
    ok = True
    if wait != 'none':
        ok = waitu(runs, n, p, wait)
    fact = describe(runs, p)
    bad = fact['phase'] in ('failed', 'check_failed') or (
        cmd == 'cutover' and fact['phase'] != 'migrated' and not fact['running'])
    finish(module, runs, p, True, cmd=argv, n=n, rc=runs.rc(n), extra=extra,
           failed=bad or not ok,
           msg='' if ok else 'still %s after %d s (the agent goes on)' % (fact['phase'], p['timeout']))


if __name__ == '__main__':
    main()
