"""``ovct``: the testbed's command line.

    ovct preflight                      list missing dependencies
    ovct check [--topo paper]           bring a network up, check every pair
                                        of hosts pings, print RTTs, tear down
    ovct up [--topo multisite --sites 6] [--cli]
                                        bring a network up and keep it up
                                        (Mininet CLI with --cli) until Ctrl-C
"""
from __future__ import annotations

import argparse
import signal
import sys
import time

from testbed import preflight
from testbed.topology import KVM_HOST, CLIENT, TopologyError, build


def _topology_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("topology")
    g.add_argument("--topo", default="paper", choices=["paper", "multisite"])
    g.add_argument("--sites", type=int, default=4, help="multisite: edge sites")
    g.add_argument("--clients", type=int, default=2, help="multisite: thin clients per site")
    g.add_argument("--hosts", type=int, default=1, help="multisite: KVM hosts per site")
    g.add_argument("--core", type=int, default=1, help="multisite: core switches (ring if >= 3)")
    n = p.add_argument_group("network")
    n.add_argument("--bw", type=float, help="link bandwidth in Mbit/s (HTB)")
    n.add_argument("--delay", help="link delay, e.g. 2ms (needs sch_netem)")
    n.add_argument("--stats-interval", type=float, default=5.0,
                   help="seconds between the controller's statistics polls")
    n.add_argument("--run-dir", help="where logs, events and statistics go "
                                     "(default runs/<topology>-<time>)")


def _topology(args):
    if args.topo == "paper":
        return build("paper")
    return build("multisite", sites=args.sites, clients=args.clients,
                 hosts=args.hosts, core=args.core)


def _testbed(args):
    from testbed.net import Testbed
    return Testbed(_topology(args), run_dir=args.run_dir,
                   stats_interval=args.stats_interval, link_bw=args.bw,
                   link_delay=args.delay)


def cmd_preflight(_args) -> int:
    gone = preflight.missing()
    if gone:
        print(preflight.report(gone))
        return 1
    print("all dependencies present")
    return 0


def connectivity_report(tb, count: int) -> tuple[bool, list[dict]]:
    """Ping every ordered pair once (full connectivity), then ``count``
    pings from each thin client to each KVM host for the RTT table."""
    res = tb.ping_all(count=1)
    failed = [f"{a}->{b}" for (a, b), r in res.items() if r.received == 0]
    n = len(res)
    print(f"connectivity: {n - len(failed)}/{n} ordered host pairs reachable")
    if failed:
        print("  unreachable: " + ", ".join(failed))
    rows = []
    clients = tb.topology.hosts_by_role(CLIENT)
    hosts = tb.topology.hosts_by_role(KVM_HOST)
    print(f"\nRTT over {count} pings (ms)     min   median   loss")
    for c in clients:
        for h in hosts:
            r = tb.ping(c.name, h.name, count=count, interval=0.05)
            rows.append({"src": c.name, "dst": h.name, "sent": r.transmitted,
                         "received": r.received, "rtt_min_ms": r.rtt_min_ms,
                         "rtt_median_ms": r.rtt_median_ms, "rtts_ms": r.rtts_ms})
            mn = f"{r.rtt_min_ms:.3f}" if r.rtts_ms else "  -  "
            md = f"{r.rtt_median_ms:.3f}" if r.rtts_ms else "  -  "
            print(f"  {c.name:>6} -> {h.name:<8}       {mn:>6}  {md:>7}   {r.loss}")
    return not failed, rows


def cmd_check(args) -> int:
    t0 = time.monotonic()
    with _testbed(args) as tb:
        print(f"network '{tb.topology.name}' up in {time.monotonic() - t0:.1f} s "
              f"({len(tb.topology.switches)} switches, {len(tb.topology.hosts)} hosts, "
              f"OVS {tb.datapath} datapath); run dir {tb.run_dir}")
        ok, _rows = connectivity_report(tb, args.count)
    print(f"\nnetwork stopped; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def cmd_up(args) -> int:
    with _testbed(args) as tb:
        print(f"network '{tb.topology.name}' up; controller 127.0.0.1:"
              f"{tb.controller_port}; run dir {tb.run_dir}")
        if args.cli:
            from mininet.cli import CLI
            CLI(tb.net)
        else:
            print("Ctrl-C to stop")
            signal.pause()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ovct", description="OVCT testbed")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("preflight", help="list missing dependencies").set_defaults(fn=cmd_preflight)
    c = sub.add_parser("check", help="bring a network up, check connectivity and RTT")
    _topology_args(c)
    c.add_argument("--count", type=int, default=20, help="pings per RTT pair")
    c.set_defaults(fn=cmd_check)
    u = sub.add_parser("up", help="bring a network up until Ctrl-C")
    _topology_args(u)
    u.add_argument("--cli", action="store_true", help="open the Mininet CLI")
    u.set_defaults(fn=cmd_up)
    args = p.parse_args(argv)

    def _term(signum, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    try:
        return args.fn(args)
    except TopologyError as exc:
        print(f"ovct: bad topology: {exc}", file=sys.stderr)
        return 2
    except preflight.PreflightError as exc:
        print(f"ovct: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
