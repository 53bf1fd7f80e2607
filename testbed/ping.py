"""Ping: the one place that builds a ping command and parses its output
(with pingparsing)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import pingparsing

_PARSER = pingparsing.PingParsing()


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    transmitted: int
    received: int
    rtts_ms: list[float] = field(default_factory=list)   # per reply, in order
    seqs: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)     # reply arrival, epoch s (-D)
    raw: str = ""

    @property
    def loss(self) -> int:
        return self.transmitted - self.received

    @property
    def rtt_min_ms(self) -> float | None:
        return min(self.rtts_ms) if self.rtts_ms else None

    @property
    def rtt_median_ms(self) -> float | None:
        return statistics.median(self.rtts_ms) if self.rtts_ms else None

    @property
    def max_gap_ms(self) -> float | None:
        """Longest silence between two consecutive replies: with pings every
        few ms, the network-observed interruption (e.g. migration downtime)."""
        if len(self.times) < 2:
            return None
        return max(b - a for a, b in zip(self.times, self.times[1:])) * 1000


def command(dst: str, count: int | None, interval: float = 0.2,
            wait: float = 1.0) -> list[str]:
    """ping with timestamps (-D) and numeric output; ``interval`` below 0.2 s
    needs root, which the testbed has.  ``count=None`` pings until SIGINT."""
    if count is not None and count < 1:
        raise ValueError("count must be >= 1")
    cnt = ["-c", str(count)] if count is not None else []
    return ["ping", "-D", "-n", *cnt, "-i", f"{interval:g}", "-W", f"{wait:g}", dst]


def parse(text: str, src: str = "", dst: str = "") -> PingResult:
    stats = _PARSER.parse(text)
    replies = [r for r in stats.icmp_replies if not r.get("duplicate")]
    return PingResult(
        src=src, dst=dst or (stats.destination or ""),
        transmitted=stats.packet_transmit or 0,
        received=stats.packet_receive or 0,
        rtts_ms=[float(r["time"]) for r in replies if r.get("time") is not None],
        seqs=[int(r["icmp_seq"]) for r in replies if r.get("icmp_seq") is not None],
        times=[r["timestamp"].timestamp() for r in replies if r.get("timestamp")],
        raw=text)
