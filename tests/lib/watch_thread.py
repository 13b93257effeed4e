"""Timing the next response of an etcd watch without hanging the test: shared by the unit and integration tests."""

import threading
import time


def next_in_thread(watch, timeout):
    """next(watch) in a thread: (response or exception, seconds); the watch is closed if it is not done in time."""
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            outcome['value'] = next(watch)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome['value'] = exc
        outcome['seconds'] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        watch.close()
        thread.join(5)
        raise AssertionError('the watch was still re-opening after %ss' % timeout)
    return outcome['value'], outcome['seconds']
