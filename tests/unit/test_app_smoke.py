"""Build the real os-ken shim and call each handler once with a fake
datapath (after Faucet's test_valveapp_smoke): catches wiring mistakes that
only a live switch would otherwise show."""
from types import SimpleNamespace

import pytest

pytest.importorskip("os_ken")

from os_ken.controller import ofp_event  # noqa: E402
from os_ken.lib.packet import ethernet, ipv4, tcp  # noqa: E402
from os_ken.lib.packet import packet as pkt  # noqa: E402
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser  # noqa: E402
from os_ken.topology import event as topo_event  # noqa: E402
from os_ken.topology.switches import Link, Port, Switch  # noqa: E402

from controller import app as appmod  # noqa: E402
from controller import classes as C  # noqa: E402
from controller import events as E  # noqa: E402
from controller import packets  # noqa: E402
from controller.config import ControllerConfig, HypervisorEntry  # noqa: E402
from controller.fake_hypervisor import FakeHypervisor  # noqa: E402
from controller.rundir import RunDir  # noqa: E402
from controller.settings import Settings  # noqa: E402


class FakeDP:
    ofproto = ofp
    ofproto_parser = parser

    def __init__(self, dpid):
        self.id = dpid
        self.sent = []
        self._xid = 0

    def set_xid(self, msg):
        self._xid += 1
        msg.set_xid(self._xid)
        return self._xid

    def send_msg(self, msg):
        msg.serialize()          # must be a well-formed OpenFlow message
        self.sent.append(msg)


def _port(dpid, no):
    return Port(dpid, ofp, parser.OFPPort(no, f"00:00:00:00:{dpid:02x}:{no:02x}",
                                          f"s{dpid}-eth{no}".encode(), 0, 0, 0, 0, 0, 0, 0, 0))


def _switch(dp, ports):
    sw = Switch(dp)
    sw.ports = [_port(dp.id, p) for p in ports]
    return sw


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setattr(appmod, "SETTINGS", Settings(run_dir=str(tmp_path), stats_interval=1))
    a = appmod.OvctApp()
    yield a
    a.event_log.close()
    a.stats_log.close()


