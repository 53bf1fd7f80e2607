"""Probes: pings between emulated hosts, run in the source's namespace and
parsed by :mod:`testbed.ping` (the one place that knows ping's output).

A background ping writes straight into a file in the run directory (never
into a pipe nobody reads: a pipe fills at 64 KiB and blocks ping after ~800
replies), so it covers the whole window it is meant to; every ping process
a helper starts is reaped on every path, also when it times out.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
from typing import Callable

from controller.rundir import ROOT, RunDir
from testbed import ping as pingmod
from testbed.cluster import RemoteProcess
from testbed.topology import Topology
from testbed.wait import wait_until


#: how long ping_all waits for a reply (ping -W)
FIRST_REPLY_WAIT_S = 5.0


def reap(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Make sure ``proc`` has exited (SIGKILL if it does not) and is reaped."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


def project_module(python: str, module: str, *args: str) -> list[str]:
    """The command line that runs one of the project's modules in a node.
    The search path is on the command line, not in a Popen environment: a
    node on another server (cluster mode) runs it over ssh, which does not
    carry the environment (the project is at the same path there)."""
    return ["env", f"PYTHONPATH={ROOT}", python, "-m", module, *args]


class Probes:
    """``host(name)`` gives the Mininet node to run in; background pings'
    output goes to ``run``'s ``pings/`` directory."""

    def __init__(self, topology: Topology, host: Callable[[str], object], run: RunDir):
        self.topology = topology
        self.host = host
        self.run = run
        self._n = itertools.count(1)

    def ip(self, name: str) -> str:
        """Address of a host or VM by name (an address is returned as is)."""
        for getter in (self.topology.host, self.topology.vm):
            try:
                return getter(name).ip
            except KeyError:
                pass
        return name

    def ping(self, src: str, dst: str, count: int = 10, interval: float = 0.2,
             wait: float = 1.0) -> pingmod.PingResult:
        return self.ping_pairs([(src, dst)], count, interval, wait)[(src, dst)]

    def ping_pairs(self, pairs, count: int = 10, interval: float = 0.2, wait: float = 1.0,
                   timeout: float | None = None, batch: int | None = None
                   ) -> dict[tuple[str, str], pingmod.PingResult]:
        """Ping every (src, dst) pair at the same time (or ``batch`` pairs at
        a time, one batch after the other); returns when all are done.  Each
        may take ``timeout`` s (default ``count * interval + wait + 30``); a
        ping still running then is killed, and the call raises
        TimeoutExpired."""
        pairs = list(pairs)
        if batch is not None and len(pairs) > batch:
            res = {}
            for k in range(0, len(pairs), batch):
                res.update(self.ping_pairs(pairs[k:k + batch], count, interval, wait, timeout))
            return res
        timeout = count * interval + wait + 30 if timeout is None else timeout
        procs = []
        try:
            for src, dst in pairs:
                procs.append(((src, dst), self.host(src).popen(
                    pingmod.command(self.ip(dst), count, interval, wait), text=True,
                    stdin=subprocess.DEVNULL)))
            res = {}
            for (src, dst), proc in procs:
                out, err = proc.communicate(timeout=timeout)
                res[(src, dst)] = pingmod.parse(out + err, src=src, dst=dst)
            return res
        finally:
            for _pair, proc in procs:
                reap(proc)

    def _start(self, name: str, cmd: list[str], **kw):
        """A process left running in node ``name``, to be stopped by its PID:
        on another server (cluster mode) by its PID there."""
        node = self.host(name)
        if getattr(node, "isRemote", False):
            return RemoteProcess(node, cmd, **kw)
        return node.popen(cmd, **kw)

    def start_ping(self, src: str, dst: str, interval: float = 0.01,
                   log: str | None = None) -> "BackgroundPing":
        """Ping continuously from ``src`` until .stop() (which parses).  The
        raw output goes to ``log`` (default ``pings/<src>-<dst>-bg<n>.txt``)."""
        path = log or os.path.join(self.run.pings, f"{src}-{dst}-bg{next(self._n)}.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            proc = self._start(src, pingmod.command(self.ip(dst), None, interval),
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        return BackgroundPing(proc, src, dst, path)

    def start_session(self, client: str, vm: str, python: str, log: str, port: int = 5900,
                      duration_s: float = 60.0, input_rate_hz: float = 2.0):
        """A real thin client (:mod:`testbed.thinclient`) in ``client``'s
        namespace, viewing ``vm``'s desktop for ``duration_s`` and logging a
        line per screen update to ``log``; returns its process."""
        cmd = project_module(python, "testbed.thinclient", self.ip(vm), "--port", str(port),
                             "--duration", str(duration_s), "--input-rate",
                             str(input_rate_hz), "--log", log)
        return self._start(client, cmd, stdin=subprocess.DEVNULL)

    def iperf(self, client: str, server: str, seconds: float = 3.0, port: int = 5201) -> dict:
        """TCP throughput from ``client`` to ``server`` with iperf3 (server
        in ``server``'s namespace for one test); returns iperf3's JSON
        summary with ``mbit_s`` (received) added."""
        srv = self.host(server).popen(["iperf3", "-s", "-1", "-p", str(port)],
                                      stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: f":{port}" in self.host(server).pexec(
                ["ss", "-Hltn", f"sport = :{port}"])[0], 15, f"iperf3 to listen on {server}")
            out, err, rc = self.host(client).pexec(
                ["iperf3", "-c", self.ip(server), "-p", str(port), "-t", f"{seconds:g}", "-J"])
            if rc != 0:
                raise RuntimeError(f"iperf3 {client} -> {server} failed ({rc}): {err or out}")
            res = json.loads(out)
            res["mbit_s"] = res["end"]["sum_received"]["bits_per_second"] / 1e6
            return res
        finally:
            reap(srv, timeout=10)

    def ping_all(self, count: int = 1, sample: int | None = None, seed: int = 0,
                 batch: int = 8, wait: float = FIRST_REPLY_WAIT_S
                 ) -> dict[tuple[str, str], pingmod.PingResult]:
        """Ping every ordered pair of hosts (or a random ``sample`` of them,
        drawn with ``seed``), ``batch`` pairs at a time side by side; each
        ping's reply may take ``wait`` s (a first packet between two hosts
        waits for two ARP answers from the controller and every switch's
        slow path: under load that took over 1 s here, which is slow, not
        unreachable)."""
        pairs = all_pairs([h.name for h in self.topology.hosts], sample, seed)
        return self.ping_pairs(pairs, count=count, interval=0.05, wait=wait, batch=batch)


def sample_of(items: list, n: int | None, seed: int = 0) -> list:
    """``n`` of ``items`` drawn at random (reproducibly for a ``seed``), in
    their order; all of them when ``n`` is None or not smaller."""
    if n is None or n >= len(items):
        return list(items)
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), n))]


def all_pairs(names: list[str], sample: int | None = None,
              seed: int = 0) -> list[tuple[str, str]]:
    """Every ordered pair of distinct ``names``, or ``sample`` of them drawn
    at random (reproducibly for a ``seed``), in a stable order."""
    return sample_of([(a, b) for a in names for b in names if a != b], sample, seed)


class BackgroundPing:
    def __init__(self, proc: subprocess.Popen, src: str, dst: str, path: str):
        self.proc, self.src, self.dst, self.path = proc, src, dst, path

    def stop(self, timeout: float = 15.0) -> pingmod.PingResult:
        """SIGINT (ping then prints its summary), wait, parse its file.  A
        ping that does not exit in ``timeout`` is killed (its summary is then
        missing: parsing counts what it printed)."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            reap(self.proc)
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            return pingmod.parse(fh.read(), self.src, self.dst)
