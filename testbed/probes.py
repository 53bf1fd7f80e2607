"""Probes: pings between emulated hosts, run in the source's namespace and
parsed by :mod:`testbed.ping` (the one place that knows ping's output)."""
from __future__ import annotations

import signal
import subprocess
from typing import Callable

from testbed import ping as pingmod
from testbed.topology import Topology


class Probes:
    """``host(name)`` gives the Mininet node to run in."""

    def __init__(self, topology: Topology, host: Callable[[str], object]):
        self.topology = topology
        self.host = host

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

    def ping_pairs(self, pairs, count: int = 10, interval: float = 0.2,
                   wait: float = 1.0) -> dict[tuple[str, str], pingmod.PingResult]:
        """Ping every (src, dst) pair at the same time; returns when all are done."""
        procs = [((src, dst), self.host(src).popen(
            pingmod.command(self.ip(dst), count, interval, wait), text=True))
            for src, dst in pairs]
        res = {}
        for (src, dst), proc in procs:
            out, err = proc.communicate(timeout=count * interval + wait + 30)
            res[(src, dst)] = pingmod.parse(out + err, src=src, dst=dst)
        return res

    def start_ping(self, src: str, dst: str, interval: float = 0.01) -> "BackgroundPing":
        """Ping continuously from ``src`` until .stop() (which parses)."""
        return BackgroundPing(self.host(src).popen(
            pingmod.command(self.ip(dst), None, interval), text=True), src, dst)

    def ping_all(self, count: int = 1) -> dict[tuple[str, str], pingmod.PingResult]:
        res = {}
        for a in self.topology.hosts:
            for b in self.topology.hosts:
                if a is not b:
                    res[(a.name, b.name)] = self.ping(a.name, b.name, count=count,
                                                      interval=0.05)
        return res


class BackgroundPing:
    def __init__(self, proc: subprocess.Popen, src: str, dst: str):
        self.proc, self.src, self.dst = proc, src, dst

    def stop(self) -> pingmod.PingResult:
        """SIGINT (ping then prints its summary), wait, parse."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=15)
        return pingmod.parse(out + err, self.src, self.dst)
