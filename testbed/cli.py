"""``ovct``: the testbed's command line.

    ovct preflight                      list missing dependencies
    ovct check [--topo paper]           bring a network up (with its VMs),
                                        check every pair of hosts pings, print
                                        RTTs, tear down
    ovct up [--topo multisite --sites 6] [--cli]
                                        bring a network up and keep it up
                                        (Mininet CLI with --cli) until Ctrl-C
    ovct where                          (another shell) where each VM runs
    ovct migrate vm1 pm1                (another shell) live-migrate by hand
    ovct image build|path               the guest image
    ovct run SCENARIO.yaml --out DIR    run a scenario end to end
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from controller.config import ConfigError
from controller.hypervisor import HostSpec, MigrationError
from controller.modes import UPDATE_MODES
from controller.rundir import ROOT, RunDir, default_run
from testbed import accel, guest_image, preflight, scenario
from testbed.cluster import ClusterError, ClusterRun, parse_server
from testbed.controller_proc import ControllerError
from testbed.fleet import FleetError
from testbed.net import Testbed, TestbedError
from testbed.network import NetworkError
from testbed.probes import sample_of
from testbed.runner import run_scenario
from testbed.topology import CLIENT, KINDS, KVM_HOST, TopologyError, build
from testbed.wait import WaitTimeout

#: `ovct check`: up to this many client->host pairs get a line each in the
#: RTT table (pinged one pair at a time); more are pinged in batches and
#: summarised
RTT_TABLE_MAX = 40
RTT_SAMPLE = 200
VNC_CHECK_S = 30.0    # `ovct check`: how long a booted guest's VNC server may take to answer


def _topology_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("topology")
    g.add_argument("--topo", default="paper", choices=list(KINDS),
                   help="; ".join(f"{k.name}: {k.summary}" for k in KINDS.values()))
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
                                     "(default runs/<topology>-<time>-<pid>)")
    _cluster_args(p)
    k = p.add_argument_group("KVM hosts")
    k.add_argument("--no-vms", action="store_true",
                   help="plain hosts only: no libvirtd, no guests")
    k.add_argument("--vms", type=int, default=0, help="multisite: VMs per site")
    k.add_argument("--vm-memory", type=int, default=256, help="guest RAM in MiB")
    k.add_argument("--accel", choices=accel.CHOICES, default=accel.AUTO,
                   help="guest acceleration (auto: KVM if it works, else TCG)")


def _cluster_args(p: argparse.ArgumentParser) -> None:
    cl = p.add_argument_group(
        "cluster mode", "the network spread over several servers with Mininet's cluster "
        "edition (ssh to each server as root; see docs/CLUSTER.md)")
    cl.add_argument("--servers", metavar="HOST[,HOST...]",
                    help="the other servers (host, address or user@host); this "
                         "machine, 'local', is the first and runs the controller")
    cl.add_argument("--ssh-config", metavar="FILE",
                    help="ssh client configuration for --servers (keys, ports)")
    cl.add_argument("--standin", type=int, default=0, metavar="N",
                    help="N stand-in servers on this machine (a namespace each, with "
                         "its own Open vSwitch and sshd), named srv2, srv3, ...")
    cl.add_argument("--place", action="append", default=[], metavar="SWITCH=SERVER",
                    help="put a switch (and its hosts) on a server (default: sites "
                         "round the servers, the core on 'local')")


def _topology(args):
    return build(args.topo, vm_memory_mib=args.vm_memory,
                 **{p: getattr(args, p) for p in KINDS[args.topo].params})


def _cluster(args, topo) -> ClusterRun | None:
    """The cluster-mode options as a ClusterRun (None without them); a bad
    option is an error before anything starts."""
    if not (args.servers or args.standin or args.place or args.ssh_config):
        return None
    if args.standin < 0:
        raise TestbedError("--standin: give a number of servers >= 1")
    fixed = {}
    for item in args.place:
        sw, sep, srv = item.partition("=")
        if not sep or not sw or not srv:
            raise TestbedError(f"--place {item!r}: give SWITCH=SERVER")
        fixed[sw] = srv
    try:
        servers = [parse_server(x) for x in args.servers.split(",")] if args.servers else []
        run = ClusterRun(servers, args.standin, args.ssh_config, fixed)
    except ClusterError as exc:
        raise TestbedError(str(exc)) from None
    if args.ssh_config and not os.path.isfile(args.ssh_config):
        raise TestbedError(f"--ssh-config {args.ssh_config}: no such file")
    run.place(topo)            # an unknown switch or server: TopologyError now
    return run


def cluster_line(topo, cluster: ClusterRun) -> str:
    """Where the nodes run, in one line: per server its switches and hosts,
    and how many switch links cross servers (each an ssh tunnel)."""
    where = cluster.where
    parts = []
    for srv in cluster.names:
        sws = [s.name for s in topo.switches if where[s.name] == srv]
        hosts = [h.name for h in topo.hosts if where[h.name] == srv]
        kind = " (stand-in)" if cluster.standin(srv) else ""
        parts.append(f"{srv}{kind}: {len(sws)} switches ({', '.join(sws)}), {len(hosts)} hosts")
    crossing = sum(where[ln.a] != where[ln.b] for ln in topo.switch_links())
    return f"cluster: {'; '.join(parts)}; {crossing} switch links cross servers (ssh tunnels)"


def _testbed(args):
    topo = _topology(args)
    return Testbed(topo, run_dir=args.run_dir,
                   stats_interval=args.stats_interval, link_bw=args.bw,
                   link_delay=args.delay, kvm=bool(topo.vms) and not args.no_vms,
                   accel=args.accel, cluster=_cluster(args, topo))


def cmd_preflight(_args) -> int:
    gone = preflight.missing()
    if gone:
        print(preflight.report(gone))
        return 1
    print("all dependencies present")
    return 0


def connectivity_report(tb, count: int, pairs: int | None = None) -> tuple[bool, list[dict]]:
    """Ping every ordered pair once (full connectivity; or a random sample
    of ``pairs``), then ``count`` pings from each thin client to each KVM
    host for the RTT table."""
    t0 = time.monotonic()
    res = tb.ping_all(count=1, sample=pairs)
    failed = [f"{a}->{b}" for (a, b), r in res.items() if r.received == 0]
    n = len(res)
    hosts = len(tb.topology.hosts)
    what = "sampled ordered host pairs" if n < hosts * (hosts - 1) else "ordered host pairs"
    firsts = sorted(r.rtts_ms[0] for r in res.values() if r.rtts_ms)
    slowest = f"; slowest first reply {firsts[-1]:.0f} ms" if firsts else ""
    print(f"connectivity: {n - len(failed)}/{n} {what} reachable on the first ping "
          f"({time.monotonic() - t0:.1f} s{slowest})")
    if failed:
        more = f" and {len(failed) - 20} more" if len(failed) > 20 else ""
        print("  unreachable: " + ", ".join(failed[:20]) + more)
    rows = []
    clients = tb.topology.hosts_by_role(CLIENT)
    targets = tb.topology.hosts_by_role(KVM_HOST) + (tb.topology.vms if tb.kvm else [])
    if tb.kvm:
        for vm in tb.topology.vms:
            # from its host: not a thin-client session.  A guest under TCG on a
            # busy machine can be slow to answer one probe, so wait with a deadline.
            try:
                greet = tb.wait_vnc(vm.name, timeout=VNC_CHECK_S)
            except WaitTimeout as exc:
                greet = str(exc)
            where = tb.hv.locate(vm.name)
            print(f"  {vm.name} ({vm.ip}) on {where}: booted to VNC in "
                  f"{tb.vm_boot_s.get(vm.name, float('nan')):.1f} s ({tb.accel}); "
                  f"port 5900 says {greet}")
            if restarts := tb.vnc_restarts(vm.name):
                print(f"    its console says Xvnc died and was restarted {restarts} time(s)")
            if not greet.startswith("RFB 003."):
                failed.append(f"VNC of {vm.name}")
    rtt_pairs = [(c.name, h.name) for c in clients for h in targets]
    # one pair at a time (side by side they would share 2 CPUs and each
    # other's queues); a large network's pairs: a random sample of them in
    # batches, summarised
    table = len(rtt_pairs) <= RTT_TABLE_MAX
    of = len(rtt_pairs)
    if not table:
        rtt_pairs = sample_of(rtt_pairs, RTT_SAMPLE)
    batch = 1 if table else 32
    results = tb.ping_pairs(rtt_pairs, count=count, interval=0.05, batch=batch)
    for (src, dst), r in results.items():
        rows.append({"src": src, "dst": dst, "sent": r.transmitted,
                     "received": r.received, "rtt_min_ms": r.rtt_min_ms,
                     "rtt_median_ms": r.rtt_median_ms, "rtts_ms": r.rtts_ms})
    if table:
        print(f"\nRTT over {count} pings (ms)     min   median   loss")
        for (src, dst), r in results.items():
            mn = f"{r.rtt_min_ms:.3f}" if r.rtts_ms else "  -  "
            md = f"{r.rtt_median_ms:.3f}" if r.rtts_ms else "  -  "
            print(f"  {src:>6} -> {dst:<8}       {mn:>6}  {md:>7}   {r.loss}")
    elif rows:
        meds = sorted((r["rtt_median_ms"], f"{r['src']}->{r['dst']}") for r in rows
                      if r["rtts_ms"])
        lost = sum(r["sent"] - r["received"] for r in rows)
        print(f"\nRTT over {count} pings for {len(rows)} client->host pairs "
              f"{'' if len(rows) == of else f'(a random sample of {of}) '}({batch} at a "
              f"time): median of the pairs' medians {meds[len(meds) // 2][0]:.3f} ms, "
              f"largest {meds[-1][0]:.3f} ms ({meds[-1][1]}); {lost} pings lost"
              if meds else f"\nno RTT: all {len(rows)} client->host pairs lost every ping")
    return not failed, rows


CURRENT = "/run/ovct/current"


def cmd_where(args) -> int:
    hv = _hypervisor(args.run)
    placement = hv.placement()
    for host in hv.hosts():
        try:
            doms = hv.domains(host)
        except Exception as exc:
            print(f"{host}: unreachable ({exc})")
            continue
        cap = hv.capacity(host)
        running = [d for d in doms if d.active]
        print(f"{host}: {len(running)} running, free {cap.free_memory_mib} MiB of "
              f"{cap.memory_mib}, CPU used {cap.cpu_used:.2f} of {cap.cpus}")
        for d in running:
            print(f"  {d.name:<8} {d.ip or '?':<15} {d.mac or '?'}  {d.memory_mib} MiB")
    return 0 if placement else 1


def cmd_migrate(args) -> int:
    hv = _hypervisor(args.run)
    t0 = time.monotonic()
    try:
        job = hv.migrate(args.vm, args.host, timeout=args.timeout)
        print(f"migrating {args.vm} {job.src} -> {job.dst} (live, peer-to-peer, persistent)")
        while not job.done():
            time.sleep(0.5)
            print(f"  ... {time.monotonic() - t0:.0f} s", end="\r", flush=True)
        st = job.result()
    except MigrationError as exc:
        print(f"ovct: {exc}", file=sys.stderr)
        where = hv.locate(args.vm)
        if where:
            print(f"{args.vm} keeps running on {where}", file=sys.stderr)
        return 1
    mb = (st.data_total_bytes or 0) / 2**20
    print(f"\ndone: {st.vm} now on {st.dst}\n"
          f"  total time   {st.elapsed_ms} ms (libvirt), {st.wall_s:.2f} s (wall)\n"
          f"  downtime     {st.downtime_ms} ms (QEMU)\n"
          f"  transferred  {mb:.1f} MiB in {st.iterations} iterations, "
          f"{(st.memory_bps or 0) * 8 / 1e6:.0f} Mbit/s")
    return 0


def _hypervisor(run: str):
    # libvirt-python: needed only for commands that talk to KVM hosts
    from controller.libvirt_hv import LibvirtHypervisor
    path = RunDir(run).hypervisors
    try:
        with open(path) as fh:
            specs = [HostSpec(**s) for s in json.load(fh)]
    except FileNotFoundError:
        raise SystemExit(f"ovct: no running testbed with KVM hosts at {run} "
                         "(start one with: sudo ovct up)") from None
    return LibvirtHypervisor(specs)


def cmd_run(args) -> int:
    try:
        scn = scenario.load(args.scenario)
    except ConfigError as exc:
        print(f"ovct: {exc}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.out or default_run(scn.name))
    summary = run_scenario(scn, out, mode=args.mode, accel=args.accel,
                           cluster=_cluster(args, scn.build_topology()))
    print(f"\n{scn.name} ({summary['update_mode']} mode, {summary['accel']}): "
          f"final placement {summary['final_placement']}")
    for m in summary["migrations"]:
        print(f"  migration of {m.get('vm')} {m.get('src')}->{m.get('dst')}: "
              f"decision {m.get('detect_to_decision_s', float('nan')) * 1000:.0f} ms after "
              f"detection, libvirt {m.get('elapsed_ms')} ms, QEMU downtime "
              f"{m.get('downtime_ms')} ms" + (f", FAILED: {m['failed']}" if m.get("failed") else ""))
    for s in summary["sessions"]:
        gap = f"{s['max_gap_s'] * 1000:.0f} ms" if s["max_gap_s"] is not None else "-"
        print(f"  session {s['session']} {s['client']}->{s['vm']}: {s['updates']} screen updates, "
              f"largest gap {gap}")
    for name, p in summary["probes"].items():
        gap = f"{p['max_gap_ms']:.0f} ms" if p["max_gap_ms"] is not None else "-"
        print(f"  ping {name} every {p['interval_ms']:g} ms: {p['lost']}/{p['sent']} lost, "
              f"largest gap {gap}")
    print(f"wrote {out}")
    ok = all(s["updates"] > 0 and not s["failed"] for s in summary["sessions"])
    return 0 if ok else 1


def cmd_notebook(args) -> int:
    """JupyterLab on notebooks/, the results folder chosen by OVCT_RESULTS
    (listening on 127.0.0.1 only; open the URL it prints)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    if args.results:
        env["OVCT_RESULTS"] = os.path.abspath(args.results)
    cmd = [os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab",
           "--notebook-dir", os.path.join(ROOT, "notebooks"), "--ip", "127.0.0.1",
           "--no-browser"] + (["--allow-root"] if os.geteuid() == 0 else []) + args.jupyter
    print("$ " + " ".join(cmd), flush=True)
    os.execve(cmd[0], cmd, env)


