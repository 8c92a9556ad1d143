# -*- coding: utf-8 -*-
# Copyright: ferry contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's half of ferry.migrate.agent.

Owns one thing: putting the static agent (agent_src, on the control node)
onto the source at `agent` when it is missing or differs, through Ansible's
own copy action (checksums, check mode, become, diff), then running the
module, synchronously or under async. It never interprets ferry's output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

DEFAULT_AGENT = '/usr/local/sbin/ferry'


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        # ActionBase.__init__ sets both to its defaults; the module does
        # check mode, and its long commands are made to run under async.
        self._supports_check_mode = True
        self._supports_async = True
        if task_vars is None:
            task_vars = dict()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        args = dict(self._task.args)
        agent_src = args.pop('agent_src', None)
        copied = False
        if agent_src and args.get('command') not in ('progress', 'stop'):
            try:
                copied = self._copy_agent(agent_src, args.get('agent') or DEFAULT_AGENT, task_vars)
            except AnsibleActionFail as e:
                result.update(failed=True, msg=str(e))
                return result

        wrap_async = self._task.async_val and not self._connection.has_native_async
        mod = self._execute_module(module_name='ferry.migrate.agent', module_args=args,
                                   task_vars=task_vars, wrap_async=wrap_async)
        result = merge_hash(result, mod)
        result['agent_copied'] = copied
        if copied and not wrap_async:
            result['changed'] = True
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _copy_agent(self, src, dest, task_vars):
        try:
            src = self._find_needle('files', src)
        except Exception as e:
            raise AnsibleActionFail('agent_src %s: %s' % (src, e))
        d = posixpath.dirname(dest)
        if d:
            res = self._execute_module(module_name='ansible.legacy.file', task_vars=task_vars,
                                       module_args=dict(path=d, state='directory'))
            if res.get('failed'):
                raise AnsibleActionFail('%s: %s' % (d, res.get('msg', res)))
        task = self._task.copy()
        # The copy itself is quick and never async, whatever the task is.
        task.async_val = 0
        task.args = dict(src=src, dest=dest, mode='0755', force=True)
        copy = self._shared_loader_obj.action_loader.get(
            'ansible.legacy.copy', task=task, connection=self._connection,
            play_context=self._play_context, loader=self._loader, templar=self._templar,
            shared_loader_obj=self._shared_loader_obj)
        res = copy.run(task_vars=task_vars)
        if res.get('failed'):
            raise AnsibleActionFail('copying the agent %s to %s failed: %s'
                                    % (src, dest, res.get('msg', res)))
        return bool(res.get('changed'))
