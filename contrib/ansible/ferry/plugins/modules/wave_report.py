#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of ferry.migrate.wave_report; the work is its action
plugin, on the control node, where every host's facts are."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: wave_report
short_description: One table, JSON and CSV for a wave of ferry migrations
version_added: "0.1.0"
description:
  - Runs on the control node. Reads the C(ferry) fact that
    M(ferry.migrate.agent) set on each host of the wave (and
    C(ferry_failure), which the C(ferry.migrate.wave) role sets when a task
    failed around the agent), and makes one row per host - host, phase,
    bytes done of the bytes to send, rate, ETA, passes, the last error and
    the exact command that resumes the host.
  - Writes I(path)C(.json) and I(path)C(.csv) and returns the table as
    lines, which the C(ferry.migrate.wave) callback prints as a table.
  - A host without a fact (unreachable, or the role never ran there) is
    listed too, with that said as its error.
author:
  - ferry contributors
options:
  hosts:
    description: The hosts of the wave, in the order of the table.
    type: list
    elements: str
    required: true
  path:
    description:
      - Where the report goes, without extension; C(.json) and C(.csv) are
        added. Without it nothing is written.
    type: path
  fail_on_error:
    description: Fail the task (after writing the report) when a host failed.
    type: bool
    default: false
notes:
  - Writes its files also in check mode (they describe the run, they are
    not the state of a managed host).
'''

EXAMPLES = r'''
- name: The wave's table and report files
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Report
      ferry.migrate.wave_report:
        hosts: "{{ groups['wave'] }}"
        path: "{{ playbook_dir }}/wave-report"
'''

RETURN = r'''
rows:
  description: One dict per host (host, phase, bytes_done, bytes_total, bytes_sent, rate, eta, passes, run, verdict, error, resume_command).
  returned: always
  type: list
  elements: dict
ferry_wave_table:
  description: The table, one line per element.
  returned: always
  type: list
  elements: str
failed_hosts:
  description: Hosts whose phase is failed or check_failed.
  returned: always
  type: list
  elements: str
files:
  description: The files written.
  returned: when path is given
  type: list
  elements: str
'''
