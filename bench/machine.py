"""What a benchmark ran on: the machine (cores, memory, kernel, Debian version, load) and the versions of the
components under test, read from the running containers rather than assumed from the roles' defaults."""

import os
import platform
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
# Where the roles install what is not a Debian binary on PATH.
PATRONI_BIN = '/opt/pgha/patroni/bin/patroni'
POSTGRES_BIN = '/usr/lib/postgresql/15/bin/postgres'


def _read(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except OSError:
        return ''


def machine():
    meminfo = re.search(r'^MemTotal:\s+(\d+) kB', _read('/proc/meminfo'), re.M)
    model = re.search(r'^model name\s*:\s*(.+)$', _read('/proc/cpuinfo'), re.M)
    return {
        'cores': os.cpu_count(),
        'cpu': model.group(1).strip() if model else platform.machine(),
        'memory_gib': round(int(meminfo.group(1)) / 1024.0 / 1024.0, 1) if meminfo else None,
        'kernel': platform.release(),
        'debian': _read('/etc/debian_version').strip() or None,
        'load_average': [round(x, 2) for x in os.getloadavg()],
    }


def _first_line(args, pattern):
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, proc.stdout + proc.stderr)
    return match.group(1) if match else None


def versions(db_host=None, lb_host=None):
    """Versions of ansible-core (this venv), and, when their containers are given, of etcd, PostgreSQL and
    Patroni on ``db_host`` and HAProxy on ``lb_host``."""
    found = {'ansible-core': _first_line([os.path.join(VENV_BIN, 'ansible'), '--version'],
                                         r'ansible \[core ([^\]]+)\]'),
             'python': platform.python_version()}
    if db_host:
        found['etcd'] = _first_line(['docker', 'exec', db_host, 'etcd', '--version'], r'etcd Version: (\S+)')
        found['PostgreSQL'] = _first_line(['docker', 'exec', db_host, POSTGRES_BIN, '--version'],
                                          r'PostgreSQL\)? (\S+)')
        found['Patroni'] = _first_line(['docker', 'exec', db_host, PATRONI_BIN, '--version'], r'patroni (\S+)')
    if lb_host:
        found['HAProxy'] = _first_line(['docker', 'exec', lb_host, 'haproxy', '-v'], r'HAProxy version (\S+)')
    return found
