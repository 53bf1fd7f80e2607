"""The controller's policy and inventory file (YAML), validated with pydantic.

    ovct:                          # the OVCT policy
      enabled: true
      vnc_ports: [[5900, 5999]]    # inclusive TCP port ranges
      update_mode: fast            # fast (make-before-break) | paper
      hold_time_s: 300             # a VM that just moved stays put this long
      memory_reserve_mib: 64       # free memory needed beyond the VM's own
      min_idle_cpus: 0.25          # idle vCPU-equivalents needed on the target
      migration_timeout_s: 600
      session_idle_s: 60           # a VNC session silent this long has ended
      max_concurrent_migrations: 1 # more wait their turn
    hypervisors:                   # the KVM hosts the controller may use
      - name: pm1
        uri: qemu+unix:///system?socket=/run/ovct/.../libvirt-sock
        address: 10.0.0.11
        memory_mib: 2048
        cpus: 2
        attach: [2, 4]             # switch dpid and port it hangs off

Unknown keys, wrong types, out-of-range values, duplicate host names or
addresses stop the controller with a message that names the field, before it
listens for switches.
"""
from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.classes import MIGRATION, MIGRATION_PORTS, VNC, VNC_PORTS, TrafficClass
from controller.hypervisor import HostSpec
from controller.modes import FAST, UPDATE_MODES


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Policy(_Strict):
    enabled: bool = True
    vnc_ports: tuple[tuple[int, int], ...] = VNC_PORTS
    update_mode: Literal[UPDATE_MODES] = FAST
    hold_time_s: float = Field(300.0, ge=0)
    memory_reserve_mib: int = Field(64, ge=0)
    min_idle_cpus: float = Field(0.25, ge=0)
    migration_timeout_s: float = Field(600.0, gt=0)
    session_idle_s: int = Field(60, ge=1, le=65535)
    #: migrations at once; more wait their turn (two concurrent TCG
    #: migrations on 2 cores once corrupted a guest: see README)
    max_concurrent_migrations: int = Field(1, ge=1)
    #: cap on a migration stream (libvirt's bandwidth parameter), Mbit/s;
    #: 0: unlimited.  Trades migration time against collateral loss.
    migration_bandwidth_mbit: float = Field(0.0, ge=0, le=100_000)

    @field_validator("vnc_ports", mode="before")
    @classmethod
    def _ranges(cls, v):
        if isinstance(v, list):
            v = tuple(tuple(r) if isinstance(r, list) else r for r in v)
        return v

    @field_validator("vnc_ports")
    @classmethod
    def _check_ranges(cls, v):
        if not v:
            raise ValueError("at least one port range")
        for lo, hi in v:
            if not 1 <= lo <= hi <= 65535:
                raise ValueError(f"bad port range [{lo}, {hi}]")
        return v

    def migration_bandwidth_mibps(self) -> int:
        """The cap in libvirt's unit, MiB/s (0: unlimited; at least 1)."""
        if not self.migration_bandwidth_mbit:
            return 0
        return max(1, round(self.migration_bandwidth_mbit * 1e6 / 8 / 2**20))

    @field_validator("hold_time_s", "min_idle_cpus", "migration_timeout_s",
                     "migration_bandwidth_mbit", mode="before")
    @classmethod
    def _int_ok_for_float(cls, v):
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class HypervisorEntry(_Strict):
    name: str = Field(min_length=1)
    uri: str = Field(min_length=1)
    address: str = Field(min_length=7)
    memory_mib: int = Field(2048, ge=64)
    cpus: int = Field(2, ge=1)
    #: [dpid, port] where the host attaches: only there may its address and
    #: its VMs be learnt (unset: where its address is first seen)
    attach: tuple[int, int] | None = None

    @field_validator("attach", mode="before")
    @classmethod
    def _pair(cls, v):
        return tuple(v) if isinstance(v, list) else v

    def spec(self) -> HostSpec:
        return HostSpec(self.name, self.uri, self.address, self.memory_mib, self.cpus)

    @classmethod
    def of(cls, spec: HostSpec, attach: tuple[int, int] | None = None) -> "HypervisorEntry":
        return cls(name=spec.name, uri=spec.uri, address=spec.address,
                   memory_mib=spec.memory_mib, cpus=spec.cpus, attach=attach)


class ControllerConfig(_Strict):
    ovct: Policy = Policy()
    hypervisors: tuple[HypervisorEntry, ...] = ()

    @field_validator("hypervisors", mode="before")
    @classmethod
    def _tuple(cls, v):
        return tuple(v) if isinstance(v, list) else v

    @model_validator(mode="after")
    def _unique(self):
        for attr in ("name", "address"):
            seen = set()
            for i, h in enumerate(self.hypervisors):
                val = getattr(h, attr)
                if val in seen:
                    raise ValueError(f"hypervisors.{i}.{attr}: duplicate {attr} {val!r}")
                seen.add(val)
        return self

    def classes(self) -> tuple[TrafficClass, ...]:
        return (TrafficClass(VNC, self.ovct.vnc_ports), TrafficClass(MIGRATION, MIGRATION_PORTS))


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
            if where == "(top level)" and ":" in msg:     # the message names its field
                lines.append(f"  {msg}")
                continue
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse(data, source: str = "config", model=ControllerConfig):
    """Validate a mapping (already parsed YAML) into ``model``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from None


def load_yaml(path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load(path: str) -> ControllerConfig:
    return parse(load_yaml(path), path)


def dump(cfg: ControllerConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
