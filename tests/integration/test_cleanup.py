"""Whatever happens inside a run, what the testbed started is gone after it:
host namespaces (their shells), interfaces, OVS bridges, the controller."""
import os

import pytest

from testbed import machine, ovs
from testbed.net import Testbed
from testbed.topology import paper_topology

from tests.integration.conftest import run_dir


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_error_inside_the_run_cleans_up_and_keeps_a_flow_dump():
    tb = Testbed(paper_topology(), run_dir=run_dir("cleanup-error"), kvm=False)
    with pytest.raises(RuntimeError, match="boom"):
        with tb:
            ctl_pid = tb.controller.pid
            host_pids = [h.pid for h in tb.net.hosts]
            raise RuntimeError("boom")
    assert tb.leftovers() == []
    assert _gone(ctl_pid) and all(_gone(p) for p in host_pids)
    dump = os.path.join(tb.run_dir, "failure-flows", "s1.txt")
    assert "cookie=" in open(dump).read()


def test_interrupt_cleans_up():
    tb = Testbed(paper_topology(), run_dir=run_dir("cleanup-interrupt"), kvm=False)
    with pytest.raises(KeyboardInterrupt):
        with tb:
            ctl_pid = tb.controller.pid
            raise KeyboardInterrupt
    assert tb.leftovers() == [] and _gone(ctl_pid)


@pytest.mark.parametrize("raise_", [RuntimeError("boom"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_with_kvm_hosts_running_an_error_or_interrupt_leaves_nothing_on_the_machine(raise_):
    """Seen from outside (the machine's namespaces, links, bridges and
    processes), not from the testbed's records: libvirtd, QEMU, Xvnc, the
    controller, every Mininet shell -- all gone."""
    before = machine.snapshot()
    tb = Testbed(paper_topology(), run_dir=run_dir(f"cleanup-kvm-{type(raise_).__name__}"))
    with pytest.raises(type(raise_)):
        with tb:
            assert tb.hv.placement() == {"vm1": "pm2", "vm2": "pm2"}
            assert any(x.startswith("qemu pid") for x in machine.left_behind(before))
            raise raise_
    assert tb.leftovers() == []
    assert machine.left_behind(before) == []


def test_link_delay_without_netem_refused_before_anything_starts():
    if ovs.netem_available():
        pytest.skip("this kernel has sch_netem")
    tb = Testbed(paper_topology(), run_dir=run_dir("cleanup-netem"), link_delay="5ms")
    with pytest.raises(Exception, match="sch_netem"):
        with tb:
            pass
    assert tb.controller is None and tb.net is None and tb.leftovers() == []
