"""controller/trust.py on its own: each refusal's exact reason and event,
the once-a-second reporting, and what the inventory and the engine tell
(mutation testing, issue 14: the world-level tests in test_trust.py check
that attacks change nothing, not which rule refused them)."""
import pytest

from controller.trust import REFUSED, Trust

KVM1, KVM2, CLIENT = (1, 1), (2, 1), (3, 5)
VM, VM_MAC, HOST = "10.0.0.101", "52:54:00:00:00:01", "10.0.0.11"


def trust(**kw):
    t = Trust(kvm_ports={KVM1, KVM2}, host_addrs={HOST: KVM1}, vm_macs={VM: VM_MAC}, **kw)
    t.seen = []
    t.events = lambda kind, payload: t.seen.append((kind, payload))
    return t


def nothing_at(loc):
    return set()


@pytest.mark.parametrize("ip, mac, loc, why", [
    (HOST, "02:00:00:00:00:01", KVM2, "KVM host address claimed from another port"),
    (VM, VM_MAC, CLIENT, "VM address claimed from a port that is no KVM host's"),
    (VM, "02:00:00:00:00:09", KVM1, "VM address claimed with another MAC"),
    ("10.0.0.50", VM_MAC, CLIENT, "a VM's MAC with another address"),
])
def test_each_refusal_names_its_rule_and_reports_the_claim(ip, mac, loc, why):
    t = trust()
    assert t.may_learn(ip, mac, loc, nothing_at, now=5.0) is False
    assert t.seen == [(REFUSED, {"reason": why, "dpid": loc[0], "port": loc[1], "count": 1,
                                 "ip": ip, "mac": mac})]
    assert t.refusals == {why: 1}


def test_a_vm_is_refused_where_the_engine_does_not_expect_it_and_expect_none_frees_only_it():
    t = trust()
    other = "10.0.0.102"
    t.vm_macs[other] = "52:54:00:00:00:02"
    t.expect(VM, frozenset({KVM1}))
    t.expect(other, frozenset({KVM1}))
    assert not t.may_learn(VM, VM_MAC, KVM2, nothing_at, 1.0)
    assert t.seen[-1][1]["reason"] == "VM address seen where it is not expected now"
    t.expect(VM, None)                        # anywhere a KVM host is, again
    assert t.vm_allowed == {other: frozenset({KVM1})}
    assert t.may_learn(VM, VM_MAC, KVM2, nothing_at, 2.0)
    t.expect(VM, None)                        # forgetting twice is no error
    assert t.vm_allowed == {other: frozenset({KVM1})}


def test_a_host_not_declared_is_bound_to_the_first_port_it_is_seen_at():
    t = trust()
    t.set_hosts({HOST: KVM1, "10.0.0.12": None})
    assert t.may_learn("10.0.0.12", "02:00:00:00:00:12", (4, 1), nothing_at, 1.0)
    assert t.host_addrs["10.0.0.12"] == (4, 1) and (4, 1) in t.kvm_ports
    assert t.may_learn("10.0.0.12", "02:00:00:00:00:12", (4, 1), nothing_at, 2.0)
    assert not t.may_learn("10.0.0.12", "02:00:00:00:00:12", (5, 1), nothing_at, 3.0)


def test_set_hosts_adds_the_declared_ports_to_those_already_known():
    t = Trust(kvm_ports={KVM2})
    t.set_hosts({HOST: KVM1, "10.0.0.12": None})
    assert t.kvm_ports == {KVM1, KVM2}


def test_an_address_already_learnt_at_a_full_port_is_relearnt_there():
    t = trust(client_port_limit=2)
    full = {"10.0.0.1", "10.0.0.2"}
    assert t.may_learn("10.0.0.1", "02:00:00:00:00:01", CLIENT, lambda loc: full, 1.0)
    assert not t.may_learn("10.0.0.3", "02:00:00:00:00:03", CLIENT, lambda loc: full, 1.0)
    assert t.seen[-1][1]["reason"] == "port address limit (2)"


def test_a_kvm_port_holds_up_to_its_own_limit_a_client_port_up_to_the_client_limit():
    t = trust(client_port_limit=2, kvm_port_limit=3)
    two = {"10.0.1.1", "10.0.1.2"}
    assert t.may_learn("10.0.1.3", "02:00:00:00:01:03", KVM2, lambda loc: two, 1.0)
    assert not t.may_learn("10.0.1.3", "02:00:00:00:01:03", CLIENT, lambda loc: two, 1.0)
    three = two | {"10.0.1.3"}
    assert not t.may_learn("10.0.1.4", "02:00:00:00:01:04", KVM2, lambda loc: three, 1.0)
    assert t.seen[-1][1]["reason"] == "port address limit (3)"


def test_the_limit_counts_the_addresses_at_the_port_asked_about():
    t = trust(client_port_limit=1)
    at = {CLIENT: {"10.0.0.1"}, (3, 6): set()}
    assert t.may_learn("10.0.0.2", "02:00:00:00:00:02", (3, 6), at.__getitem__, 1.0)
    assert not t.may_learn("10.0.0.2", "02:00:00:00:00:02", CLIENT, at.__getitem__, 1.0)


def test_a_refusal_is_reported_at_most_once_a_second_per_port_and_reason_but_counted_always():
    t = trust()
    claim = (VM, VM_MAC, CLIENT, nothing_at)
    for now in (10.0, 10.5, 11.0, 11.5, 12.5):
        t.may_learn(*claim, now)
    assert [p["count"] for _, p in t.seen] == [1, 3, 5]   # at 10.0, 11.0 (exactly 1 s), 12.5
    t.may_learn(VM, VM_MAC, (3, 6), nothing_at, 12.6)     # another port: its own second
    assert t.seen[-1][1]["port"] == 6 and t.refusals == {
        "VM address claimed from a port that is no KVM host's": 6}
