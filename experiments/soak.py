#!/usr/bin/env python3
"""Soak: many back-and-forth live migrations under load, and what broke.

    sudo python experiments/soak.py [--migrations 100] [--out results/soak]
    python experiments/soak.py --plot-only --out results/soak

vm1 moves pm2 -> pm1 -> pm2 ... by hand through libvirt (the controller
did not start these moves: it follows each one from libvirt's events and
QEMU's RARP, which is what is being soaked), while

* tcl1 keeps a VNC session to vm1 open (a real thin client sending input),
* tcl2 keeps a second long-lived TCP stream to vm1 (a viewer requesting
  continuous screen updates, no input),
* tcl1 pings vm1 every 10 ms.

After each migration the script waits until vm1 runs on exactly one host
and every switch's flows lead there (read from the switches,
:mod:`testbed.flowcheck`).  Per migration (``migrations.csv``): libvirt's
time and downtime, the problems seen the moment the job ended and how long
the flows took to settle, and the probe's longest gap and losses from the
migrate call until settled.  ``summary.md`` and ``soak.png`` give the
totals: migrations done, VMs lost (not running on exactly one host), TCP
breaks (a stream that closed), stale flows, and the distribution of gaps.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import bootstrap  # noqa: E402

if __name__ == "__main__":
    bootstrap.ensure_venv(__file__)       # all other imports run in the venv

import pandas as pd  # noqa: E402

from controller import events as E  # noqa: E402
from controller.rundir import RunDir  # noqa: E402
from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from testbed import flowcheck  # noqa: E402
from testbed import ping as pingmod  # noqa: E402
from testbed.topology import paper_topology  # noqa: E402
from testbed.wait import WaitTimeout, wait_until  # noqa: E402

VM = "vm1"
PROBE_S = 0.01
SETTLE_DEADLINE_S = 60.0
STREAMS = {"vnc": ("tcl1", 2.0), "stream": ("tcl2", 0.0)}   # name: (client, input rate)


def _start_stream(tb, run: RunDir, name: str, n: int):
    client, rate = STREAMS[name]
    log = run.thinclient_log(client, f"{VM}-{name}", n)
    return tb.start_session(client, VM, log, duration_s=24 * 3600, input_rate_hz=rate), log


def run_soak(out: str, migrations: int, vm_memory: int, log=print) -> dict:
    from testbed.net import Testbed     # here, not on top: --plot-only needs no Mininet

    raw = RunDir(os.path.join(out, "raw"))
    raw.ensure(raw.thinclients, raw.pings)
    rows, breaks = [], []
    t_start = time.monotonic()
    with Testbed(paper_topology(vm_memory), run_dir=raw.path, stats_interval=2.0,
                 ovct={"enabled": False}) as tb:       # moves by hand; routing follows them
        probe = tb.start_ping("tcl1", VM, PROBE_S, log=raw.ping_log("tcl1", VM))
        streams = {name: _start_stream(tb, raw, name, 0) for name in STREAMS}
        n_started = {name: 1 for name in STREAMS}
        try:
            wait_until(lambda: all(any(r.get("event") == "update" for r in E.read(lg))
                                   for _p, lg in streams.values()), 60,
                       "both streams to receive a screen update")
            for i in range(1, migrations + 1):
                src = flowcheck.running_on(tb.hv, VM)
                dst = "pm1" if src == ["pm2"] else "pm2"
                t0, w0 = time.monotonic(), time.time()
                st = tb.hv.migrate(VM, dst, timeout=600).result(timeout=900)
                at_done = flowcheck.vm_problems(tb, VM)
                seen: dict = {}

                def settled() -> bool:
                    seen["problems"] = flowcheck.vm_problems(tb, VM)
                    return not seen["problems"]
                try:
                    wait_until(settled, SETTLE_DEADLINE_S, "vm1 in one place, flows there",
                               interval=0.05)
                    ok = True
                except WaitTimeout:
                    ok = False
                t1, w1 = time.monotonic(), time.time()
                for name, (proc, lg) in list(streams.items()):
                    if proc.poll() is not None:          # the TCP stream broke: note, reopen
                        breaks.append({"migration": i, "stream": name, "exit": proc.returncode,
                                       "log": os.path.basename(lg)})
                        streams[name] = _start_stream(tb, raw, name, n_started[name])
                        n_started[name] += 1
                rows.append({
                    "migration": i, "src": st.src, "dst": st.dst, "accel": tb.accel,
                    "elapsed_ms": st.elapsed_ms, "downtime_ms": st.downtime_ms,
                    "wall_s": round(st.wall_s, 3), "data_total_bytes": st.data_total_bytes,
                    "problems_at_job_end": len(at_done),
                    "problems_at_job_end_text": " | ".join(at_done),
                    "settled": ok, "settle_after_job_s": round(t1 - t0 - st.wall_s, 3),
                    "problems_left": " | ".join(seen.get("problems", [])) if not ok else "",
                    "start_wall": round(w0, 3), "settled_wall": round(w1, 3)})
                if i == 1 or i % 5 == 0 or i == migrations:
                    log(f"migration {i}/{migrations}: {st.src}->{st.dst} {st.elapsed_ms} ms, "
                        f"settled {'yes' if ok else 'NO'}, {len(breaks)} stream breaks "
                        f"{common.progress(t_start, i, migrations)}")
        finally:
            probe.stop()
            for proc, _lg in streams.values():
                if proc.poll() is None:
                    proc.terminate()
                proc.wait(15)
        accel = tb.accel
    pd.DataFrame(rows).to_csv(os.path.join(out, "migrations.csv"), index=False)
    pd.DataFrame(breaks, columns=["migration", "stream", "exit", "log"]).to_csv(
        os.path.join(out, "stream_breaks.csv"), index=False)
    return {"accel": accel}


def gap_rows(out: str) -> pd.DataFrame:
    """Per migration, the 10 ms probe from the migrate call until settled
    (plus 1 s): pings sent and lost and the longest silence between replies."""
    mig = pd.read_csv(os.path.join(out, "migrations.csv"))
    raw = RunDir(os.path.join(out, "raw"))
    res = pingmod.parse(open(raw.ping_log("tcl1", VM), encoding="utf-8",
                             errors="replace").read())
    windows = [(m.start_wall, m.settled_wall + 1.0) for m in mig.itertuples()]
    rows = [{"migration": m.migration, **w}
            for m, w in zip(mig.itertuples(), A.probe_in_windows(res, windows, PROBE_S))]
    return pd.DataFrame(rows)


def analyse(out: str) -> dict:
    import matplotlib                   # here: the backend must be chosen before pyplot loads
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mig = pd.read_csv(os.path.join(out, "migrations.csv"))
    gaps = gap_rows(out)
    gaps.to_csv(os.path.join(out, "gaps.csv"), index=False)
    brk = pd.read_csv(os.path.join(out, "stream_breaks.csv"))
    q = gaps.max_gap_ms.quantile([0.5, 0.9, 0.99]).round(1)
    res = {
        "migrations": int(len(mig)),
        "vms_lost": int((~mig.settled).sum()),
        "tcp_breaks": int(len(brk)),
        "migrations_with_problems_at_job_end": int((mig.problems_at_job_end > 0).sum()),
        "stale_flows_after_settling": int((mig.problems_left.astype("string").fillna("") != "").sum()),
        "settle_after_job_s_median": round(float(mig.settle_after_job_s.median()), 3),
        "settle_after_job_s_max": round(float(mig.settle_after_job_s.max()), 3),
        "libvirt_elapsed_ms_median": float(mig.elapsed_ms.median()),
        "downtime_ms_median": float(mig.downtime_ms.median()),
        "gap_ms_median": float(q[0.5]), "gap_ms_p90": float(q[0.9]),
        "gap_ms_p99": float(q[0.99]), "gap_ms_max": float(gaps.max_gap_ms.max()),
        "pings_lost_total": int(gaps.pings_lost.sum()),
        "pings_sent_total": int(gaps.pings_sent.sum()),
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(gaps.migration, gaps.max_gap_ms, ".", ms=4)
    ax1.set(xlabel="migration", ylabel="longest ping silence (ms)",
            title="network gap per migration (10 ms probe)")
    xs = sorted(gaps.max_gap_ms.dropna())
    ax2.step(xs, [(k + 1) / len(xs) for k in range(len(xs))], where="post")
    ax2.set(xlabel="longest ping silence (ms)", ylabel="fraction of migrations",
            title=f"{res['migrations']} migrations: CDF of the gap")
    fig.tight_layout()
    common.save_figure(fig, out, "soak")
    with open(os.path.join(out, "summary.md"), "w") as fh:
        fh.write(f"# Soak: {res['migrations']} live migrations of vm1 (pm1 <-> pm2)\n\n"
                 "Made by `sudo python experiments/soak.py` (command and versions in "
                 "`metadata.json`); every number below is recomputed from `migrations.csv`, "
                 "`stream_breaks.csv` and the raw ping log by `--plot-only`.\n\n"
                 "| measure | value |\n|---|---|\n")
        for k, v in res.items():
            fh.write(f"| {k} | {v} |\n")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--migrations", type=int, default=100)
    p.add_argument("--vm-memory", type=int, default=256, help="guest RAM in MiB")
    p.add_argument("--out", help="results folder (default results/soak-<time>)")
    p.add_argument("--plot-only", action="store_true", help="re-analyse --out only")
    args = p.parse_args(argv)
    if args.migrations < 1:
        p.error("--migrations must be at least 1")
    out = common.new_run_dir(args.out, "soak")
    if not args.plot_only:
        t0 = time.monotonic()
        extra = run_soak(out, args.migrations, args.vm_memory)
        common.write_json(os.path.join(out, "metadata.json"), common.metadata(
            vars(args), {**extra, "topology": "paper", "wall_s": round(time.monotonic() - t0)}))
    res = analyse(out)
    print(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
