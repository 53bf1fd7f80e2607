"""Integration tier: real Mininet + OVS + our controller, as root.

Without root these tests are skipped -- unless OVCT_REQUIRE_INTEGRATION=1
(set by test.sh as root, and so in CI), where a skip would hide a failure.
Each network's run directory (controller log, events, statistics, and flow
dumps of failed tests) is kept under runs/pytest/.
"""
import os
import time

import pytest

from controller import events as E
from testbed import ROOT, machine, preflight, scenario
from testbed.net import Testbed
from testbed.wait import wait_until

ARTIFACTS = os.path.join(ROOT, "runs", "pytest", time.strftime("%Y%m%d-%H%M%S"))


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _integration_prerequisites():
    required = os.environ.get("OVCT_REQUIRE_INTEGRATION") == "1"
    try:
        preflight.check()
    except preflight.PreflightError as exc:
        if required:
            pytest.fail(f"integration tests required but cannot run:\n{exc}", pytrace=False)
        pytest.skip(f"integration tests need root and the stack: {exc}")


@pytest.fixture(scope="session", autouse=True)
def _machine_left_clean(_integration_prerequisites):
    """After the whole tier, the machine itself -- not the testbed's
    records -- shows nothing of ours: no namespaces, Mininet links, guest
    taps, OVS bridges, libvirtd, QEMU, Xvnc, controllers, thin clients,
    pings, iperf3 or Mininet shells that were not there before."""
    before = machine.snapshot()
    _SESSION["before"] = before
    yield
    left = machine.left_behind(before)
    assert not left, "left behind on the machine: " + "; ".join(left)


#: the machine as the tier found it (set by _machine_left_clean)
_SESSION: dict = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After each module's last test (its module-scoped networks stopped
    too), the machine is as the tier found it -- else that module is named
    at once, rather than the tests after it failing on what it left (CI
    once showed 15 tests refused over three bridges, and not who made
    them)."""
    try:
        return (yield)
    finally:
        # also when the teardown failed (that is when something is left):
        # the leftovers are this module's, not the next one's
        before = _SESSION.get("before")
        if before is not None and (nextitem is None or nextitem.module is not item.module):
            left = machine.left_behind(before)
            if left:
                before |= set(left)          # each leftover is reported once
                raise AssertionError(f"{item.module.__name__} (last test {item.name}) left "
                                     "behind on the machine: " + "; ".join(left))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item.session.__dict__.setdefault("ovct_failed", []).append(item)
        tb = getattr(item, "ovct_testbed", None) or item.funcargs.get("testbed_for_dump")
        if tb is not None and tb.net is not None:
            tb.dump_flows(os.path.join(tb.run_dir, "failure-flows", item.name))


def run_dir(name: str) -> str:
    return os.path.join(ARTIFACTS, name)


@pytest.fixture
def attach(request):
    """attach(tb): dump tb's flows if the requesting test fails."""
    def _attach(tb):
        request.node.ovct_testbed = tb
        return tb
    return _attach


def start(topology, name: str, **kw) -> Testbed:
    tb = Testbed(topology, run_dir=run_dir(name), **kw)
    tb.__enter__()
    return tb


def finish(tb: Testbed, before: set[str] | None = None) -> None:
    """Stop ``tb`` and check what it recorded is gone -- and, given the
    machine's snapshot from before it started, that the machine agrees."""
    tb.stop()
    left = tb.leftovers()
    assert not left, f"left behind after stop: {left}"
    if before is not None:
        seen = machine.left_behind(before)
        assert not seen, f"left behind on the machine: {seen}"


def paper_policy(mode: str = "fast") -> dict:
    """The OVCT policy of the paper scenario, in network-update ``mode``."""
    scn = scenario.load(os.path.join(ROOT, "experiments", "scenarios", "paper.yaml"))
    return {**scn.ovct.model_dump(mode="json"), "update_mode": mode}


def wait_event(tail: E.Tail, kinds: tuple[str, ...], timeout: float, **where) -> dict:
    """The first event of one of ``kinds`` whose fields match ``where``."""
    found: list[dict] = []

    def seen() -> bool:
        tail.new()
        found[:] = [r for r in tail.records if r.get("type") in kinds
                    and all(r.get(k) == v for k, v in where.items())]
        return bool(found)
    wait_until(seen, timeout, f"event {'/'.join(kinds)} {where}", interval=0.1)
    return found[0]
