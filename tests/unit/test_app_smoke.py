"""Build the real os-ken shim and call each handler once with a fake
datapath (after Faucet's test_valveapp_smoke): catches wiring mistakes that
only a live switch would otherwise show."""
import json
import os
from types import SimpleNamespace

import pytest

pytest.importorskip("os_ken")

from os_ken.controller import ofp_event  # noqa: E402
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser  # noqa: E402
from os_ken.topology import event as topo_event  # noqa: E402
from os_ken.topology.switches import Link, Port, Switch  # noqa: E402

from controller import app as appmod  # noqa: E402
from controller import classes as C  # noqa: E402
from controller import packets  # noqa: E402
from controller.settings import Settings  # noqa: E402


class FakeDP:
    ofproto = ofp
    ofproto_parser = parser

    def __init__(self, dpid):
        self.id = dpid
        self.sent = []

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

    app._link_delete(topo_event.EventLinkDelete(Link(_port(1, 1), _port(2, 1))))
    app._port_delete(topo_event.EventPortDelete(_port(2, 5)))
    app._switch_leave(topo_event.EventSwitchLeave(_switch(dp1, [1, 2])))
    assert 1 not in app.datapaths

    events = [json.loads(ln) for ln in open(os.path.join(tmp_path, "events.jsonl"))]
    kinds = [e["type"] for e in events]
    assert kinds.count("switch_enter") == 2 and "host_learnt" in kinds and "switch_leave" in kinds
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    stats = [json.loads(ln) for ln in open(os.path.join(tmp_path, "stats.jsonl"))]
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
    errors = [json.loads(line) for line in open(tmp_path / "events.jsonl")
              if '"ovct_error"' in line]
    assert errors and "boom" in errors[0]["error"]
