"""Clients of the load balancer: SQL connections through lb1, and a probe that times a leader change as a
writing client sees it. Used by test_load_balancer.py and by bench/lb_convergence.py.

Connections go from the controller through lb1 with psycopg2 (libpq), TLS verified against the scenario's CA
(verify-ca: the server certificate names the database host, not lb1).
"""

import threading
import time

import psycopg2

LB = 'lb1'
PORTS = {'main': {'primary': 5000, 'replicas': 5001}, 'beta': {'primary': 5100, 'replicas': 5101}}  # by group
PROBE_TABLE = 'lb_probe'


def connect(scenario, cluster, port, host=LB, timeout=5):
    return psycopg2.connect(host=scenario.ip(host), port=port, dbname='postgres', user='postgres',
                            password=cluster.superuser_password, sslmode='verify-ca', sslrootcert=scenario.ca_cert,
                            connect_timeout=timeout, application_name='pgha-lb-probe')


def landing(scenario, cluster, port, host=LB):
    """(member, in recovery) of a new connection through ``host``:``port``."""
    members = {scenario.ip(m): m for m in cluster.members}
    conn = connect(scenario, cluster, port, host=host)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT host(inet_server_addr()), pg_is_in_recovery()')
            address, in_recovery = cur.fetchone()
    finally:
        conn.close()
    return members.get(address, address), in_recovery


def eventually(check, what, timeout=60, interval=0.5):
    """check()'s result once it is truthy; psycopg2 errors count as not yet."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except psycopg2.Error as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError('%s: not within %ss (last: %s)' % (what, timeout, last))


def create_probe_table(scenario, cluster, port, host=LB, table=PROBE_TABLE):
    conn = eventually(lambda: connect(scenario, cluster, port, host=host), 'a connection through %s:%d' % (host, port))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE TABLE IF NOT EXISTS %s (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())'
                        % table)
    finally:
        conn.close()


class Outcome(object):
    """What one port saw around one leader change."""

    def __init__(self, target, changed_at, old_leader, new_leader, writes):
        self.target = target
        before = [(t, m) for t, m in writes if t <= changed_at]
        after = [(t, m) for t, m in writes if t > changed_at]
        self.tried = len(writes)
        self.failed = sum(1 for t, m in writes if m is None)
        self.reached_old_before = any(m == old_leader for t, m in before)
        # Once the leader key moved, no write may land anywhere but on the new leader.
        self.misrouted = sorted({m for t, m in after if m is not None and m != new_leader})
        firsts = [t for t, m in after if m == new_leader]
        self.convergence = (min(firsts) - changed_at) if firsts else None
        last_before = max([t for t, m in before if m is not None] or [changed_at])
        self.outage = (min(firsts) - last_before) if firsts else None


def missing_rows(scenario, cluster, ids, table=PROBE_TABLE):
    """How many of the acknowledged row ``ids`` of ``table`` the primary, reached through the load balancer's write
    port, does not have."""
    ids = sorted(set(ids))
    conn = eventually(lambda: connect(scenario, cluster, scenario.LB_PORTS[cluster.group]['primary'],
                                      host=scenario.LB), 'a connection through %s' % scenario.LB, timeout=60)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT count(*) FROM %s WHERE id = ANY(%%s)' % table, (ids,))
            return len(ids) - cur.fetchone()[0]
    finally:
        conn.close()


class Probe(object):
    """Threads that note when the cluster's leader key changes and, per port of the load balancer, which writes
    succeed and where they land (each write on a new connection, as a client reconnecting after an error would)."""

    def __init__(self, scenario, cluster, old_leader, ports, interval=0.02, host=LB, etcd=None):
        """Writes through each of ``ports`` of ``host`` (lb1 unless told); ``etcd`` makes the client that
        watches the leader key (default: ``cluster.etcd``), e.g. one that leaves out a member about to die."""
        self.scenario, self.cluster, self.old_leader = scenario, cluster, old_leader
        self.members = {scenario.ip(m): m for m in cluster.members}
        self.interval = interval
        self.etcd = etcd or cluster.etcd
        self.leader_changed = None  # (monotonic time, new leader)
        targets = dict((port, (host, port)) for port in ports)
        # target -> [(monotonic time, member or None when it failed)]
        self.writes = dict((target, []) for target in targets)
        # target -> [id of each acknowledged row], to check afterwards that none was lost
        self.acked = dict((target, []) for target in targets)
        # target -> [(monotonic time, error text)] of the failed writes
        self.errors = dict((target, []) for target in targets)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._watch_leader, daemon=True)]
        self.threads += [threading.Thread(target=self._write, args=(target, host, port), daemon=True)
                         for target, (host, port) in targets.items()]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _watch_leader(self):
        client = self.etcd()
        key = '/service/%s/leader' % self.cluster.scope
        try:
            while not self.stop.is_set() and self.leader_changed is None:
                try:
                    kv = client.get(key)
                except Exception:  # pylint: disable=broad-except
                    kv = None  # an etcd hiccup: look again
                value = kv.value if kv is not None else None
                value = value.decode() if isinstance(value, bytes) else value
                if value is not None and value != self.old_leader:
                    self.leader_changed = (time.monotonic(), value)
                time.sleep(self.interval / 2)
        finally:
            client.close()

    def _write(self, target, host, port):
        while not self.stop.is_set():
            member = None
            try:
                conn = connect(self.scenario, self.cluster, port, host=host, timeout=2)
                try:
                    conn.autocommit = True
                    with conn.cursor() as cur:
                        cur.execute('INSERT INTO %s DEFAULT VALUES RETURNING id, host(inet_server_addr())'
                                    % PROBE_TABLE)
                        row_id, address = cur.fetchone()
                        member = self.members.get(address, address)
                        self.acked[target].append(row_id)
                finally:
                    conn.close()
            except psycopg2.Error as exc:
                member = None
                self.errors[target].append((time.monotonic(), str(exc).strip().splitlines()[0] if str(exc).strip()
                                            else type(exc).__name__))
            self.writes[target].append((time.monotonic(), member))
            time.sleep(self.interval)

    def reached(self, target, member):
        """True once a write through ``target`` (a port of lb1) landed on ``member`` after the leader key changed."""
        return bool(self.leader_changed) and any(m == member for t, m in list(self.writes[target])
                                                 if t > self.leader_changed[0])

    def outcome(self, target):
        changed_at, new_leader = self.leader_changed
        return Outcome(target, changed_at, self.old_leader, new_leader, list(self.writes[target]))
