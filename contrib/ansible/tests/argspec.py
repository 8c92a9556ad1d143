#!/usr/bin/python3
"""argspec: each module's argument_spec against its DOCUMENTATION, the part
of ansible-test's validate-modules that needs no pip: the same option
names, and for each the same type, elements, default, choices and
required; an option named like a secret (token, password) has no_log.
Run with PYTHONPATH at the installed collections; it imports each module
with AnsibleModule replaced by a recorder, so nothing runs.

  argspec.py COLLECTION_DIR
"""

import glob
import importlib
import os
import sys

import yaml


class Recorded(Exception):
    pass


def spec_of(mod):
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise Recorded()

    mod.AnsibleModule = fake
    try:
        mod.main()
    except Recorded:
        pass
    return seen.get('argument_spec')


def check(name, mod):
    errs = []
    spec = spec_of(mod)
    if spec is None:
        return ['%s: main() built no AnsibleModule' % name]
    doc = yaml.safe_load(mod.DOCUMENTATION).get('options') or {}
    for o in sorted(set(spec) | set(doc)):
        if o not in doc:
            errs.append('%s: %s is in argument_spec, not in DOCUMENTATION' % (name, o))
            continue
        if o not in spec:
            errs.append('%s: %s is documented, not in argument_spec' % (name, o))
            continue
        s, d = spec[o], doc[o]
        for key, dflt in (('type', 'str'), ('elements', None), ('default', None),
                          ('choices', None), ('required', False)):
            a, b = s.get(key, dflt), d.get(key, dflt)
            if a != b:
                errs.append('%s: %s: %s is %r in argument_spec, %r in DOCUMENTATION'
                            % (name, o, key, a, b))
        if any(w in o for w in ('token', 'password', 'secret')) and \
                s.get('type') != 'path' and not s.get('no_log'):
            errs.append('%s: %s looks secret but has no no_log' % (name, o))
    return errs


def main():
    col = sys.argv[1]
    errs, n = [], 0
    for path in sorted(glob.glob(os.path.join(col, 'plugins', 'modules', '*.py'))):
        name = os.path.basename(path)[:-3]
        if name == '__init__':
            continue
        mod = importlib.import_module('ansible_collections.ferry.migrate.plugins.modules.' + name)
        if not hasattr(mod, 'main'):
            continue  # the documentation of an action plugin (wave_report)
        errs += check(name, mod)
        n += 1
    for e in errs:
        print('argspec: ' + e)
    if not n:
        print('argspec: no modules found under %s' % col)
        return 1
    if errs:
        return 1
    print('ok: argument_spec matches DOCUMENTATION in %d module(s) (validate-modules\' core, offline)' % n)
    return 0


if __name__ == '__main__':
    sys.exit(main())
