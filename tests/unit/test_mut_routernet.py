"""controller/routernet.py, the engine's Network on the router, checked on
its own (mutation testing, issue 14): what each call hands the router and
what it makes of the answer, under the shim's lock; levels and paths with
ties; a session's rates from both of its ends."""
import itertools

from controller import flows as F
from controller.classes import VNC
from controller.routernet import RouterNetwork
from controller.routing import Router, VncConnection


class Lock:
    def __init__(self):
        self.entered = 0

    def __enter__(self):
        self.entered += 1

    def __exit__(self, *exc):
        return False


class StubRouter:
    """Records the calls, answers with fixed messages."""

    def __init__(self):
        self.calls = []
        self.release_log = {}
        self.view = Router().view

    def commit_move(self, ip, tag):
        self.calls.append(("commit_move", ip, tag))
        return [F.FlowMod(1, F.DELETE, (), None, 1, 0), F.FlowMod(2, F.ADD, (), 1, 1, 0),
                F.Barrier(1, tag), F.Barrier(2, tag), F.Barrier(3, "other"),
                F.PacketOut(2, (4,), b"held")]

    def paper_move(self, ip, dpid, port, tag):
        self.calls.append(("paper_move", ip, dpid, port, tag))
        return [F.FlowMod(1, F.DELETE, (), None, 1, 0), F.Barrier(1, tag + ":deleted"),
                F.FlowMod(2, F.ADD, (), 1, 1, 0), F.FlowMod(3, F.ADD, (), 1, 1, 0),
                F.Barrier(2, tag), F.Barrier(3, tag)]

    def pin(self, ip):
        self.calls.append(("pin", ip))


def net(router=None, **kw):
    sent = []
    return RouterNetwork(router or StubRouter(), sent.extend, **kw), sent


def test_a_commit_counts_flow_mods_barriers_released_and_dropped_frames():
    n, sent = net(lock=Lock())
    n.router.release_log["10.0.0.101"] = (1, 3)
    up = n.commit_move("10.0.0.101", "vm1-1")
    assert n.router.calls == [("commit_move", "10.0.0.101", "vm1-1")]
    assert (up.flow_mods, up.barriers, up.released, up.dropped) == (2, {1, 2}, 1, 3)
    assert len(sent) == 6 and n.router.release_log == {} and n.lock.entered == 1
    n.router.release_log["10.0.0.102"] = (0, 7)               # another address's
    assert n.commit_move("10.0.0.101", "vm1-2").dropped == 0


def test_a_paper_move_is_confirmed_by_the_barriers_after_the_adds():
    n, sent = net()
    up = n.paper_move("10.0.0.101", 2, 4, "vm1-1")
    assert n.router.calls == [("paper_move", "10.0.0.101", 2, 4, "vm1-1")]
    assert (up.flow_mods, up.barriers) == (3, {2, 3}) and len(sent) == 6


def test_pin_names_the_address_under_the_lock():
    lock = Lock()
    n, sent = net(lock=lock)
    n.pin("10.0.0.101")
    assert n.router.calls == [("pin", "10.0.0.101")] and lock.entered == 1 and sent == []
    assert n.locate("10.0.0.101") is None and lock.entered == 2


def square():
    """s1 -p1- s3, s1 -p2- s2, s2 -p2- s4, s3 -p2- s4."""
    r = Router()
    for d in (1, 2, 3, 4):
        r.view.add_switch(d, {1, 2, 3})
    for a, b in (((1, 1), (3, 1)), ((1, 2), (2, 1)), ((2, 2), (4, 1)), ((3, 2), (4, 2))):
        r.view.add_link(a, b)
        r.view.add_link(b, a)
    return r


def test_levels_give_each_switch_once_at_its_distance():
    n, _ = net(square())

    def levels(dpid):                 # at most 5: a wrong one may never end
        return [sorted(level) for level in itertools.islice(n.levels(dpid), 5)]
    assert levels(1) == [[1], [2, 3], [4]] and levels(4) == [[4], [2, 3], [1]]
    assert levels(9) == []


def test_paths_take_the_lower_dpid_on_a_tie_and_none_to_a_switch_not_seen():
    n, _ = net(square())
    assert n.path(4, 1) == [4, 2, 1] and n.path(1, 4) == [1, 2, 4]
    assert n.path(1, 9) is None and n.path(9, 1) is None and n.path(2, 2) == [2]


class StubRates:
    def __init__(self, by_ip):
        self.by_ip = by_ip

    def rates(self, ip, cls):
        assert cls == VNC
        return self.by_ip.get(ip, {})

    def total(self, cls, ips):
        return (len(ips), cls)


def test_a_sessions_rates_add_both_directions_per_switch_since_the_later_start():
    rates = StubRates({"10.0.0.101": {1: (10.0, 100.0, 50.0), 2: (20.0, 200.0, 50.0)},
                       "10.0.0.1": {2: (5.0, 50.0, 40.0), 3: (1.0, 10.0, 40.0)}})
    n, _ = net(rates=rates)
    got = n.session_rates("10.0.0.1", "10.0.0.101")
    assert got.per_switch == {1: (10.0, 100.0), 2: (25.0, 250.0), 3: (1.0, 10.0)}
    assert got.since == 50.0
    assert n.session_rates("10.0.0.9", "10.0.0.99") is None
    assert n.relayed("migration", ("a", "b")) == (2, "migration")
    assert net()[0].session_rates("10.0.0.1", "10.0.0.101") is None


def test_a_session_monitor_goes_to_the_clients_switch():
    n, sent = net()
    n.session_monitor(VncConnection("start", "10.0.0.1", 40000, "10.0.0.101", 5901, 2, 2, 0.0),
                      60)
    (m,) = sent
    assert (m.dpid, m.idle_timeout, m.notify_removed) == (2, 60, True)
    assert dict(m.match)["tcp_dst"] == 5901 and dict(m.match)["ipv4_src"] == "10.0.0.1"
