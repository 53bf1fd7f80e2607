"""testbed.flowcheck reads real ovs-ofctl output and finds every way a
VM's flows can point where it does not run."""
from controller import classes as C
from testbed import flowcheck as F
from testbed.topology import paper_topology

VM1 = "10.0.0.101"
TOPO = paper_topology()
#: towards pm1 (s2 port 4) / pm2 (s3 port 2) from each switch
TO_PM1 = {"s1": 1, "s2": 4, "s3": 1}
TO_PM2 = {"s1": 2, "s2": 1, "s3": 2}


def _line(cls: str, port, gen: int = 0, match: str = "ip", prio: int = 100) -> str:
    cookie = C.make_cookie(cls, VM1, gen)
    act = "CONTROLLER:65535" if port == "ctl" else f"output:{port}"
    return (f" cookie={cookie:#x}, duration=1.5s, table=1, n_packets=3, n_bytes=180, "
            f"send_flow_rem priority={prio},{match},nw_dst={VM1} actions={act}")


def _dumps(ports: dict, extra: dict | None = None, gen: int = 0) -> dict[str, str]:
    out = {}
    for sw, port in ports.items():
        lines = ["OFPST_FLOW reply (OF1.3) (xid=0x2):",
                 " cookie=0x0, duration=9s, table=0, n_packets=1, n_bytes=60, "
                 "priority=65535,dl_dst=01:80:c2:00:00:0e,dl_type=0x88cc actions=CONTROLLER:65535"]
        if port is not None:
            lines += [_line(C.OTHER, port, gen),
                      _line(C.VNC, port, gen, "tcp,tp_dst=0x170c/0xfffc", 200)]
        lines += (extra or {}).get(sw, [])
        out[sw] = "\n".join(lines) + "\n"
    return out


def test_parse_reads_cookie_table_priority_match_and_output():
    (e,) = [x for x in F.parse_dump("s2", _dumps({"s2": 4})["s2"]) if x.info.cls == C.VNC]
    assert (e.table, e.priority, e.output(), e.nw_dst()) == (1, 200, 4, VM1)
    assert e.match == f"tcp,tp_dst=0x170c/0xfffc,nw_dst={VM1}"
    lldp = F.parse_dump("s2", _dumps({"s2": 4})["s2"])[0]
    assert not lldp.info.ours and lldp.output() == "CONTROLLER"


def test_named_ports_and_drop():
    line = (f" cookie={C.make_cookie(C.OTHER, VM1):#x}, duration=1s, table=1, n_packets=0, "
            f"n_bytes=0, priority=100,ip,nw_dst={VM1} actions=output:\"s2-eth4\"")
    (e,) = F.parse_dump("s2", line)
    assert e.output() == 4
    (d,) = F.parse_dump("s2", line.replace('output:"s2-eth4"', "drop"))
    assert d.output() == "drop"


def test_flows_that_lead_to_the_vm_host_are_fine():
    assert F.misdirected(TOPO, _dumps(TO_PM1), VM1, "pm1") == []
    assert F.misdirected(TOPO, _dumps(TO_PM2), VM1, "pm2") == []


def test_flows_still_at_the_old_host_are_reported_from_every_switch():
    probs = F.misdirected(TOPO, _dumps(TO_PM2), VM1, "pm1")
    assert len(probs) == 3 and all("not at pm1" in p for p in probs)


def test_one_switch_left_behind_is_found():
    probs = F.misdirected(TOPO, _dumps({**TO_PM1, "s3": 2}), VM1, "pm1")
    assert probs == [f"{VM1}: from s3 the flows end at s3 port 2, not at pm1 (s2 port 4)"]


def test_hold_and_staging_leftovers_are_found():
    hold = {"s2": [_line(C.HOLD, "ctl", prio=300)]}
    probs = F.misdirected(TOPO, _dumps(TO_PM1, hold), VM1, "pm1")
    assert any("hold flow" in p for p in probs)
    staging = {"s1": [_line(C.OTHER, 2, gen=1, prio=99)]}
    probs = F.misdirected(TOPO, _dumps(TO_PM1, staging), VM1, "pm1")
    assert any("generations [0, 1]" in p for p in probs)


def test_classes_that_disagree_on_a_switch_are_found():
    split = {"s1": [_line(C.MIGRATION, 2, match="tcp,tp_dst=16509", prio=201)]}
    probs = F.misdirected(TOPO, _dumps(TO_PM1, split), VM1, "pm1")
    assert any(p.startswith("s1: flows for") and "disagree" in p for p in probs)


def test_a_loop_and_a_missing_flow_are_found():
    loop = F.misdirected(TOPO, _dumps({"s1": 2, "s2": 4, "s3": 1}), VM1, "pm1")
    assert any("loop" in p for p in loop)
    hole = F.misdirected(TOPO, _dumps({"s1": 1, "s2": None, "s3": 1}), VM1, "pm1")
    assert "s2: no flow for 10.0.0.101" in hole
    assert any("breaks at s2" in p for p in hole)
