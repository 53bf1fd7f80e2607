"""Property (issue 14): placement picks the nearest KVM host with room, or
stays and says why for every host it looked at -- on the simulator's
five-site ring (the OVCT engine itself, the fake hypervisor), with random
free memory on every host and the VM starting on any site."""
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import Policy
from controller.fake_hypervisor import FakeHypervisor
from controller.hypervisor import HostSpec
from controller.ovct import Ovct, Session
from experiments import sim

HOSTS = ["p1x1", "p2x1", "p3x1", "p4x1", "p5x1"]
VM_MIB = 256
NEED = VM_MIB + Policy().memory_reserve_mib      # what a destination must have free


def decide(memory: dict[str, int], start: str):
    world = sim.World.multisite(5, 1, 1, 5)
    clock = sim.Clock(0.0)
    net = sim.SimNetwork(world.topo, clock, sim.Ledger(sim.Paths(world.topo), sim.Calibration()))
    hv = FakeHypervisor([HostSpec(h.name, "u", h.ip, memory[h.name], 2)
                         for h in world.topo.hosts_by_role("kvmhost")], clock)
    events = []
    eng = Ovct(Policy(), hv, net, events.append, clock)
    vm_ip = "10.1.2.1"
    hv.add_vm(start, "v", vm_ip, "52:54:00:00:01:01", VM_MIB)
    host_ip = next(h.ip for h in world.topo.hosts_by_role("kvmhost") if h.name == start)
    net.place_vm(vm_ip, net.loc[host_ip], 0.0)
    eng.vms_by_ip()
    eng.decide(Session(1, "10.1.0.1", 40000, "v", vm_ip, 5900, 101, 0.0), start, VM_MIB)
    (d,) = [e for e in events if type(e).__name__ == "Decision"]
    return eng, hv, d


@settings(max_examples=60, deadline=None)
@given(memory=st.fixed_dictionaries({h: st.sampled_from([100, NEED - 1, NEED, 4096])
                                     for h in HOSTS}),
       start=st.sampled_from(HOSTS[1:]))
def test_placement_picks_the_nearest_host_with_room_or_says_why_none(memory, start):
    memory = {**memory, start: 4096}          # the VM's own host holds it
    eng, hv, d = decide(memory, start)
    ranked = [(hops, name) for hops, name, _loc in eng.ranked_hosts(101)]
    here = dict((n, h) for h, n in ranked)[start]
    closer = [n for h, n in ranked if h < here]
    fits = [n for n in closer if memory[n] >= NEED]
    looked = [c["host"] for c in d.candidates]
    assert looked == closer[:len(looked)]                  # nearest first, ties by name
    assert all(not c["ok"] and c["why"] for c in d.candidates if c["host"] not in fits)
    if fits:
        assert (d.decision, d.dst) == ("migrate", fits[0])
        assert looked[-1] == fits[0] and [j.dst for j in hv.jobs] == [fits[0]]
    else:
        assert d.decision == "stay" and d.reason and hv.jobs == []
        assert looked == closer
