# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ferry_events on events recorded from the real agent (ferry migrate
--sync-interval 2s --freeze --json on a 48 MiB image), cut at the points a
wave sees them: while copying, in step, migrated, failed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import io
import unittest

from ansible_collections.ferry.migrate.plugins.module_utils.ferry_events import (
    fold, human_bytes, parse_events, phase_of, row_of, table, to_csv)

CHECKS = '''{"event":"check","check":"root","level":"PASS","found":"running as root","fix":""}
{"event":"check","check":"capacity","level":"PASS","found":"src.img -> vda: 48.0 MiB fits in 48.0 MiB","fix":""}
{"event":"check_summary","result":"WARN","pass":8,"warn":1,"fail":0}
'''
COPYING = '''{"event":"plan","t":0.054,"source":"src.img","destination":"vda","size":50331648,"table":"none","partitions":0,"send":29491200}
ferry: 2 streams
{"event":"flush","t":0.565,"seq":1,"durable":8388608}
{"event":"flush","t":1.496,"seq":2,"durable":17039360}
'''
IN_STEP = '''{"event":"flush","t":2.276,"seq":3,"durable":25296896}
{"event":"flush","t":2.660,"seq":4,"durable":29491200}
{"event":"progress","t":2.673,"phase":"sending","disk":"vda","done":29491200,"total":29491200,"rate":11303641,"eta":0}
{"event":"done","t":2.673,"sent":29491200}
{"event":"flush","t":4.764,"seq":6,"durable":29491200}
{"event":"pass","t":4.764,"pass":2,"compared":29491200,"changed":0,"seconds":0.091}
{"event":"pass","t":6.908,"pass":3,"compared":29491200,"changed":4096,"seconds":0.143}
'''
MIGRATED = '''{"event":"freeze","t":8.100,"filesystems":0,"ms":122}
{"event":"pass","t":8.100,"pass":0,"compared":29491200,"changed":0,"seconds":0.146}
{"event":"progress","t":8.2,"phase":"verifying","disk":"vda","done":29491200,"total":29491200,"rate":211353600,"eta":0}
{"event":"verify","t":8.3,"round":1,"differing_chunks":0}
{"event":"report","t":8.108,"level":"pass","text":"vda: 28.1 MiB written and flushed, first MiB last (disk 48.0 MiB)"}
{"event":"report","t":8.108,"level":"fail","text":"root filesystem: no ext2/3/4 filesystem holds /etc/fstab (looked at: vda ext4)"}
{"event":"summary","t":8.112,"result":"migrated, but the destination may not boot","disk_bytes":50331648,"bytes_read":117964800,"bytes_sent":21627768,"skipped_unused":20840448,"skipped_zero":7864320,"resent":0,"compressed_in":0,"compressed_out":0,"seconds":8.160}
'''
FAILED = '''{"event":"error","t":1.7,"message":"connection to the destination lost: closed"}
{"event":"summary","t":1.7,"result":"failed","disk_bytes":50331648,"bytes_read":9000000,"bytes_sent":8500000,"skipped_unused":0,"skipped_zero":0,"resent":0,"compressed_in":0,"compressed_out":0,"seconds":1.7}
'''


class TestParse(unittest.TestCase):

    def test_skips_log_lines_and_junk(self):
        evs = parse_events('ferry: 2 streams\n{"event":"done","sent":1}\n{"broken\n[1,2]\n{"no":"event"}\n')
        self.assertEqual(evs, [{'event': 'done', 'sent': 1}])

    def test_overlong_line_is_not_parsed(self):
        long = '{"event":"error","message":"%s"}' % ('x' * 70000)
        self.assertEqual(parse_events(long), [])

    def test_cut_summary_result(self):
        # Verbatim from ferry 0.1 after SIGINT: the result is cut at 63
        # bytes without its closing quote, so the line is not JSON.
        line = ('{"event":"summary","t":18.727,"result":"interrupted: the destination stays in migration mode; '
                'run ferr,"disk_bytes":50331648,"bytes_read":25362432,"bytes_sent":17433368,"skipped_unused":24969216,'
                '"skipped_zero":7929856,"resent":0,"compressed_in":0,"compressed_out":0,"seconds":18.774}')
        evs = parse_events(line)
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]['bytes_sent'], 17433368)
        self.assertEqual(evs[0]['seconds'], 18.774)
        self.assertTrue(evs[0]['result'].startswith('interrupted: the destination stays'))
        self.assertEqual(phase_of(fold(evs), False, 0, False), 'stopped')

    def test_cut_last_line(self):
        self.assertEqual(len(parse_events(COPYING + '{"event":"flush","t":1.9,"se')), 3)


