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


def ensure_venv(script: str) -> None:
    """``sudo python experiments/x.py`` with any Python: run the set-up step
    and re-execute the script with the project's venv interpreter."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
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
