"""Our controller as a process of its own, and a client for what it writes.

:class:`ControllerProcess` starts ``python -m controller`` listening on
127.0.0.1 only (in a session of its own, so a Ctrl-C reaches us, not it),
waits until it listens, signals it (OVCT on/off) and stops it by PID.
:class:`ControllerClient` reads its state file, statistics and events from
the run directory -- the only way the testbed learns what the controller
knows.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess

from controller import events as E
from controller.rundir import ROOT, RunDir
from testbed.wait import wait_until


class ControllerError(RuntimeError):
    pass


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ControllerProcess:
    def __init__(self, run: RunDir, python: str, stats_interval: float):
        self.run = run
        self.python = python
        self.stats_interval = stats_interval
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self, config_path: str, timeout: float = 30.0, port: int | None = None) -> None:
        """Start the controller (on ``port``, else a free one) and wait
        until it listens."""
        self.port = port or free_tcp_port()
        log = open(self.run.controller_out, "ab")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        self.proc = subprocess.Popen(
            [self.python, "-m", "controller", "--host", "127.0.0.1",
             "--port", str(self.port), "--run-dir", self.run.path,
             "--stats-interval", str(self.stats_interval),
             "--config", config_path, "--log-file", self.run.controller_log],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)   # Ctrl-C goes to us; we stop it by PID
        log.close()

        def listening() -> bool:
            self.check_alive()
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_until(listening, timeout, "the controller to listen")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ControllerError(f"controller exited with code {self.proc.returncode}; "
                                  f"see {self.run.controller_out}")

    def send_signal(self, sig: int) -> None:
        if not self.running():
            raise ControllerError("the controller is not running")
        self.proc.send_signal(sig)

    def crash(self) -> None:
        """SIGKILL, as a crash would: no last state, no goodbye to the switches."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class ControllerClient:
    """What the running controller knows, read from its run directory."""

    def __init__(self, run: RunDir, process: ControllerProcess | None = None):
        self.run = run
        self.process = process
        self.events = E.Tail(run.events)

    def state(self) -> dict:
        return self.run.read_json(self.run.state, {}) or {}

    def totals(self) -> dict[tuple[int, str, str], tuple[int, int]]:
        """Cumulative (packets, bytes) per (dpid, class, destination)."""
        return {(d, c, t): (pk, by) for d, c, t, pk, by in self.state().get("totals", [])}

    def polls(self) -> dict[int, int]:
        return {int(k): v for k, v in self.state().get("polls", {}).items()}

    def wait_fresh_stats(self, dpids, timeout: float) -> dict:
        """Wait until every switch in ``dpids`` has answered a statistics
        poll that was sent after this call (two completed polls later), and
        return the totals then."""
        start = self.polls()
        wait_until(lambda: all(self.polls().get(d, 0) >= start.get(d, 0) + 2 for d in dpids),
                   timeout, "fresh flow statistics from every switch")
        return self.totals()

    def set_ovct(self, on: bool, timeout: float = 10.0) -> dict:
        """Switch OVCT on or off (SIGUSR1/SIGUSR2 to the controller's PID)
        and wait until it has logged the switch; returns that event."""
        if self.process is None:
            raise ControllerError("no controller process to signal")
        kind = E.OVCT_ENABLED if on else E.OVCT_DISABLED
        seen = self.events.count(kind)
        self.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        wait_until(lambda: self.events.count(kind) > seen, timeout,
                   f"the controller to log {kind}", interval=0.05)
        return E.of_type(self.events.records, kind)[-1]
