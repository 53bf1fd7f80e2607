"""controller.lldp: a second connection from a dpid is discovered afresh
-- on os-ken's real Switches app, fed the state changes a switch causes."""
import pytest

pytest.importorskip("os_ken")

from os_ken import cfg  # noqa: E402
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER  # noqa: E402
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser  # noqa: E402
from os_ken.topology import switches as S  # noqa: E402

from controller import lldp  # noqa: E402


class DP:
    ofproto, ofproto_parser = ofp, parser

    def __init__(self, dpid, ports):
        self.id = dpid
        self.ports = {p: parser.OFPPort(p, f"00:00:00:00:{dpid:02x}:{p:02x}",
                                        f"s{dpid}-eth{p}".encode(), 0, 0, 0, 0, 0, 0, 0, 0)
                      for p in ports}
        self.closed = False

    def send_msg(self, msg):
        pass

    def close(self):
        self.closed = True


class StateChange:
    def __init__(self, dp, state):
        self.datapath, self.state = dp, state


@pytest.fixture
def switches(monkeypatch):
    monkeypatch.setattr(S.Switches, "state_change_handler", S.Switches.state_change_handler)
    assert "observe_links" in cfg.CONF        # registered by importing os-ken's switches
    monkeypatch.setattr(cfg.CONF, "observe_links", True, raising=False)
    lldp.install()
    app = S.Switches()
    app.seen = []
    app.send_event_to_observers = lambda ev, state=None: app.seen.append(
        (type(ev).__name__, sorted(p.port_no for p in ev.switch.ports)))
    yield app
    app.close()          # stops its LLDP threads: left running they keep pytest from exiting


def _lldp_ports(app):
    return sorted((p.dpid, p.port_no) for p in app.ports.keys())


def test_a_new_switch_with_a_known_dpid_gets_lldp_on_all_its_ports(switches):
    old, new = DP(1, [1, 2]), DP(1, [1, 2, 3, 4])      # paper's s1, then multisite's c1
    switches.state_change_handler(StateChange(old, MAIN_DISPATCHER))
    assert _lldp_ports(switches) == [(1, 1), (1, 2)]
    switches.state_change_handler(StateChange(new, MAIN_DISPATCHER))
    assert old.closed
    assert switches.seen == [("EventSwitchEnter", [1, 2]), ("EventSwitchLeave", [1, 2]),
                             ("EventSwitchEnter", [1, 2, 3, 4])]
    assert _lldp_ports(switches) == [(1, 1), (1, 2), (1, 3), (1, 4)]
    # the old connection's death, when os-ken notices it, changes nothing
    switches.state_change_handler(StateChange(old, DEAD_DISPATCHER))
    assert _lldp_ports(switches) == [(1, 1), (1, 2), (1, 3), (1, 4)]
    assert len(switches.seen) == 3


def test_wrapping_twice_wraps_once_and_keeps_the_event_binding():
    lldp.install()
    lldp.install()
    h = S.Switches.state_change_handler
    assert h.ovct_wrapped and h.__wrapped__.__name__ == "state_change_handler"
    assert not getattr(h.__wrapped__, "ovct_wrapped", False)
    assert any("EventOFPStateChange" in c.__name__ for c in h.callers)
