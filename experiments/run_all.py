#!/usr/bin/env python3
"""The main job: ``sudo python experiments/run_all.py``.

Today it brings up the report's network (s1 joining s2 and s3; tcl1, tcl2,
pm1 on s2; pm2 on s3) with our os-ken controller, checks that every pair of
hosts can reach each other and measures RTT from each thin client to each
KVM host.  Results go to results/<run-id>/ (metadata.json, ping.csv with one
row per echo reply).  The OVCT experiments (KVM guests, migration, the
report's figures) are added by the later issues.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common  # noqa: E402


def main(argv=None) -> int:
    common.ensure_venv(__file__)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="results folder (default results/run-<time>)")
    p.add_argument("--count", type=int, default=20, help="pings per thin client/host pair")
    args = p.parse_args(argv)

    from testbed.cli import connectivity_report
    from testbed.net import Testbed
    from testbed.topology import paper_topology

    out = common.new_run_dir(args.out)
    print(f"results: {out}")
    with Testbed(paper_topology(), run_dir=os.path.join(out, "raw")) as tb:
        print(f"paper network up ({tb.datapath} datapath)")
        ok, rows = connectivity_report(tb, args.count)
        datapath = tb.datapath
    common.write_json(os.path.join(out, "metadata.json"), common.metadata(
        vars(args), {"ovs_datapath": datapath, "topology": "paper"}))
    with open(os.path.join(out, "ping.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["phase", "src", "dst", "seq", "rtt_ms"])
        for r in rows:
            for i, rtt in enumerate(r["rtts_ms"], 1):
                w.writerow(["routing-only", r["src"], r["dst"], i, rtt])
    print(f"\nwrote {out}/metadata.json, {out}/ping.csv")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
