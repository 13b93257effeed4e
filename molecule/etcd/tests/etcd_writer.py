"""A client that keeps writing while the cluster changes, and remembers what etcd acknowledged."""

import collections
import threading
import time
import uuid

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdError

Ack = collections.namedtuple('Ack', ['key', 'value', 'at'])


class Writer(threading.Thread):
    """Writes ``<prefix><n>`` = a value unique to this run, n = 0, 1, 2, ...

    A write that fails is sent again with the same key and value until etcd
    acknowledges it (a put of the same value is harmless if the failed attempt
    was applied after all), so every acknowledged key must be found later
    with exactly its value.
    """

    def __init__(self, client, prefix, pause=0.05, retry_pause=0.2):
        super(Writer, self).__init__(name='etcd-writer', daemon=True)
        self.client = client
        self.prefix = prefix
        self.pause = pause
        self.retry_pause = retry_pause
        self.run_id = uuid.uuid4().hex[:8]
        self.acks = []
        self.retries = 0
        # A write may also succeed slowly: the client gives up on an endpoint after its timeout and sends the
        # same request to the next one by itself, without an error reaching us.
        self.slow_writes = 0
        self.slowest = 0.0
        self.errors = collections.Counter()
        self.crash = None
        self._stop_requested = threading.Event()

    def key_value(self, n):
        return '%s%08d' % (self.prefix, n), 'write-%d-of-run-%s' % (n, self.run_id)

    def run(self):
        n = 0
        try:
            while not self._stop_requested.is_set():
                key, value = self.key_value(n)
                while True:
                    sent = time.monotonic()
                    try:
                        self.client.put(key, value)
                    except EtcdError as exc:
                        self.retries += 1
                        self.errors[type(exc).__name__ + ': ' + str(exc)[:160]] += 1
                        if self._stop_requested.wait(self.retry_pause):
                            return
                        continue
                    now = time.monotonic()
                    self.slowest = max(self.slowest, now - sent)
                    self.slow_writes += (now - sent) > 1.0
                    self.acks.append(Ack(key, value, now))
                    break
                n += 1
                self._stop_requested.wait(self.pause)
        except Exception as exc:  # pylint: disable=broad-except  # reported by the test, never lost in a thread
            self.crash = exc

    def stop(self, timeout=60):
        self._stop_requested.set()
        self.join(timeout)
        assert not self.is_alive(), 'the writer did not stop within %ss' % timeout

    def acks_between(self, start, end):
        return sum(1 for a in self.acks if start <= a.at <= end)

    def longest_gap(self):
        """Longest time in seconds between two consecutive acknowledged writes."""
        times = [a.at for a in self.acks]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def wait_for_acks(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.acks) < count:
            assert self.crash is None, 'the writer crashed: %r' % self.crash
            assert time.monotonic() < deadline, (
                'the writer got %d acknowledgements in %ss, expected %d; errors: %s'
                % (len(self.acks), timeout, count, self.errors.most_common(3)))
            time.sleep(0.2)
