"""How every experiment script starts (standard library only: it runs
under whatever Python the user typed).

``sudo python experiments/<script>.py`` runs the idempotent set-up step and
re-executes the script with the project's venv interpreter; without root,
an existing venv is used as it is (``--plot-only`` and the analysis need no
root; an emulation then stops at its preflight check).  Each script calls
:func:`ensure_venv` before it imports anything from outside the standard
library, so all its other imports sit at the top of the module.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def in_venv() -> bool:
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv(script: str) -> None:
    """Continue in the project's venv (set up first when root).  In the
    venv, SIGTERM and SIGHUP (and SIGINT, which a shell ignores in
    background jobs) interrupt the run like Ctrl-C, so the testbed stops
    what it started."""
    if in_venv():
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, _interrupt)
        # progress lines reach a pipe or `tee` as they are printed
        sys.stdout.reconfigure(line_buffering=True)
        return
    py = os.path.join(VENV, "bin", "python")
    if os.geteuid() == 0:
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "setup.sh")], check=True)
    elif not os.path.exists(py):
        sys.exit(f"{os.path.basename(script)}: the project is not set up yet; run once: "
                 f"sudo python {os.path.relpath(script)}  (or: sudo ./run.sh)")
    os.execv(py, [py, os.path.abspath(script), *sys.argv[1:]])
