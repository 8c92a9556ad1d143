# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prints the wave's table once, at the end of ansible-playbook's output.

Keeps the last table that ferry.migrate.wave_report returned, and the last
`ferry` fact of each host for a run that never reached the report (the
control node's playbook was cut short: the table is made from what came
back). It prints; it never writes a file or changes a result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: wave
type: aggregate
short_description: The ferry wave's table at the end of the run
version_added: "0.1.0"
description:
  - Prints the table of M(ferry.migrate.wave_report) (host, phase, bytes
    sent of total, rate, ETA, passes, last error, the resume commands) after
    the play recap, without the quotes and brackets of a debug task.
  - Enable it with C(callbacks_enabled = ferry.migrate.wave) in ansible.cfg.
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
'''

from ansible.plugins.callback import CallbackBase
from ansible_collections.ferry.migrate.plugins.module_utils.ferry_events import row_of, table


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'ferry.migrate.wave'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.table = None
        self.facts = {}

    def v2_runner_on_ok(self, result):
        r = result._result
        if r.get('ferry_wave_table'):
            self.table = list(r['ferry_wave_table'])
        f = (r.get('ansible_facts') or {}).get('ferry')
        if isinstance(f, dict):
            self.facts[result._host.get_name()] = f

    def v2_runner_on_failed(self, result, ignore_errors=False):
        f = result._result.get('ferry')
        if isinstance(f, dict):
            self.facts[result._host.get_name()] = f

    def v2_playbook_on_stats(self, stats):
        lines = self.table
        if lines is None and self.facts:
            lines = table([row_of(h, self.facts[h]) for h in sorted(self.facts)])
        if not lines:
            return
        self._display.banner('FERRY WAVE')
        for line in lines:
            self._display.display(line)
