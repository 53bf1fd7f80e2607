"""Scenario files: the testbed's user-facing experiment format (YAML).

    name: paper
    topology: {kind: paper}            # or {kind: multisite, sites: 4, clients: 2,
                                       #     hosts: 1, core: 1, vms: 1}
    vm_memory_mib: 256
    host_memory_mib: 2048              # declared capacity of each KVM host
    host_cpus: 2
    accel: auto                        # auto | kvm | tcg
    stats_interval_s: 2
    link_bw_mbit: null
    vms:                               # optional: where VMs start (overrides)
      - {name: vm1, host: pm2}
    sessions:                          # thin-client VNC sessions
      - {client: tcl1, vm: vm1, port: 5900, start_s: 5, duration_s: 60,
         input_rate_hz: 2}
    probes:                            # optional pings, e.g. to see the network gap
      - {src: tcl2, dst: vm1, interval_ms: 10}
    ovct: {update_mode: fast, hold_time_s: 300}   # see controller/config.py
    ovct_on_at_s: null                 # or a time: OVCT starts off (routing
                                       # only) and is switched on then, so one
                                       # run has a "before" and an "after"

Validated completely before anything starts: an unknown key, a wrong type,
a value out of range (every duration, rate and size has an upper bound;
infinities are refused), a client or VM or host that the topology does not
have, a duplicate, a parameter the topology kind does not take, a probe
from a VM (a VM runs no probes), a session port outside ``ovct.vnc_ports``
(OVCT would never see it), a name that is not a plain name, a link
bandwidth above what Mininet's link model honours (1000 Mbit/s) stops with
a message naming the field.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, field_validator, model_serializer,
                      model_validator)

from controller import config as cfgmod
from testbed import accel as A
from testbed import topology as T


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


WEEK_S = 7 * 86_400.0
#: the largest link bandwidth Mininet's TCLink (HTB) applies; above it
#: Mininet ignores the limit with a warning
MAX_LINK_MBIT = 1000.0
#: a name: letters, digits, '.', '_', '-' (it becomes part of paths)
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class TopologySpec(_Strict):
    kind: Literal[tuple(T.KINDS)] = "paper"
    sites: int = Field(4, ge=1, le=250)
    clients: int = Field(2, ge=0, le=250)
    hosts: int = Field(1, ge=0, le=250)
    core: int = Field(1, ge=1, le=99)
    vms: int = Field(0, ge=0, le=250)

    @model_validator(mode="before")
    @classmethod
    def _only_what_the_kind_takes(cls, data):
        if isinstance(data, dict) and isinstance(data.get("kind", "paper"), str):
            kind = T.KINDS.get(data.get("kind", "paper"))
            if kind is not None:
                for key in data:
                    if key != "kind" and key in cls.model_fields and key not in kind.params:
                        raise ValueError(f"topology.{key}: the {kind.name} topology takes no "
                                         f"{key!r} (it takes: {', '.join(kind.params) or 'nothing'})")
        return data

    @model_serializer(mode="wrap")
    def _dump_what_the_kind_takes(self, handler):
        """A dump holds only the parameters its kind takes, so it loads
        again (a paper topology has no sites)."""
        data = handler(self)
        return {k: v for k, v in data.items() if k == "kind" or k in T.KINDS[self.kind].params}


class VmPlacement(_Strict):
    name: str = Field(max_length=64)
    host: str = Field(max_length=64)


class SessionSpec(_Strict):
    client: str = Field(max_length=64)
    vm: str = Field(max_length=64)
    port: int = Field(5900, ge=1, le=65535)
    start_s: float = Field(0.0, ge=0, le=WEEK_S)
    duration_s: float = Field(60.0, gt=0, le=WEEK_S)
    input_rate_hz: float = Field(2.0, ge=0, le=1000)

    _floats = field_validator("start_s", "duration_s", "input_rate_hz", mode="before")(
        lambda cls, v: cfgmod.as_float(v))


class ProbeSpec(_Strict):
    src: str = Field(max_length=64)
    dst: str = Field(max_length=64)
    interval_ms: float = Field(10.0, ge=1, le=60_000)

    _floats = field_validator("interval_ms", mode="before")(lambda cls, v: cfgmod.as_float(v))


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    description: str = Field("", max_length=10_000)
    topology: TopologySpec = TopologySpec()
    vm_memory_mib: int = Field(256, ge=32, le=65536)
    host_memory_mib: int = Field(2048, ge=64, le=1 << 24)
    host_cpus: int = Field(2, ge=1, le=1024)
    accel: Literal[A.CHOICES] = A.AUTO
    stats_interval_s: float = Field(2.0, ge=0.1, le=3600)
    link_bw_mbit: Optional[float] = Field(None, gt=0, le=MAX_LINK_MBIT)
    vms: tuple[VmPlacement, ...] = Field((), max_length=10_000)
    sessions: tuple[SessionSpec, ...] = Field((), max_length=100_000)
    probes: tuple[ProbeSpec, ...] = Field((), max_length=1_000)
    ovct: cfgmod.Policy = cfgmod.Policy()
    ovct_on_at_s: Optional[float] = Field(None, ge=0, le=WEEK_S)

    _floats = field_validator("stats_interval_s", "link_bw_mbit", "ovct_on_at_s",
                              mode="before")(lambda cls, v: cfgmod.as_float(v))

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data):
        """YAML lists are tuples here (strict mode wants tuples)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("vms", "sessions", "probes"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return data

    @model_validator(mode="after")
    def _against_topology(self):
        topo = self.build_topology()   # raises on bad parameters
        hosts = {h.name: h for h in topo.hosts}
        vms = {v.name for v in topo.vms}
        seen = set()
        for i, v in enumerate(self.vms):
            if v.name not in vms:
                raise ValueError(f"vms.{i}.name: no VM {v.name!r} in the topology")
            if v.name in seen:
                raise ValueError(f"vms.{i}.name: {v.name!r} listed twice")
            seen.add(v.name)
            if hosts.get(v.host) is None or hosts[v.host].role != T.KVM_HOST:
                raise ValueError(f"vms.{i}.host: {v.host!r} is not a KVM host")
        # before the sessions one by one: else each names its VM as unknown
        if self.sessions and not topo.vms:
            raise ValueError("sessions: the topology has no VMs")
        for i, s in enumerate(self.sessions):
            if hosts.get(s.client) is None or hosts[s.client].role != T.CLIENT:
                raise ValueError(f"sessions.{i}.client: {s.client!r} is not a thin client")
            if s.vm not in vms:
                raise ValueError(f"sessions.{i}.vm: no VM {s.vm!r} in the topology")
        names = set(hosts) | vms
        for i, p in enumerate(self.probes):
            for f in ("src", "dst"):
                if getattr(p, f) not in names:
                    raise ValueError(f"probes.{i}.{f}: no host or VM {getattr(p, f)!r}")
            if p.src in vms:
                raise ValueError(f"probes.{i}.src: {p.src!r} is a VM; probes run on hosts "
                                 "(thin clients, KVM hosts)")
        ranges = self.ovct.vnc_ports
        for i, s in enumerate(self.sessions):
            if not any(lo <= s.port <= hi for lo, hi in ranges):
                raise ValueError(f"sessions.{i}.port: {s.port} is outside ovct.vnc_ports "
                                 f"{[list(r) for r in ranges]} (OVCT would never see it)")
        if self.ovct_on_at_s is not None:
            if not self.ovct.enabled:
                raise ValueError("ovct_on_at_s: set, but ovct.enabled is false")
            if self.ovct_on_at_s >= self.end_s():
                raise ValueError(f"ovct_on_at_s: {self.ovct_on_at_s:g} s is not before the "
                                 f"last session ends ({self.end_s():g} s)")
        return self

    def build_topology(self) -> T.Topology:
        t = self.topology
        try:
            topo = T.build(t.kind, vm_memory_mib=self.vm_memory_mib,
                           **{p: getattr(t, p) for p in T.kind(t.kind).params})
        except T.TopologyError as exc:
            raise ValueError(f"topology: {exc}") from None
        moved = {v.name: v.host for v in self.vms}
        topo.vms = [replace(v, host=moved.get(v.name, v.host)) for v in topo.vms]
        return topo

    def end_s(self) -> float:
        return max((s.start_s + s.duration_s for s in self.sessions), default=0.0)


def parse(data, source: str = "scenario") -> Scenario:
    return cfgmod.parse(data, source, Scenario)


def load(path: str) -> Scenario:
    return parse(cfgmod.load_yaml(path), path)
