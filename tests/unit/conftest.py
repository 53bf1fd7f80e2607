"""Unit-tier hygiene: a test may not leave a thread running.

A non-daemon thread left behind (os-ken apps spawn their loops in
``__init__``) keeps the interpreter alive after pytest has printed its
summary: the suite "passes" and never exits (CI timed out that way).  Each
test is checked on its own so the failure names the test that leaked."""
import threading

import pytest

JOIN_DEADLINE_S = 2.0


@pytest.fixture(autouse=True)
def no_thread_left_running():
    before = set(threading.enumerate())
    yield
    new = [t for t in threading.enumerate() if t not in before and not t.daemon]
    for t in new:
        t.join(timeout=JOIN_DEADLINE_S)
    left = [t.name for t in new if t.is_alive()]
    assert not left, f"test left non-daemon threads running: {left} (stop what it starts)"
