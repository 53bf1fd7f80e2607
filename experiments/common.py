"""Shared by every experiment script: bootstrapping into the project's venv,
results folders and their metadata."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
RESULTS = os.path.join(ROOT, "results")


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def ensure_venv(script: str) -> None:
    """``sudo python experiments/x.py`` with any Python: run the set-up step
    and re-execute the script with the project's venv interpreter.  In the
    venv, SIGTERM and SIGHUP (and SIGINT, which a shell ignores in
    background jobs) interrupt the run like Ctrl-C, so the testbed stops
    what it started."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        import signal
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, _interrupt)
        return
    if os.geteuid() != 0:
        sys.exit(f"{os.path.basename(script)} needs root (network namespaces, "
                 f"Open vSwitch): sudo python {os.path.relpath(script)}")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "setup.sh")], check=True)
    py = os.path.join(VENV, "bin", "python")
    os.execv(py, [py, os.path.abspath(script), *sys.argv[1:]])


def new_run_dir(out: str | None, prefix: str = "run") -> str:
    path = out or os.path.join(RESULTS, f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(path, exist_ok=True)
    return path


def _cmd(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (res.stdout or res.stderr).strip()
    return out.splitlines()[0] if out else None


def _dist_version(name: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def metadata(options: dict, extra: dict | None = None) -> dict:
    """Versions and settings that a result depends on."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": _cmd(["git", "-C", ROOT, "rev-parse", "HEAD"]),
        "git_dirty": bool(_cmd(["git", "-C", ROOT, "status", "--porcelain"])),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ovs": _cmd(["ovs-vswitchd", "--version"]),
        "qemu": _cmd(["qemu-system-x86_64", "--version"]),
        "libvirt": _cmd(["libvirtd", "--version"]),
        "mininet": _dist_version("mininet"),
        "os_ken": _dist_version("os-ken"),
        "cpus": os.cpu_count(),
        "options": options,
        **(extra or {}),
    }


def write_json(path: str, data: dict) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")


# -- the paper evaluation's trials (shared by fig27 and fig29) ----------------

CONDITIONS = ("before", "after")       # OVCT off (routing only) / switched on
PAIRS = [("tcl1", "vm1"), ("tcl1", "vm2"), ("tcl2", "vm1"), ("tcl2", "vm2")]
# pings: per pair and condition, all four pairs at once, every 50 ms (the
# report sent 20; single RTTs to TCG guests vary by tenths of a ms, so we
# send more)
# quick (CI): three trials.  Two switch hops cost 0.05-0.16 ms here (it
# varies between emulations) and the guests' reply time drifts by as much
# within a minute: 2 of 8 single paired trials showed no reduction (one in
# CI: 0.68 -> 0.72 ms), so one trial cannot show it for every pair.
QUICK = {"runs": 3, "window": 40.0, "pings": 200, "ping_interval": 0.05, "fig31_runs": 1}
FULL = {"runs": 3, "window": 180.0, "pings": 200, "ping_interval": 0.05, "fig31_runs": 5}


def add_args(p, figure: bool = True) -> None:
    """Options every figure script shares."""
    p.add_argument("--out", help="results folder (default results/run-<time>)")
    p.add_argument("--runs", type=int,
                   help="trials (each: OVCT off, then on; Fig. 31: per update mode)")
    p.add_argument("--window", type=float,
                   help="seconds of thin-client traffic measured per condition")
    p.add_argument("--pings", type=int,
                   help="pings per thin client, VM and condition (report: 20)")
    p.add_argument("--modes", nargs="+", choices=["fast", "paper"], default=["fast", "paper"],
                   help="OVCT network-update modes (fig31; 'after' uses the first)")
    p.add_argument("--quick", action="store_true",
                   help=f"CI profile: {QUICK['runs']} runs, {QUICK['window']:g} s windows")
    p.add_argument("--plot-only", action="store_true",
                   help="only re-analyse and re-plot what is in --out")


def profile(args) -> dict:
    base = dict(QUICK if args.quick else FULL)
    if args.runs:
        base["runs"] = base["fig31_runs"] = args.runs
    if args.window:
        base["window"] = args.window
    if getattr(args, "pings", None):
        base["pings"] = args.pings
    return base


def paper_eval_scenario(window: float):
    """The report's evaluation set-up: both thin clients use their VM for two
    windows; OVCT is off (routing only) in the first and switched on at the
    start of the second."""
    from testbed import scenario
    data = scenario.load(os.path.join(ROOT, "experiments", "scenarios", "paper.yaml")) \
        .model_dump(mode="json")
    start = 2.0
    data["sessions"] = [
        {"client": "tcl1", "vm": "vm1", "port": 5900, "start_s": start,
         "duration_s": 2 * window, "input_rate_hz": 2.0},
        {"client": "tcl2", "vm": "vm2", "port": 5900, "start_s": start,
         "duration_s": 2 * window, "input_rate_hz": 2.0},
    ]
    data["probes"] = []
    data["ovct_on_at_s"] = start + window
    return scenario.parse(data, "paper evaluation")


def save_figure(fig, out: str, name: str) -> list[str]:
    """Write a matplotlib figure as PNG and SVG and close it."""
    import matplotlib.pyplot as plt
    paths = []
    for ext in ("png", "svg"):
        paths.append(os.path.join(out, f"{name}.{ext}"))
        fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def paper_figure_main(argv, doc: str, name: str, tables, analyse, report) -> int:
    """What fig27 and fig29 share: options, the before/after trials (the
    missing ones run, in the project's venv) turned into ``tables``
    ({csv name: rows(trial dirs) -> DataFrame}), then ``analyse(out)``,
    whose result is printed with ``report`` and kept in ``<name>.json``.
    With --plot-only, only the analysis runs, on the CSVs already there."""
    import argparse
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_args(p)
    args = p.parse_args(argv)
    out = new_run_dir(args.out)
    if not args.plot_only:
        ensure_venv(sys.argv[0])
        dirs = ensure_paper_trials(out, profile(args), mode=args.modes[0])
        for csv_name, rows in tables.items():
            rows(dirs).to_csv(os.path.join(out, csv_name), index=False)
    res = analyse(out)
    print(report(res))
    write_json(os.path.join(out, f"{name}.json"), res)
    return 0


def trial_dir(out: str, n: int) -> str:
    return os.path.join(out, "raw", f"trial-{n}")


def trial_done(path: str) -> bool:
    return os.path.exists(os.path.join(path, "trial.json"))


def ping_matrix(tb, count: int, interval: float) -> dict:
    """``count`` pings from each thin client to each VM, all pairs at once
    (so every pair sees the same moments of the run)."""
    res = tb.ping_pairs(PAIRS, count=count, interval=interval)
    return {f"{src}->{dst}": {"rtts_ms": r.rtts_ms, "sent": r.transmitted, "raw": r.raw}
            for (src, dst), r in res.items()}


def ensure_paper_trials(out: str, prof: dict, mode: str = "fast", log=print) -> list[str]:
    """Run the trials not yet in ``out``; return all trial dirs.  One trial
    is one emulation with both conditions, so they share the machine's
    state: a window with OVCT off ("before"), then OVCT switched on for a
    window ("after", migrations included).  The RTT matrix is measured at
    the end of "before" and once "after" is steady (the migrations over), so
    the two are close in time; relayed traffic is recorded throughout."""
    from testbed.runner import run_scenario
    scn = paper_eval_scenario(prof["window"])
    todo = list(range(1, prof["runs"] + 1))
    missing = [n for n in todo if not trial_done(trial_dir(out, n))]
    for k, n in enumerate(missing, 1):
        path = trial_dir(out, n)
        if os.path.exists(path):
            import shutil
            shutil.rmtree(path)        # an interrupted trial: start it again
        log(f"[trial {k}/{len(missing)}] trial-{n}: {prof['window']:g} s with OVCT off, "
            f"then {prof['window']:g} s with OVCT on ({mode})")
        summary = run_scenario(
            scn, path, mode=mode,
            on_steady=lambda tb, _phase: ping_matrix(tb, prof["pings"], prof["ping_interval"]),
            steady_after_s=5.0, measure_s=prof["pings"] * prof["ping_interval"],
            log=lambda m: log("    " + m))
        lacking = [c for c in CONDITIONS if c not in summary["steady"]]
        if lacking:
            raise RuntimeError(f"trial-{n}: {', '.join(lacking)} never became steady")
        write_json(os.path.join(path, "trial.json"),
                   {"condition": "paired", "trial": n, "mode": mode, "window_s": prof["window"],
                    "pings": prof["pings"], "ping_interval_s": prof["ping_interval"],
                    "accel": summary["accel"]})
    return [trial_dir(out, n) for n in todo]