def test_handlers_smoke(app, tmp_path):
    dp2, dp1 = FakeDP(2), FakeDP(1)
    app._switch_enter(topo_event.EventSwitchEnter(_switch(dp2, [1, 2, 3, 4])))
    app._switch_enter(topo_event.EventSwitchEnter(_switch(dp1, [1, 2])))
    assert len(dp2.sent) >= 4 and all(isinstance(m, parser.OFPFlowMod) for m in dp2.sent)
    app._link_add(topo_event.EventLinkAdd(Link(_port(2, 1), _port(1, 1))))
    app._link_add(topo_event.EventLinkAdd(Link(_port(1, 1), _port(2, 1))))
    app._port_add(topo_event.EventPortAdd(_port(2, 5)))

    # a gratuitous ARP from a host on s2 port 2 gets it learnt and routed
    garp = packets.arp_reply("00:00:00:00:00:01", "10.0.0.1", "ff:ff:ff:ff:ff:ff", "10.0.0.1")
    msg = parser.OFPPacketIn(dp2, match=parser.OFPMatch(in_port=2), data=garp)
    dp1.sent.clear()
    app._packet_in(ofp_event.EventOFPPacketIn(msg))
    routed = [m for m in dp1.sent if isinstance(m, parser.OFPFlowMod)]
    assert routed and all(C.parse_cookie(m.cookie).dst == "10.0.0.1" for m in routed)
    # malformed packet-in: ignored, nothing raised
    app._packet_in(ofp_event.EventOFPPacketIn(
        parser.OFPPacketIn(dp2, match=parser.OFPMatch(in_port=2), data=b"\x01\x02")))

    # statistics: a multipart flow-stats reply in two parts, then flow-removed
    ck = C.make_cookie(C.VNC, "10.0.0.1")
    stat = parser.OFPFlowStats(table_id=0, priority=200, cookie=ck, packet_count=7,
                               byte_count=700, match=parser.OFPMatch(ipv4_dst="10.0.0.1",
                                                                     eth_type=0x800))
    part1 = parser.OFPFlowStatsReply(dp1, body=[stat], flags=ofp.OFPMPF_REPLY_MORE)
    part2 = parser.OFPFlowStatsReply(dp1, body=[], flags=0)
    app._flow_stats(ofp_event.EventOFPFlowStatsReply(part1))
    assert app.stats.polls == {}
    app._flow_stats(ofp_event.EventOFPFlowStatsReply(part2))
    assert app.stats.totals()[(1, C.VNC, "10.0.0.1")] == [7, 700]
    app._port_stats(ofp_event.EventOFPPortStatsReply(parser.OFPPortStatsReply(
        dp1, body=[parser.OFPPortStats(1, 5, 6, 500, 600, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)],
        flags=0)))
    app._flow_removed(ofp_event.EventOFPFlowRemoved(parser.OFPFlowRemoved(
        dp1, cookie=ck, priority=200, reason=0, table_id=0, packet_count=9, byte_count=900,
        match=parser.OFPMatch(ipv4_dst="10.0.0.1", eth_type=0x800))))
    assert app.stats.totals()[(1, C.VNC, "10.0.0.1")] == [9, 900]

    # s2's port 1 goes down: the s1-s2 link goes at once, both directions
    down = Port(2, ofp, parser.OFPPort(1, "00:00:00:00:02:01", b"s2-eth1", 0,
                                       ofp.OFPPS_LINK_DOWN, 0, 0, 0, 0, 0, 0))
    app._port_modify(topo_event.EventPortModify(down))
    assert app.router.view.links == {}
    app._link_delete(topo_event.EventLinkDelete(Link(_port(1, 1), _port(2, 1))))
    app._port_delete(topo_event.EventPortDelete(_port(2, 5)))
    app._switch_leave(topo_event.EventSwitchLeave(_switch(dp1, [1, 2])))
    assert 1 not in app.datapaths
    app._call(app.router.tick, app.clock() + 3600)      # what the topology loop does
    assert 1 not in app.router.view.ports

    events = E.read(RunDir(str(tmp_path)).events)
    kinds = [e["type"] for e in events]
    assert kinds.count("switch_enter") == 2 and "host_learnt" in kinds and "switch_leave" in kinds
    assert kinds.count("link_delete") == 2 and "switch_gone" in kinds
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    stats = E.read(RunDir(str(tmp_path)).stats)
    assert stats[0]["type"] == "flow_stats" and stats[0]["by_class"]["vnc"] == [7, 700]
    assert stats[1]["type"] == "port_stats" and stats[1]["ports"]["1"] == [5, 6, 500, 600]


def test_signal_requests_reach_the_engine_in_order(app, monkeypatch):
    calls = []
    app.ovct = SimpleNamespace(set_enabled=lambda on, why: calls.append((on, why)),
                               handle=calls.append, poll=lambda: None)
    monkeypatch.setattr(appmod, "SWITCH_REQUESTS", [True, False])
    app._ovct_step(0)
    assert calls == [(True, "SIGUSR1"), (False, "SIGUSR2")] and appmod.SWITCH_REQUESTS == []


def test_an_engine_error_is_logged_and_the_worker_goes_on(app, tmp_path):
    def boom(ev):
        raise RuntimeError("boom")
    app.ovct = SimpleNamespace(set_enabled=None, handle=boom, poll=lambda: None)
    app._ovct_q.put("ev")
    app._ovct_step(0)
    errors = E.of_type(E.read(RunDir(str(tmp_path)).events), E.OVCT_ERROR)
    assert errors and "boom" in errors[0]["error"]


# -- the real OVCT path through the shim, with the fake hypervisor -----------------

class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


TCL1_MAC, VM1_MAC = "00:00:00:00:00:01", "52:54:00:00:00:01"


def _frame(*protocols) -> bytes:
    p = pkt.Packet()
    for proto in protocols:
        p.add_protocol(proto)
    p.serialize()
    return bytes(p.data)


def _garp(mac: str, ip: str) -> bytes:
    return packets.arp_reply(mac, ip, "ff:ff:ff:ff:ff:ff", ip)


