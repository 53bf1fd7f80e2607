"""Shared by every experiment script: results folders and their metadata,
the trial machinery (resumable, one run directory per trial) and the figure
scripts' common main."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from importlib import metadata as dist

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from controller.modes import UPDATE_MODES  # noqa: E402
from controller.rundir import RESULTS, ROOT, RunDir, default_run  # noqa: E402
from testbed import ovs, scenario  # noqa: E402
from testbed.runner import run_scenario  # noqa: E402


def new_run_dir(out: str | None, prefix: str = "run") -> str:
    """A results folder: ``out``, or ``results/<prefix>-<time>``."""
    path = out or default_run(prefix, RESULTS)
    os.makedirs(path, exist_ok=True)
    return path


def _cmd(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (res.stdout or res.stderr).strip()
    return out.splitlines()[0] if out else None


def _netem() -> bool | None:
    """Whether this kernel has sch_netem (None: could not probe, not root)."""
    return ovs.netem_available() if os.geteuid() == 0 else None


def _dist_version(name: str) -> str | None:
    try:
        return dist.version(name)
    except dist.PackageNotFoundError:
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
        "netem": _netem(),
        "options": options,
        **(extra or {}),
    }


def write_json(path: str, data: dict) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")


# -- trials ----------------------------------------------------------------------------
#
# A results folder holds its trials in raw/<name>/, each a run directory
# (controller.rundir).  A trial is complete once its trial.json exists, so
# an interrupted run resumes: incomplete trials are started again, complete
# ones are kept.  Tidy CSVs are always rebuilt from every trial's raw data.

CONDITIONS = ("before", "after")       # OVCT off (routing only) / switched on
PAIRS = [("tcl1", "vm1"), ("tcl1", "vm2"), ("tcl2", "vm1"), ("tcl2", "vm2")]
#: the network part, pinged in the same moments: the KVM hosts' own
#: addresses next to the VMs' old (pm2, 3 switches) and new (pm1, 1) place
HOST_PAIRS = [("tcl1", "pm1"), ("tcl1", "pm2"), ("tcl2", "pm1"), ("tcl2", "pm2")]
# pings: per pair and condition, all four pairs at once, every 50 ms (the
# report sent 20; single RTTs to TCG guests vary by tenths of a ms, so we
# send more)
# quick (CI): three trials.  Two switch hops cost 0.05-0.16 ms here (it
# varies between emulations) and the guests' reply time drifts by as much
# within a minute: 2 of 8 single paired trials showed no reduction (one in
# CI: 0.68 -> 0.72 ms), so one trial cannot show it for every pair.
# full: 90 s windows -- the 10-hour projection refitted on the first 90 s
# of the 180 s reference windows gives 64.8 % instead of 65.1 % and a
# break-even of 14.6 instead of 14.5 min (results/window-convergence);
# Fig. 31 sessions of 15 s: the migrations end within ~5 s of detection.
WINDOW_CONVERGENCE = "results/window-convergence"
QUICK = {"runs": 3, "window": 40.0, "pings": 200, "ping_interval": 0.05, "fig31_runs": 1,
         "fig31_duration": 15.0}
FULL = {"runs": 3, "window": 90.0, "pings": 200, "ping_interval": 0.05, "fig31_runs": 5,
        "fig31_duration": 15.0}


def add_args(p) -> None:
    """Options every figure script shares."""
    p.add_argument("--out", help="results folder (default results/run-<time>)")
    p.add_argument("--runs", type=int,
                   help="trials (each: OVCT off, then on; Fig. 31: per update mode)")
    p.add_argument("--window", type=float,
                   help="seconds of thin-client traffic measured per condition")
    p.add_argument("--pings", type=int,
                   help="pings per thin client, VM and condition (report: 20)")
    p.add_argument("--modes", nargs="+", choices=UPDATE_MODES, default=list(UPDATE_MODES),
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
    if getattr(args, "duration", None):
        base["fig31_duration"] = args.duration
    return base


def trial_dir(out: str, name: str) -> str:
    return os.path.join(out, "raw", name)


def trial_done(path: str) -> bool:
    return os.path.exists(RunDir(path).trial)


def ensure_trials(out: str, names: list[str], run_one, log=print) -> list[str]:
    """Run the trials of ``names`` that are not complete in ``out``: for
    each, ``run_one(name, path)`` runs it into ``raw/<name>`` and returns
    its metadata, written to ``trial.json``.  Returns every trial's dir."""
    missing = [n for n in names if not trial_done(trial_dir(out, n))]
    t0 = time.monotonic()
    for k, name in enumerate(missing, 1):
        path = trial_dir(out, name)
        if os.path.exists(path):
            shutil.rmtree(path)        # an interrupted trial: start it again
        log(f"[trial {k}/{len(missing)}] {name}  {progress(t0, k - 1, len(missing))}")
        meta = run_one(name, path)
        write_json(RunDir(path).trial, meta)
    if missing:
        log(f"[trials done] {progress(t0, len(missing), len(missing))}")
    return [trial_dir(out, n) for n in names]


def progress(t0: float, done: int, total: int) -> str:
    """'elapsed 3m10s, about 6m20s left' (from the mean of the trials so far)."""
    el = time.monotonic() - t0
    left = f", about {_dur(el / done * (total - done))} left" if 0 < done < total else ""
    return f"(elapsed {_dur(el)}{left})"


