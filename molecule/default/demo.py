"""The local demo cluster behind `make demo`: the Molecule default scenario, brought up and explained.

    demo.py up          the venv and the image when missing, create and converge the scenario, show how to use it
    demo.py status      the status table (pgha.cluster.status)
    demo.py switchover  a planned switchover (pgha.cluster.switchover); the load balancer follows
    demo.py inventory   the live topology through the pgha.cluster.patroni inventory plugin
    demo.py down        remove the containers (the CA and the secrets in .demo/ stay for the next `up`)

`make demo` installs the Debian packages and starts Docker first (make system-deps). Standard library only: it
runs with the system's python3 before the venv exists. Every phase is named with its
elapsed time; the full output of each step goes to .demo/logs/.
"""

import glob
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Absolute: Molecule's inventory passes it on to the pki role, which refuses a relative CA directory.
DEMO_DIR = os.path.abspath(os.environ.get('PGHA_DEMO_DIR') or os.path.join(REPO, '.demo'))
LOG_DIR = os.path.join(DEMO_DIR, 'logs')
SECRETS_DIR = os.path.join(DEMO_DIR, 'secrets')
VENV_BIN = os.path.join(REPO, '.venv', 'bin')
SCENARIO = 'default'
DB_HOSTS = ('demo-db1', 'demo-db2', 'demo-db3')
LB_HOST = 'demo-lb'
SCOPE = 'demo'
PORTS = {'primary': 5000, 'replicas': 5001}
# Where the pki role puts the CA on every host.
HOST_CA = '/etc/pgha/pki/ca.crt'
STARTED = time.monotonic()


class DemoError(Exception):
    pass


def say(text):
    print('[demo %6.1fs] %s' % (time.monotonic() - STARTED, text), flush=True)


def environment():
    env = dict(os.environ)
    env.update({
        'PATH': VENV_BIN + os.pathsep + env.get('PATH', ''),
        'PGHA_DEMO_DIR': DEMO_DIR,
        # As the Makefile's MOLECULE: scenarios under molecule/, the collection through a link to this checkout.
        'MOLECULE_GLOB': 'molecule/*/molecule.yml',
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(REPO, '.cache', 'collections'),
        'ANSIBLE_NOCOLOR': '1',
        'NO_COLOR': '1',
        'PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION': 'python',
    })
    return env


def run(phase, command, log_name, show=None, env=None):
    """Run one phase, its output in .demo/logs/<log_name>.log; lines for which show(line) is true are echoed."""
    os.makedirs(LOG_DIR, exist_ok=True)
    log_path = os.path.join(LOG_DIR, log_name + '.log')
    say('%s ...' % phase)
    began = time.monotonic()
    with open(log_path, 'w', encoding='utf-8') as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env or environment(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors='replace')
        lines = []
        for line in proc.stdout:
            log.write(line)
            lines.append(line.rstrip('\n'))
            if show is not None and show(line):
                print('             ' + line.strip(), flush=True)
        proc.wait()
    if proc.returncode != 0:
        tail = '\n'.join(lines[-25:])
        raise DemoError('%s failed (exit %d); the last lines of %s:\n%s' % (phase, proc.returncode, log_path, tail))
    say('%s: done in %.1f s' % (phase, time.monotonic() - began))
    return lines


def molecule(*args):
    return ['molecule'] + list(args) + ['-s', SCENARIO]


def scenario_dir():
    """Molecule's ephemeral directory of the scenario (its inventory and ansible.cfg), newest first."""
    found = sorted(glob.glob(os.path.expanduser('~/.ansible/tmp/molecule.*.%s' % SCENARIO)),
                   key=os.path.getmtime, reverse=True)
    for path in found:
        if os.path.isfile(os.path.join(path, 'inventory', 'ansible_inventory.yml')):
            return path
    raise DemoError('the demo is not up: run `make demo` first')


def playbook(phase, name, log_name, extra=()):
    ephemeral = scenario_dir()
    env = environment()
    env['ANSIBLE_CONFIG'] = os.path.join(ephemeral, 'ansible.cfg')
    return run(phase, ['ansible-playbook', '-i', os.path.join(ephemeral, 'inventory'), 'pgha.cluster.' + name]
               + list(extra), log_name, env=env)


def address(container):
    proc = subprocess.run(['docker', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}',
                           container], capture_output=True, text=True, check=False)
    words = proc.stdout.split()
    if proc.returncode != 0 or not words:
        raise DemoError('container %s is not running: run `make demo`' % container)
    return words[0]


def secret(name):
    with open(os.path.join(SECRETS_DIR, name), encoding='utf-8') as handle:
        return handle.read().split()[0]


def inventory_file_text(endpoints, pki_ca_dir, lb_password):
    """The inventory plugin's configuration for the demo's etcd, read as its load balancer's read-only user."""
    client = os.path.join(pki_ca_dir, 'hosts', LB_HOST, 'client-lb-agent')
    return ('# The demo cluster through the pgha.cluster.patroni inventory plugin (written by `make demo`).\n'
            'plugin: pgha.cluster.patroni\n'
            'endpoints:\n%s'
            'ca_cert: %s\n'
            'client_cert: %s.crt\n'
            'client_key: %s.key\n'
            'username: lb-%s\n'
            'password: %s\n'
            '# lb-%s may read its own cluster only.\n'
            'scopes: [%s]\n'
            'include_etcd_members: true\n'
            % (''.join('  - %s\n' % url for url in endpoints), os.path.join(pki_ca_dir, 'ca.crt'), client, client,
               SCOPE, lb_password, SCOPE, SCOPE))


