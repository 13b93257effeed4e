"""Running the etcd playbook again, as verbosely as a user debugging it would, shows no secret and changes nothing.

It runs last (see conftest.py), so it also shows that growing and shrinking
the cluster left the original members' configuration as the role wants it.
"""

import os

from etcd_secrets import secrets_in


def test_etcd_playbook_with_diff_and_vvv_is_idempotent_and_shows_no_secret(scenario, report):
    # Ansible reads the group_vars next to an inventory file: the run below gets the same passwords and
    # pki_ca_dir as Molecule's converge.
    assert os.path.dirname(scenario.group_vars_file) == os.path.join(os.path.dirname(scenario.inventory_file),
                                                                     'group_vars')

    run = scenario.playbook('etcd', diff=True, verbosity=3, label='etcd-vvv-diff')
    report('pgha.cluster.etcd again with --diff -vvv: %.0fs, %d lines of output'
           % (run.seconds, len(run.output.splitlines())))
    assert run.rc == 0, run.tail()
    assert set(scenario.members) <= set(run.recap), run.recap
    changed = {host: counts['changed'] for host, counts in run.recap.items() if counts['changed']}
    assert not changed, 'not idempotent, changed tasks per host: %s\n%s' % (changed, run.tail())
    assert all(c['failed'] == 0 and c['unreachable'] == 0 for c in run.recap.values()), run.recap
    # The output really is verbose and covers the RBAC tasks, which handle every password.
    assert 'ESTABLISH' in run.output, 'no connection details: was -vvv passed?'
    assert 'Ensure each cluster\'s Patroni user' in run.output

    keys = scenario.private_keys()
    assert keys, 'no private key found under %s' % scenario.pki_ca_dir
    leaks = secrets_in(run.output, scenario.passwords, keys)
    assert not leaks, 'secrets in the output of the etcd playbook (see %s):\n%s' % (run.log_file, '\n'.join(leaks))
