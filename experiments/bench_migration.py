#!/usr/bin/env python3
"""Benchmark: live migration of vm1 on the paper network, repeated.

    sudo python experiments/bench_migration.py [--runs 5] [--out DIR]

vm1 moves pm2 -> pm1 -> pm2 ... by hand (no OVCT decision) while tcl1 pings
it every 10 ms.  Per run: libvirt's elapsed time and QEMU downtime, bytes
moved, iterations, pings lost and the longest gap between ping replies.
Writes migrations.csv and boot.csv (one row per observation) and prints
medians.  Routing is the controller's: it re-points vm1's flows when QEMU's
RARP announces the VM at its new port.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import bootstrap  # noqa: E402

if __name__ == "__main__":
    bootstrap.ensure_venv(__file__)       # all other imports run in the venv

from experiments import common  # noqa: E402
from testbed.net import Testbed  # noqa: E402
from testbed.topology import paper_topology  # noqa: E402
from testbed.wait import wait_until  # noqa: E402

FIELDS = ["run", "vm", "src", "dst", "accel", "vm_memory_mib", "elapsed_ms", "downtime_ms",
          "wall_s", "data_total_bytes", "iterations", "memory_bps", "pings_sent",
          "pings_lost", "ping_interval_ms", "ping_gap_ms"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", help="results folder (default results/migration-<time>)")
    p.add_argument("--vm-memory", type=int, default=256)
    args = p.parse_args(argv)
    out = common.new_run_dir(args.out, "migration")
    rows, boots = [], []
    with Testbed(paper_topology(args.vm_memory), run_dir=os.path.join(out, "raw"),
                 stats_interval=1.0, ovct={"enabled": False}) as tb:   # moves by hand
        for vm, s in tb.vm_boot_s.items():
            boots.append({"vm": vm, "accel": tb.accel, "boot_to_vnc_s": round(s, 3)})
        vm_ip = tb.topology.vm("vm1").ip
        for run in range(1, args.runs + 1):
            dst = "pm1" if tb.hv.locate("vm1") == "pm2" else "pm2"
            dpid = 2 if dst == "pm1" else 3
            pinger = tb.start_ping("tcl1", "vm1", interval=0.01)
            try:
                st = tb.hv.migrate("vm1", dst, timeout=600).result(timeout=900)
                wait_until(lambda: tb.state()["hosts"].get(vm_ip, {}).get("dpid") == dpid,
                           30, "the controller to re-point vm1")
                wait_until(lambda: tb.ping("tcl2", "vm1", count=1).received == 1, 30,
                           "vm1 reachable")
            finally:
                ping = pinger.stop()
            rows.append({"run": run, "vm": "vm1", "src": st.src, "dst": st.dst,
                         "accel": tb.accel, "vm_memory_mib": args.vm_memory,
                         "elapsed_ms": st.elapsed_ms, "downtime_ms": st.downtime_ms,
                         "wall_s": round(st.wall_s, 3), "data_total_bytes": st.data_total_bytes,
                         "iterations": st.iterations, "memory_bps": st.memory_bps,
                         "pings_sent": ping.transmitted, "pings_lost": ping.loss,
                         "ping_interval_ms": 10, "ping_gap_ms": round(ping.max_gap_ms or 0, 1)})
            print(f"run {run}/{args.runs}: {st.src}->{st.dst} {st.elapsed_ms} ms, downtime "
                  f"{st.downtime_ms} ms, {ping.loss} pings lost, gap {ping.max_gap_ms:.0f} ms",
                  flush=True)
        accel = tb.accel
    with open(os.path.join(out, "migrations.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "boot.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, ["vm", "accel", "boot_to_vnc_s"])
        w.writeheader()
        w.writerows(boots)
    common.write_json(os.path.join(out, "metadata.json"),
                      common.metadata(vars(args), {"accel": accel, "topology": "paper"}))
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("elapsed_ms", "downtime_ms", "pings_lost", "ping_gap_ms", "wall_s")}
    print(f"\n{len(rows)} migrations of vm1 ({accel}, {args.vm_memory} MiB), medians: "
          f"libvirt time {med['elapsed_ms']:.0f} ms, QEMU downtime {med['downtime_ms']:.0f} ms, "
          f"pings lost {med['pings_lost']:.0f} (10 ms interval), ping gap "
          f"{med['ping_gap_ms']:.0f} ms; boot to VNC "
          f"{statistics.median(b['boot_to_vnc_s'] for b in boots):.1f} s")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
