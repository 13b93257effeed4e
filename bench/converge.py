"""A fresh converge of the default scenario (the demo layout) timed per Molecule phase, then an idempotent
re-run: `molecule destroy`, then `create`, `prepare` and `converge` timed one by one, then a second `converge`
whose PLAY RECAP must report nothing changed. Molecule runs exactly as `make demo` runs it (molecule/default/demo.py),
with its logs in the demo directory's logs/."""

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'molecule', 'default'))

import demo  # noqa: E402  pylint: disable=wrong-import-position

PHASES = ('create', 'prepare', 'converge')


class ConvergeError(Exception):
    pass


def _timed(phase, log_name, show=None):
    began = time.monotonic()
    try:
        lines = demo.run('molecule %s' % phase, demo.molecule(phase), log_name, show=show)
    except demo.DemoError as exc:
        raise ConvergeError(str(exc))
    return time.monotonic() - began, lines


def fresh_and_idempotent():
    """{'phases': {phase: seconds}, 'fresh_s', 'changed_fresh', 'idempotent_s', 'changed_idempotent', ...}"""
    reused = sorted(name for name in ('pki', 'secrets', 'wheels')
                    if os.path.isdir(os.path.join(demo.DEMO_DIR, name)))
    demo.run('molecule destroy (untimed)', demo.molecule('destroy'), 'bench-destroy')
    phases = {}
    lines = []
    for phase in PHASES:
        show = demo.converge_lines if phase == 'converge' else None
        phases[phase], lines = _timed(phase, 'bench-' + phase, show=show)
    second_s, second = _timed('converge', 'bench-converge-again')
    return {'phases': phases, 'fresh_s': sum(phases.values()), 'changed_fresh': demo.recap_changed(lines),
            'idempotent_s': second_s, 'changed_idempotent': demo.recap_changed(second),
            'reused_from_demo_dir': reused, 'logs': os.path.relpath(demo.LOG_DIR, REPO)}


def scenario_down():
    demo.down()