@pytest.fixture
def ovct_app(tmp_path, monkeypatch):
    clock = Clock()
    made = {}

    def factory(specs):
        made["hv"] = hv = FakeHypervisor(specs, clock, migration_s=6, completion_lag_s=1.6)
        hv.add_vm("pm2", "vm1", "10.0.0.101", VM1_MAC, 256)
        return hv
    conf = ControllerConfig(hypervisors=(
        HypervisorEntry(name="pm1", uri="qemu+unix:///system?socket=/x/1", address="10.0.0.11"),
        HypervisorEntry(name="pm2", uri="qemu+unix:///system?socket=/x/2", address="10.0.0.12")))
    monkeypatch.setattr(appmod, "SETTINGS", Settings(run_dir=str(tmp_path), stats_interval=1,
                                                     config=conf, hypervisor_factory=factory,
                                                     clock=clock))
    a = appmod.OvctApp()
    yield a, made["hv"], clock
    a.event_log.close()
    a.stats_log.close()


def _drain(app):
    """Worker turns until nothing is queued (each turn ends with a poll,
    which may queue the hypervisor's due events)."""
    app._ovct_step(0)
    while not app._ovct_q.empty():
        app._ovct_step(0)


def test_a_whole_ovct_migration_through_the_real_app(ovct_app, tmp_path):
    app, hv, clock = ovct_app
    dps = {d: FakeDP(d) for d in (1, 2, 3)}
    for d, ports in ((1, [1, 2]), (2, [1, 2, 3, 4]), (3, [1, 2])):
        app._switch_enter(topo_event.EventSwitchEnter(_switch(dps[d], ports)))
    for a, b in (((1, 1), (2, 1)), ((1, 2), (3, 1))):
        app._link_add(topo_event.EventLinkAdd(Link(_port(*a), _port(*b))))
        app._link_add(topo_event.EventLinkAdd(Link(_port(*b), _port(*a))))
    for d, port, mac, ip in ((2, 2, TCL1_MAC, "10.0.0.1"), (2, 4, "00:00:00:00:00:0b", "10.0.0.11"),
                             (3, 2, "00:00:00:00:00:0c", "10.0.0.12"), (3, 2, VM1_MAC, "10.0.0.101")):
        app._packet_in(ofp_event.EventOFPPacketIn(parser.OFPPacketIn(
            dps[d], match=parser.OFPMatch(in_port=port), data=_garp(mac, ip))))

    # phase 1: tcl1's SYN to vm1:5900, copied by s2's detect table
    syn = _frame(ethernet.ethernet(dst=VM1_MAC, src=TCL1_MAC, ethertype=0x0800),
                 ipv4.ipv4(src="10.0.0.1", dst="10.0.0.101", proto=6),
                 tcp.tcp(src_port=40000, dst_port=5900, bits=tcp.TCP_SYN))
    for dp in dps.values():
        dp.sent.clear()
    app._packet_in(ofp_event.EventOFPPacketIn(parser.OFPPacketIn(
        dps[2], match=parser.OFPMatch(in_port=2), data=syn, table_id=0)))
    _drain(app)
    assert hv.jobs == []                   # a SYN alone is no session: the VM must accept
    synack = _frame(ethernet.ethernet(dst=TCL1_MAC, src=VM1_MAC, ethertype=0x0800),
                    ipv4.ipv4(src="10.0.0.101", dst="10.0.0.1", proto=6),
                    tcp.tcp(src_port=5900, dst_port=40000, bits=tcp.TCP_SYN | tcp.TCP_ACK))
    app._packet_in(ofp_event.EventOFPPacketIn(parser.OFPPacketIn(
        dps[3], match=parser.OFPMatch(in_port=2), data=synack, table_id=0)))
    _drain(app)
    # phases 2 and 3: pm1 chosen, the fake migration started, the new path staged
    assert [j.dst for j in hv.jobs] == ["pm1"]
    staged = [m for dp in dps.values() for m in dp.sent if isinstance(m, parser.OFPFlowMod)
              and C.parse_cookie(m.cookie).gen == 1]
    assert staged and all(C.parse_cookie(m.cookie).dst == "10.0.0.101" for m in staged)

    # phase 4: the source pauses, the VM resumes on pm1 (QEMU's RARP at s2
    # port 4): flows switch; libvirt's completion follows 1.6 s later
    clock.t += 6.05
    _drain(app)
    rarp = _frame(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=VM1_MAC, ethertype=0x8035))
    app._packet_in(ofp_event.EventOFPPacketIn(parser.OFPPacketIn(
        dps[2], match=parser.OFPMatch(in_port=4), data=rarp)))
    _drain(app)
    barriers = [(d, m.xid) for d, dp in dps.items() for m in dp.sent
                if isinstance(m, parser.OFPBarrierRequest)]
    assert {d for d, _ in barriers} == {1, 2, 3}
    for d, xid in barriers:
        reply = parser.OFPBarrierReply(dps[d])
        reply.xid = xid
        app._barrier_reply(ofp_event.EventOFPBarrierReply(reply))
    _drain(app)
    clock.t += 1.6                        # libvirt reports completion
    _drain(app)

    assert hv.locate("vm1") == "pm1" and app.ovct.moves == {}
    live = [m for m in dps[2].sent if isinstance(m, parser.OFPFlowMod)
            and m.command == ofp.OFPFC_ADD and C.parse_cookie(m.cookie).dst == "10.0.0.101"
            and C.parse_cookie(m.cookie).gen == 0 and C.parse_cookie(m.cookie).cls in C.FORWARDING]
    assert live and all(m.instructions[0].actions[0].port == 4 for m in live)
    events = E.read(RunDir(str(tmp_path)).events)
    ovct = [e["type"] for e in events if e["type"].startswith("ovct_")
            and e["type"] != E.OVCT_MIGRATION_PROGRESS]
    assert ovct == ["ovct_detect", "ovct_decision", "ovct_migration_start", "ovct_vm_seen",
                    "ovct_network_update", "ovct_network_confirmed", "ovct_migration_done"]
    # the hypervisor's domain events reached the engine through the app's queue
    steps = [e["step"] for e in E.of_type(events, E.OVCT_MIGRATION_PROGRESS)]
    assert steps == ["dest_started", "iteration", "source_paused", "dest_resumed",
                     "source_stopped", "job_completed"]



