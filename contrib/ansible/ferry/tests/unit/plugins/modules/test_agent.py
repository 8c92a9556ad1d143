# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent module's own parts: the command lines it builds (the token is
never on one), and its detached runs - a real process started, found alive
by its pid, signalled only after its handlers are up, its exit status
recorded - with a small shell script standing in for ferry's signal and
event behaviour. The real agent is driven by qemu-tests/60-ansible-wave."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import signal
import tempfile
import unittest

from ansible_collections.ferry.migrate.plugins.modules import agent

PARAMS = dict(agent='/usr/local/sbin/ferry', to='10.0.0.2:443', token='SECRET-TOKEN', token_file=None,
              disks=['/dev/sda=vda'], state_dir='/var/lib/ferry', sync_interval='30m', freeze=True,
              freeze_timeout=None, checksum=True, grow=False, handoff='reboot', streams=None,
              bwlimit='50M', compress=None, flush_every=None, retries=2, proxy=None,
              ignore_check=False, restart=False, wipe=True, extra_args=[], timeout=20)

# Stands in for `ferry migrate --sync-interval`: a plan, then (like ferry)
# its SIGUSR1 handler, then the first pass; SIGUSR1 finishes it.
FAKE = r'''#!/bin/sh
echo '{"event":"plan","t":0.1,"source":"a","destination":"vda","size":100,"send":50}'
sleep 0.3
trap 'echo "{\"event\":\"summary\",\"result\":\"migrated\",\"bytes_sent\":50}"; exit 0' USR1
echo '{"event":"flush","t":0.5,"seq":1,"durable":50}'
echo '{"event":"done","t":0.5,"sent":50}'
while :; do sleep 0.1; done
'''


class TestArgv(unittest.TestCase):

    def test_migrate(self):
        a = agent.build_argv(PARAMS, 'migrate', '/var/lib/ferry/ansible/token')
        self.assertNotIn('SECRET-TOKEN', ' '.join(a))
        self.assertEqual(a[:3], ['/usr/local/sbin/ferry', 'migrate', '--json'])
        for want in (['--token-file', '/var/lib/ferry/ansible/token'], ['--disk', '/dev/sda=vda'],
                     ['--sync-interval', '30m'], ['--bwlimit', '50M'], ['--retries', '2'],
                     ['--state-dir', '/var/lib/ferry'], ['--handoff', 'reboot']):
            i = a.index(want[0])
            self.assertEqual(a[i:i + 2], want)
        self.assertIn('--freeze', a)
        self.assertIn('--checksum', a)
        self.assertNotIn('--wipe', a)

    def test_cutover_run_has_no_interval(self):
        a = agent.build_argv(PARAMS, 'migrate', '/t', freeze=True)
        self.assertNotIn('--sync-interval', a)
        self.assertIn('--freeze', a)

    def test_sync_check_clean(self):
        s = agent.build_argv(PARAMS, 'sync', '/t')
        for bad in ('--freeze', '--sync-interval', '--grow', '--checksum', '--handoff'):
            self.assertNotIn(bad, s)
        c = agent.build_argv(PARAMS, 'check', '/t')
        self.assertNotIn('--state-dir', c)
        k = agent.build_argv(PARAMS, 'clean', '/t')
        self.assertEqual(k[:3], ['/usr/local/sbin/ferry', 'clean', '--json'])
        self.assertIn('--wipe', k)

    def test_proxy_reaches_every_command(self):
        p = dict(PARAMS, proxy='http://proxy:3128')
        for cmd in ('migrate', 'sync', 'status', 'check', 'clean'):
            a = agent.build_argv(p, cmd, '/t')
            i = a.index('--proxy')
            self.assertEqual(a[i + 1], 'http://proxy:3128', cmd)


class TestRuns(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.fake = os.path.join(self.dir, 'ferry')
        with open(self.fake, 'w') as f:
            f.write(FAKE)
        os.chmod(self.fake, 0o755)
        self.p = dict(PARAMS, state_dir=self.dir, agent=self.fake)
        self.runs = agent.Runs(self.dir)
        self.runs.ensure()

    def tearDown(self):
        pid = self.runs.alive(1, self.dir)
        if pid:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir)

    def test_detached_run_cut_over(self):
        argv = [self.fake, 'migrate', '--state-dir', self.dir]
        pid = agent.start_detached(self.runs, 1, argv, {'run': 1, 'argv': argv, 'command': 'migrate'})
        self.assertGreater(pid, 0)
        self.assertEqual(self.runs.alive(1, self.dir), pid)
        # Another state dir's module does not take this process for its own.
        self.assertEqual(self.runs.alive(1, self.dir + '-other'), 0)
        self.assertTrue(agent.wait_run(self.runs, 1, self.p, 'first_pass'))
        self.assertEqual(agent.describe(self.runs, self.p)['phase'], 'in_step')
        self.assertTrue(agent.signal_run(self.runs, 1, self.p, signal.SIGUSR1))
        self.assertTrue(agent.wait_run(self.runs, 1, self.p, 'exit'))
        f = agent.describe(self.runs, self.p)
        self.assertEqual(f['rc'], 0)
        self.assertEqual(f['phase'], 'migrated')
        self.assertEqual(f['bytes_sent_all_runs'], 50)
        self.assertIn('--state-dir', f['resume_command'])

    def test_killed_run_is_failed(self):
        argv = [self.fake, 'migrate', '--state-dir', self.dir]
        pid = agent.start_detached(self.runs, 1, argv, {'run': 1, 'argv': argv, 'command': 'migrate'})
        os.kill(pid, signal.SIGKILL)
        agent.wait_run(self.runs, 1, self.p, 'exit')
        f = agent.describe(self.runs, self.p)
        self.assertEqual(f['rc'], 137)
        self.assertEqual(f['phase'], 'failed')
        self.assertTrue(f['error'])

    def test_token_file_mode(self):
        agent.token_write(self.runs, 'AAAA-BBBB\n')
        self.assertEqual(os.stat(self.runs.token).st_mode & 0o777, 0o600)
        with open(self.runs.token) as f:
            self.assertEqual(f.read(), 'AAAA-BBBB\n')
        agent.token_remove(self.runs)
        self.assertFalse(os.path.exists(self.runs.token))


if __name__ == '__main__':
    unittest.main()