def write_inventory_file():
    path = os.path.join(DEMO_DIR, 'demo.patroni.yml')
    # It holds a password: never readable by others, not even for a moment.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w', encoding='utf-8') as handle:
        handle.write(inventory_file_text(['https://%s:2379' % address(host) for host in DB_HOSTS],
                                         os.path.join(DEMO_DIR, 'pki'), secret('etcd_lb_password')))
    os.chmod(path, 0o600)
    return path


def converge_lines(line):
    return line.startswith('PLAY [') or ' ok=' in line and ' changed=' in line


def recap_changed(lines):
    """Sum of changed= over the PLAY RECAP lines of a run."""
    total = 0
    for line in lines:
        for word in line.split():
            if word.startswith('changed=') and word[len('changed='):].isdigit():
                total += int(word[len('changed='):])
    return total


def up():
    run('Python environment (.venv)', ['make', '-s', 'venv', 'collection-link'], 'venv')
    run('Local test image (debootstrap, built once)', ['make', '-s', 'image'], 'image')
    run('Containers %s, %s' % (', '.join(DB_HOSTS), LB_HOST), molecule('create'), 'create')
    run('Waiting for systemd in the containers', molecule('prepare'), 'prepare')
    lines = run('Site playbook: pki, etcd, Patroni, HAProxy (pgha.cluster.site)', molecule('converge'), 'converge',
                show=converge_lines)
    say('the site playbook changed %d things (0 means the demo was already converged)' % recap_changed(lines))
    inventory = write_inventory_file()
    show_status()
    print(next_steps(inventory))


def show_status():
    if not os.path.isfile(os.path.join(REPO, 'playbooks', 'status.yml')):
        return
    lines = playbook('Status (pgha.cluster.status)', 'status', 'status')
    print('\n'.join(status_table(lines)))


def status_table(lines):
    """The table lines the status playbook printed (its debug messages), without Ansible's framing."""
    table = []
    for line in lines:
        text = line.strip()
        if text.startswith('"') and text.endswith(('",', '"')):
            table.append(text.rstrip(',').strip('"').replace('\\"', '"'))
    return table


def next_steps(inventory):
    psql = ('docker exec -it -e PGPASSWORD="$(cat %s)" demo-db1 psql '
            '"host=%s port=%%d dbname=postgres user=postgres sslmode=verify-ca sslrootcert=%s"'
            % (os.path.relpath(os.path.join(SECRETS_DIR, 'postgres_password'), REPO), LB_HOST, HOST_CA))
    return '\n'.join([
        '',
        'The demo cluster is up: etcd and PostgreSQL 15 under Patroni on %s, HAProxy with the' % ', '.join(DB_HOSTS),
        'pgha-lb-sync agent on %s. Secrets and the CA are in %s (git-ignored).' % (LB_HOST, os.path.relpath(DEMO_DIR, REPO)),
        '',
        'Writes go to the primary through the load balancer, reads to the replicas:',
        '  ' + psql % PORTS['primary'],
        '  ' + psql % PORTS['replicas'],
        '  (SELECT inet_server_addr(), pg_is_in_recovery(); shows where a session landed)',
        '',
        'Look at it:',
        '  make demo-status       etcd members, Patroni members (role, state, timeline, lag), LB backends',
        '  make demo-inventory    the live topology from etcd: ansible-inventory -i %s --graph'
        % os.path.relpath(inventory, REPO),
        '  docker exec %s curl -s 127.0.0.1:7001/status    the agent\'s own view' % LB_HOST,
        '',
        'Switch the primary over and watch the load balancer follow:',
        '  make demo-switchover   then make demo-status (or the psql line above on port %d)' % PORTS['primary'],
        '  docker exec %s journalctl -u pgha-lb-sync -f    the agent acting on the leader change' % LB_HOST,
        '',
        'Done: make demo-down   (removes the containers; .demo/ keeps the CA and the secrets for the next run)',
    ])


def inventory():
    path = write_inventory_file()
    run('Live topology from etcd (ansible-inventory --graph)',
        ['ansible-inventory', '-i', path, '--graph', '--vars'], 'inventory', show=lambda line: True)


def switchover():
    playbook('Switchover (pgha.cluster.switchover)', 'switchover', 'switchover')
    show_status()


def down():
    run('Removing the demo containers', molecule('destroy'), 'destroy')
    say('the CA and the secrets stay in %s; delete it for a fresh start' % os.path.relpath(DEMO_DIR, REPO))


COMMANDS = {'up': up, 'status': show_status, 'switchover': switchover, 'inventory': inventory, 'down': down}


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        sys.stderr.write('usage: %s {%s}\n' % (argv[0], '|'.join(COMMANDS)))
        return 2
    try:
        COMMANDS[argv[1]]()
    except DemoError as exc:
        say('FAILED: %s' % exc)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
