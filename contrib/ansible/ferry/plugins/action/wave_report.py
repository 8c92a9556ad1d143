# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ferry.migrate.wave_report: the wave's rows from every host's facts.

Runs on the control node only: reads hostvars (the `ferry` fact and the
role's `ferry_failure`), writes PATH.json and PATH.csv, returns the table.
It never contacts a host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.ferry.migrate.plugins.module_utils.ferry_events import (
    row_of, table, to_csv)


def _plain(v):
    """hostvars hand out lazy mappings and AnsibleUnsafe strings."""
    if isinstance(v, dict) or hasattr(v, 'items'):
        return dict((str(k), _plain(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, str):
        return str(v)
    return v


class ActionModule(ActionBase):

    _supports_check_mode = True
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = dict()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        hosts = args.get('hosts')
        if not isinstance(hosts, list):
            raise AnsibleActionFail('hosts: want a list of inventory host names')
        path = args.get('path')
        hv = task_vars.get('hostvars', {})
        rows = []
        for h in hosts:
            v = hv.get(h, {}) if hasattr(hv, 'get') else {}
            facts = _plain(v.get('ansible_facts', {}) or {}) if v else {}
            failure = _plain(v.get('ferry_failure')) if v else None
            rows.append(row_of(str(h), facts.get('ferry'), failure or None))
        lines = table(rows)
        failed = [r['host'] for r in rows if r['phase'] in ('failed', 'check_failed')
                  or (r['phase'] == 'unknown')]
        result.update(changed=False, rows=rows, ferry_wave_table=lines, failed_hosts=failed)
        if path:
            path = os.path.expanduser(path)
            d = os.path.dirname(path)
            if d and not os.path.isdir(d):
                os.makedirs(d)
            doc = {'generated': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                   'hosts': rows, 'failed_hosts': failed}
            for ext, text in (('json', json.dumps(doc, indent=2, sort_keys=True) + '\n'),
                              ('csv', to_csv(rows))):
                with open(path + '.' + ext + '.tmp', 'w') as f:
                    f.write(text)
                os.rename(path + '.' + ext + '.tmp', path + '.' + ext)
            result['files'] = [path + '.json', path + '.csv']
        if failed and args.get('fail_on_error'):
            result['failed'] = True
            result['msg'] = '%d of %d host(s) did not make it: %s (see the table)' % (
                len(failed), len(rows), ', '.join(failed))
        return result
