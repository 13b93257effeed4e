"""Streaming watches against real etcd: events, history, resumption across member restarts, compaction."""

import threading
import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.etcd_errors import EtcdCompacted, EtcdPermissionDenied
from collection_client import client_for


class Collector(object):
    """Runs a watch in a thread and gathers its events."""

    def __init__(self, watch):
        self.watch = watch
        self.events = []
        self.error = None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for response in self.watch:
                with self.changed:
                    self.events.extend(response.events)
                    self.changed.notify_all()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, count, timeout=20.0):
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.events) < count and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
        return list(self.events)

    def stop(self):
        self.watch.close()
        self.thread.join(10)
        assert not self.thread.is_alive(), 'watch did not stop on close()'


def _wait_connected(watch, timeout=10.0):
    deadline = time.monotonic() + timeout
    while watch.endpoint is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watch.endpoint is not None


@pytest.fixture(params=['plain', 'tls'])
def cluster(request):
    return request.getfixturevalue('etcd_plain' if request.param == 'plain' else 'etcd_tls')


def test_prefix_watch_sees_puts_and_deletes_in_order(cluster, unique_prefix):
    with client_for(cluster) as writer, client_for(cluster) as watcher:
        collector = Collector(watcher.watch(unique_prefix, prefix=True, prev_kv=True))
        try:
            _wait_connected(collector.watch)
            writer.put(unique_prefix + 'a', '1')
            writer.put(unique_prefix + 'a', '2')
            writer.put(unique_prefix + 'outside-not', 'x')  # still under the prefix
            writer.put(unique_prefix[:-1] + '-sibling', 'not under the prefix')
            writer.delete(unique_prefix + 'a')
            events = collector.wait_for(4)
        finally:
            collector.stop()
    assert [(e.type, e.kv.key_text[len(unique_prefix):], e.kv.value_text) for e in events] == [
        ('PUT', 'a', '1'), ('PUT', 'a', '2'), ('PUT', 'outside-not', 'x'), ('DELETE', 'a', '')]
    assert events[1].prev_kv.value == b'1' and events[3].prev_kv.value == b'2'
    assert collector.error is None


def test_watch_from_past_revision_replays_history(etcd_plain, unique_prefix):
    with client_for(etcd_plain) as client:
        first = client.put(unique_prefix + 'k', 'v1').revision
        client.put(unique_prefix + 'k', 'v2')
        client.delete(unique_prefix + 'k')
        collector = Collector(client.watch(unique_prefix + 'k', start_revision=first))
        try:
            events = collector.wait_for(3)
        finally:
            collector.stop()
    assert [(e.type, e.kv.value) for e in events] == [('PUT', b'v1'), ('PUT', b'v2'), ('DELETE', b'')]
    assert [e.kv.mod_revision for e in events] == [first, first + 1, first + 2]


def test_watch_resumes_after_its_member_restarts(etcd_tls_restored, unique_prefix):
    """The member serving the watch is killed; events written meanwhile arrive once, in order."""
    cluster = etcd_tls_restored
    with client_for(cluster) as writer, client_for(cluster) as watcher:
        collector = Collector(watcher.watch(unique_prefix, prefix=True))
        try:
            _wait_connected(collector.watch)
            writer.put(unique_prefix + '000', '0')
            assert len(collector.wait_for(1)) == 1
            served_by = next(m for m in cluster.members if m.client_url == collector.watch.endpoint)
            served_by.kill()
            for i in range(1, 30):
                writer.put('%s%03d' % (unique_prefix, i), str(i))
            served_by.start()
            for i in range(30, 40):
                writer.put('%s%03d' % (unique_prefix, i), str(i))
            events = collector.wait_for(40)
        finally:
            collector.stop()
    assert collector.error is None
    assert [e.kv.value_text for e in events] == [str(i) for i in range(40)]
    assert collector.watch.reconnects >= 1
    revisions = [e.kv.mod_revision for e in events]
    assert revisions == sorted(set(revisions))


def test_single_endpoint_watch_waits_for_member_to_return(etcd_tls_restored, unique_prefix):
    """With one endpoint there is nowhere to fail over: the watch retries until the member is back,
    logging in again since its token expired meanwhile."""
    cluster = etcd_tls_restored
    member = cluster.member(2)
    with client_for(cluster) as writer, client_for(cluster, endpoints=[member.client_url]) as watcher:
        collector = Collector(watcher.watch(unique_prefix, prefix=True, reconnect_timeout=60))
        try:
            _wait_connected(collector.watch)
            writer.put(unique_prefix + 'a', 'before')
            assert len(collector.wait_for(1)) == 1
            logins = watcher.authentications
            member.kill()
            writer.put(unique_prefix + 'b', 'while-down')
            time.sleep(cluster.token_ttl + 0.5)
            member.start()
            writer.put(unique_prefix + 'c', 'after')
            events = collector.wait_for(3)
        finally:
            collector.stop()
    assert collector.error is None
    assert [e.kv.value_text for e in events] == ['before', 'while-down', 'after']
    assert watcher.authentications > logins


def test_watch_from_compacted_revision_reports_compaction(etcd_plain, unique_prefix):
    with client_for(etcd_plain) as client:
        old = client.put(unique_prefix + 'k', 'v1').revision
        latest = client.put(unique_prefix + 'k', 'v2').revision
        client.compact(latest)
        watch = client.watch(unique_prefix + 'k', start_revision=old)
        with pytest.raises(EtcdCompacted, match='compacted') as err:
            next(iter(watch))
        assert err.value.compact_revision == latest


def test_watch_outside_permissions_is_denied(etcd_tls):
    with client_for(etcd_tls, user='lb-demo') as lb:
        watch = lb.watch('/service/other/', prefix=True)
        with pytest.raises(EtcdPermissionDenied):
            next(iter(watch))
        watch.close()


def test_close_from_another_thread_ends_iteration(cluster, unique_prefix):
    with client_for(cluster) as client:
        collector = Collector(client.watch(unique_prefix, prefix=True))
        _wait_connected(collector.watch)
        start = time.monotonic()
        collector.stop()
        assert time.monotonic() - start < 5
        assert collector.error is None