def _dur(s: float) -> str:
    m, s = divmod(int(round(s)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def figure_main(argv, doc: str, name: str, trials, tables, analyse, report,
                extra_args=None) -> int:
    """What every figure script shares: options (:func:`add_args`, plus
    ``extra_args(parser)``), the trials (the missing ones run, in the
    project's venv: ``trials(out, profile, args)`` returns every trial's
    dir), the tidy CSVs rebuilt from all of them (``tables``: {csv name:
    rows(trial dirs) -> DataFrame}), then ``analyse(out)``, whose result is
    printed with ``report`` and kept in ``<name>.json``.  With --plot-only,
    only the analysis runs, on the CSVs already there."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_args(p)
    if extra_args:
        extra_args(p)
    args = p.parse_args(argv)
    out = new_run_dir(args.out)
    if not args.plot_only:
        prof = profile(args)
        dirs = trials(out, prof, args)
        for csv_name, rows in tables.items():
            rows(dirs).to_csv(os.path.join(out, csv_name), index=False)
        write_json(os.path.join(out, f"{name}-metadata.json"),
                   metadata(vars(args), {"profile": prof, "trials": [os.path.basename(d)
                                                                     for d in dirs]}))
    res = analyse(out)
    print(report(res))
    write_json(os.path.join(out, f"{name}.json"), res)
    return 0


# -- the paper evaluation's trials (shared by fig27 and fig29) ----------------

def paper_eval_scenario(window: float):
    """The report's evaluation set-up: both thin clients use their VM for two
    windows; OVCT is off (routing only) in the first and switched on at the
    start of the second."""
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
    """Write a matplotlib figure as PNG and SVG and close it -- byte for
    byte the same files from the same data (no date, fixed SVG ids), so
    ``--plot-only`` on a committed folder changes nothing."""
    paths = []
    with plt.rc_context({"svg.hashsalt": "ovct"}):
        for ext in ("png", "svg"):
            paths.append(os.path.join(out, f"{name}.{ext}"))
            fig.savefig(paths[-1], dpi=120,
                        metadata={"Date": None} if ext == "svg" else None)
    plt.close(fig)
    return paths


def ping_matrix(tb, count: int, interval: float) -> dict:
    """``count`` pings from each thin client to each VM and to each KVM
    host's own address, all pairs at once (so every pair sees the same
    moments of the run)."""
    res = tb.ping_pairs(PAIRS + HOST_PAIRS, count=count, interval=interval)
    return {f"{src}->{dst}": {"rtts_ms": r.rtts_ms, "sent": r.transmitted, "raw": r.raw,
                              "target": "host" if (src, dst) in HOST_PAIRS else "vm"}
            for (src, dst), r in res.items()}


def ensure_paper_trials(out: str, prof: dict, mode: str, log=print) -> list[str]:
    """Run the paired trials not yet in ``out``; return all trial dirs.  One
    trial is one emulation with both conditions, so they share the
    machine's state: a window with OVCT off ("before"), then OVCT switched
    on for a window ("after", migrations included).  The RTT matrix is
    measured at the end of "before" and once "after" is steady (the
    migrations over), so the two are close in time; relayed traffic is
    recorded throughout."""
    scn = paper_eval_scenario(prof["window"])

    def run_one(name: str, path: str) -> dict:
        n = int(name.split("-")[1])
        log(f"  {name}: {prof['window']:g} s with OVCT off, then {prof['window']:g} s "
            f"with OVCT on ({mode})")
        summary = run_scenario(
            scn, path, mode=mode,
            on_steady=lambda tb, _phase: ping_matrix(tb, prof["pings"], prof["ping_interval"]),
            steady_after_s=5.0, measure_s=prof["pings"] * prof["ping_interval"],
            log=lambda m: log("    " + m))
        lacking = [c for c in CONDITIONS if c not in summary["steady"]]
        if lacking:
            raise RuntimeError(f"{name}: {', '.join(lacking)} never became steady")
        return {"condition": "paired", "trial": n, "mode": mode, "window_s": prof["window"],
                "pings": prof["pings"], "ping_interval_s": prof["ping_interval"],
                "accel": summary["accel"]}
    return ensure_trials(out, [f"trial-{n}" for n in range(1, prof["runs"] + 1)], run_one, log)


def paper_trials(out: str, prof: dict, args) -> list[str]:
    """fig27's and fig29's ``trials``: the paired trials, in the first mode."""
    return ensure_paper_trials(out, prof, mode=args.modes[0])


# -- Fig. 31's trials --------------------------------------------------------------

def phase_scenario(duration: float):
    """The paper scenario (tcl1 uses vm1 on pm2; a 10 ms probe from tcl2),
    with sessions of ``duration`` seconds."""
    base = scenario.load(os.path.join(ROOT, "experiments", "scenarios", "paper.yaml"))
    data = base.model_dump(mode="json")
    data["sessions"] = [{**s, "duration_s": duration} for s in data["sessions"]]
    return scenario.parse(data, "phase trial")


def phase_trials(out: str, prof: dict, args, log=print) -> list[str]:
    """Fig. 31's ``trials``: ``<mode>-<n>``, ``fig31_runs`` per mode."""
    scn = phase_scenario(prof["fig31_duration"])

    def run_one(name: str, path: str) -> dict:
        mode = name.split("-")[0]
        summary = run_scenario(scn, path, mode=mode, log=lambda m: None)
        return {"condition": "phases", "trial": name, "mode": mode,
                "duration_s": prof["fig31_duration"], "accel": summary["accel"]}
    names = [f"{m}-{i}" for m in args.modes for i in range(1, prof["fig31_runs"] + 1)]
    return ensure_trials(out, names, run_one, log)