def cmd_image(args) -> int:
    return guest_image.main([args.action] + (["--force"] if args.force else []))


def cmd_check(args) -> int:
    t0 = time.monotonic()
    with _testbed(args) as tb:
        print(f"network '{tb.topology.name}' up in {time.monotonic() - t0:.1f} s "
              f"({len(tb.topology.switches)} switches, {len(tb.topology.hosts)} hosts, "
              f"OVS {tb.datapath} datapath); run dir {tb.run_dir}")
        if tb.cluster:
            print(cluster_line(tb.topology, tb.cluster))
        ok, _rows = connectivity_report(tb, args.count, args.pairs)
    print(f"\nnetwork stopped; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


class Terminated(BaseException):
    """SIGTERM while Mininet's CLI runs (it catches KeyboardInterrupt)."""


def _terminated(_signum, _frame):
    raise Terminated


def cmd_up(args) -> int:
    # `up` says "Ctrl-C to stop": it must, even when started with SIGINT
    # ignored (shells do that to a command run with `&` without job
    # control, and Python then never raises KeyboardInterrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with _testbed(args) as tb:
        print(f"network '{tb.topology.name}' up; controller 127.0.0.1:"
              f"{tb.controller_port}; run dir {tb.run_dir}")
        if tb.cluster:
            print(cluster_line(tb.topology, tb.cluster))
        if tb.kvm:
            print(f"VMs ({tb.accel}): " + ", ".join(
                f"{vm} on {host}" for vm, host in sorted(tb.hv.placement().items())))
        os.makedirs(os.path.dirname(CURRENT), exist_ok=True)
        if os.path.islink(CURRENT):
            os.unlink(CURRENT)
        os.symlink(tb.run_dir, CURRENT)
        try:
            if args.cli:
                from mininet.cli import CLI   # Debian's Mininet: only in the venv
                from mininet.log import setLogLevel
                setLogLevel("output")         # the CLI prints what commands say
                # Ctrl-C stays Mininet's (it interrupts the command running);
                # SIGTERM must end `up`, but the CLI swallows KeyboardInterrupt
                signal.signal(signal.SIGTERM, _terminated)
                CLI(tb.net)
            else:
                hint = "in another shell: ovct where | ovct migrate vm1 pm1;  " if tb.kvm else ""
                print(f"{hint}Ctrl-C to stop")
                signal.pause()
        except (KeyboardInterrupt, Terminated):
            pass        # Ctrl-C or SIGTERM is how `up` is meant to end
        finally:
            if os.path.islink(CURRENT) and os.readlink(CURRENT) == tb.run_dir:
                os.unlink(CURRENT)
    print("stopped; everything started was stopped")
    return 0


def main(argv=None) -> int:
    # every status line reaches a pipe or `tee` as it is printed, not when
    # a long-running `ovct up` ends
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    p = argparse.ArgumentParser(prog="ovct", description="OVCT testbed")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("preflight", help="list missing dependencies").set_defaults(fn=cmd_preflight)
    c = sub.add_parser("check", help="bring a network up, check connectivity and RTT")
    _topology_args(c)
    c.add_argument("--count", type=int, default=20, help="pings per RTT pair")
    c.add_argument("--pairs", type=int, metavar="N",
                   help="ping a random sample of N ordered host pairs (default: all; "
                        "a 250-host network has 62,250)")
    c.set_defaults(fn=cmd_check)
    u = sub.add_parser("up", help="bring a network up until Ctrl-C")
    _topology_args(u)
    u.add_argument("--cli", action="store_true", help="open the Mininet CLI")
    u.set_defaults(fn=cmd_up)
    w = sub.add_parser("where", help="where each VM runs (of a running 'ovct up')")
    w.add_argument("--run", default=CURRENT, help="run directory of the testbed")
    w.set_defaults(fn=cmd_where)
    m = sub.add_parser("migrate", help="live-migrate a VM by hand")
    m.add_argument("vm")
    m.add_argument("host")
    m.add_argument("--timeout", type=float, default=300, help="abort after this many s")
    m.add_argument("--run", default=CURRENT, help="run directory of the testbed")
    m.set_defaults(fn=cmd_migrate)
    r = sub.add_parser("run", help="run a scenario file end to end")
    r.add_argument("scenario", help="scenario YAML (see experiments/scenarios/)")
    r.add_argument("--out", help="output directory (default runs/<name>-<time>)")
    r.add_argument("--mode", choices=UPDATE_MODES, help="override ovct.update_mode")
    r.add_argument("--accel", choices=accel.CHOICES, help="override accel")
    _cluster_args(r)
    r.set_defaults(fn=cmd_run)
    nb = sub.add_parser("notebook", help="JupyterLab on notebooks/ (results notebook)")
    nb.add_argument("--results", help="results folder the notebook loads "
                                      "(default results/reference)")
    nb.add_argument("jupyter", nargs=argparse.REMAINDER, help="more options for jupyter lab")
    nb.set_defaults(fn=cmd_notebook)
    i = sub.add_parser("image", help="build or locate the guest image")
    i.add_argument("action", choices=["build", "path", "hash"])
    i.add_argument("--force", action="store_true")
    i.set_defaults(fn=cmd_image)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except TopologyError as exc:
        print(f"ovct: bad topology: {exc}", file=sys.stderr)
        return 2
    except (preflight.PreflightError, TestbedError) as exc:
        print(f"ovct: {exc}", file=sys.stderr)
        return 2
    except (ControllerError, FleetError, NetworkError, WaitTimeout, ClusterError) as exc:
        # the testbed has stopped what it started; its logs stay in the run dir
        print(f"ovct: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130


def run() -> None:
    """The ``ovct`` command: SIGTERM stops it like Ctrl-C (everything
    started is stopped), then :func:`main`."""
    def _term(signum, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    sys.exit(main())


if __name__ == "__main__":
    run()