def test_a_reconnected_switch_gets_the_new_datapath_and_its_whole_table(app):
    old, new = FakeDP(2), FakeDP(2)
    app._switch_enter(topo_event.EventSwitchEnter(_switch(old, [1, 2, 3])))
    app._switch_reconnected(topo_event.EventSwitchReconnected(_switch(new, [1, 2, 3])))
    assert app.datapaths[2] is new
    deletes = [m for m in new.sent if isinstance(m, parser.OFPFlowMod)
               and m.command == ofp.OFPFC_DELETE]
    adds = [m for m in new.sent if isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_ADD]
    assert deletes and adds and new.sent.index(deletes[-1]) < new.sent.index(adds[0])
    assert all(C.parse_cookie(m.cookie).cls != C.SESSION for m in deletes)


def test_shutdown_writes_the_last_state_and_statistics_and_closes_the_switches(app, tmp_path):
    class Sock:
        closed = False

        def close(self):
            self.closed = True
    dp = FakeDP(1)
    dp.socket = Sock()
    app._switch_enter(topo_event.EventSwitchEnter(_switch(dp, [1, 2])))
    ck = C.make_cookie(C.VNC, "10.0.0.1")
    app._flow_stats(ofp_event.EventOFPFlowStatsReply(parser.OFPFlowStatsReply(dp, body=[
        parser.OFPFlowStats(table_id=1, priority=200, cookie=ck, packet_count=3, byte_count=300,
                            match=parser.OFPMatch(ipv4_dst="10.0.0.1", eth_type=0x800))],
        flags=0)))
    app.shutdown("signal 15")
    assert dp.socket.closed
    run = RunDir(str(tmp_path))
    state = run.read_json(run.state)
    assert [1, "vnc", "10.0.0.1", 3, 300] in state["totals"]
    assert E.read(run.stats)[-1]["final"] is True
    assert E.read(run.events)[-1]["type"] == E.CONTROLLER_STOP