class TestFold(unittest.TestCase):

    def test_checks(self):
        f = fold(parse_events(CHECKS))
        self.assertEqual(len(f['checks']), 2)
        self.assertEqual(f['check_summary']['fail'], 0)

    def test_copying(self):
        f = fold(parse_events(COPYING))
        self.assertEqual(f['bytes_total'], 29491200)
        self.assertEqual(f['bytes_done'], 17039360)
        self.assertFalse(f['first_pass_done'])
        # Between progress lines the rate comes from the last two flushes.
        self.assertAlmostEqual(f['rate'], (17039360 - 8388608) / (1.496 - 0.565), delta=1)
        self.assertTrue(0 < f['eta'] < 10)
        self.assertEqual(phase_of(f, True, None, False), 'copying')
        self.assertEqual(phase_of(f, True, None, True), 'cutover')

    def test_in_step(self):
        f = fold(parse_events(COPYING + IN_STEP))
        self.assertTrue(f['first_pass_done'])
        self.assertEqual(f['bytes_done'], f['bytes_total'])
        self.assertEqual(f['passes'], 3)
        self.assertEqual(f['last_pass']['changed'], 4096)
        self.assertIsNone(f['eta'])
        self.assertEqual(f['rate'], 11303641)
        self.assertEqual(phase_of(f, True, None, False), 'in_step')
        # The agent was stopped with SIGINT: not a failure.
        g = fold(parse_events(COPYING + IN_STEP + '{"event":"summary","result":"interrupted: the destination '
                              'stays in migration mode; run ferry migrate again to continue","bytes_sent":5}\n'))
        self.assertEqual(phase_of(g, False, 0, False), 'stopped')

    def test_migrated(self):
        f = fold(parse_events(CHECKS + COPYING + IN_STEP + MIGRATED))
        self.assertEqual(phase_of(f, False, 0, True), 'migrated')
        self.assertEqual(f['verdict'], 'fail')
        self.assertEqual(f['freeze'], {'filesystems': 0, 'ms': 122})
        self.assertEqual(f['verify'], [{'round': 1, 'differing_chunks': 0}])
        self.assertEqual(f['summary']['bytes_sent'], 21627768)
        # The verify pass's rate is not the copy's.
        self.assertEqual(f['rate'], 11303641)

    def test_failed(self):
        f = fold(parse_events(COPYING + FAILED))
        self.assertEqual(phase_of(f, False, 1, False), 'failed')
        self.assertEqual(f['error'], 'connection to the destination lost: closed')
        # Killed without a summary: failed too.
        self.assertEqual(phase_of(fold(parse_events(COPYING)), False, None, False), 'failed')
        self.assertEqual(phase_of(fold([]), False, 3, False), 'check_failed')


class TestWave(unittest.TestCase):

    def rows(self):
        ok = fold(parse_events(COPYING + IN_STEP + MIGRATED))
        ok.update(phase='migrated', bytes_sent_all_runs=21627768, run=1)
        bad = fold(parse_events(COPYING + FAILED))
        bad.update(phase='failed', run=1, resume_command='/usr/local/sbin/ferry migrate --to 10.0.0.2 ...')
        return [row_of('web1', ok), row_of('web2', bad),
                row_of('web3', {}), row_of('web4', dict(ok), {'task': 'Cut over', 'msg': 'timeout'})]

    def test_rows(self):
        r = self.rows()
        self.assertEqual([x['phase'] for x in r], ['migrated', 'failed', 'unknown', 'failed'])
        self.assertEqual(r[0]['resume_command'], '')
        self.assertTrue(r[1]['resume_command'].startswith('/usr/local/sbin/ferry migrate'))
        self.assertIn('unreachable', r[2]['error'])
        self.assertEqual(r[3]['error'], 'timeout')

    def test_table(self):
        lines = table(self.rows())
        self.assertTrue(lines[0].startswith('HOST'))
        self.assertEqual(len([line for line in lines if line.startswith('web')]), 4)
        self.assertIn('connection to the destination lost', lines[2])
        self.assertIn('4 host(s)', lines[5])
        self.assertTrue(any(line.startswith('resume web2: ') for line in lines))
        self.assertEqual(human_bytes(29491200), '28.1 MiB')

    def test_csv(self):
        rows = list(csv.DictReader(io.StringIO(to_csv(self.rows()))))
        self.assertEqual([x['host'] for x in rows], ['web1', 'web2', 'web3', 'web4'])
        self.assertEqual(rows[0]['bytes_sent'], '21627768')


if __name__ == '__main__':
    unittest.main()
