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
      decision: always             # always | never | breakeven | predicted | adaptive
                                   # (docs/POLICIES.md)
    hypervisors:                   # the KVM hosts the controller may use
      - name: pm1
        uri: qemu+unix:///system?socket=/run/ovct/.../libvirt-sock
        address: 10.0.0.11
        memory_mib: 2048
        cpus: 2
        attach: [2, 4]             # switch dpid and port it hangs off

Unknown keys, wrong types, out-of-range values (every duration, rate and
size has an upper bound too; infinities and NaN are refused), a libvirt URI
with a transport the testbed does not use, an address that is not IPv4,
duplicate host names, addresses or URIs, duplicate YAML keys and files that
are not UTF-8 stop the controller with a message that names the field,
before it listens for switches.
"""
from __future__ import annotations

import ipaddress
import math
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller import cost as K
from controller import policies as P
from controller.classes import MIGRATION, MIGRATION_PORTS, VNC, VNC_PORTS, TrafficClass
from controller.hypervisor import HostSpec
from controller.modes import FAST, UPDATE_MODES


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


#: the libvirt transports the testbed uses: the hosts' UNIX sockets (from
#: the controller's namespace) and TCP between hosts; others (ext runs a
#: program, ssh logs in somewhere) are refused
URI_SCHEMES = ("qemu+unix://", "qemu+tcp://", "qemu://")

DAY_S = 86_400.0


def as_float(v):
    """YAML gives 5 for 5.0: ints become floats (strict floats refuse
    them), an int too large for a float is refused here."""
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            raise ValueError("number too large") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


class Policy(_Strict):
    enabled: bool = True
    vnc_ports: tuple[tuple[int, int], ...] = VNC_PORTS
    update_mode: Literal[UPDATE_MODES] = FAST
    hold_time_s: float = Field(300.0, ge=0, le=30 * DAY_S)
    memory_reserve_mib: int = Field(64, ge=0, le=1 << 20)
    min_idle_cpus: float = Field(0.25, ge=0, le=1024)
    migration_timeout_s: float = Field(600.0, gt=0, le=DAY_S)
    session_idle_s: int = Field(60, ge=1, le=65535)
    #: migrations at once; more wait their turn (two concurrent TCG
    #: migrations on 2 cores once corrupted a guest: see README)
    max_concurrent_migrations: int = Field(1, ge=1, le=64)
    #: cap on a migration stream (libvirt's bandwidth parameter), Mbit/s;
    #: 0: unlimited.  Trades migration time against collateral loss.
    migration_bandwidth_mbit: float = Field(0.0, ge=0, le=100_000)
    #: when a move is worth it (controller/policies.py, docs/POLICIES.md)
    decision: Literal[P.DECISIONS] = "always"
    #: what a break-even is counted in: relayed packets (the report's) or bytes
    cost_unit: Literal[K.UNITS] = K.PACKETS
    #: anti-oscillation, every policy: a move must cut the session's
    #: predicted relay by at least this share of what it relays now
    hysteresis_saving_frac: float = Field(0.0, ge=0, lt=1)
    #: breakeven/predicted/adaptive: the session must last (or be expected
    #: to last) the break-even times 1 + this
    hysteresis_margin: float = Field(0.0, ge=0, le=100)
    #: predicted/adaptive: past sessions needed before the history counts
    history_min_sessions: int = Field(3, ge=1, le=10_000)
    #: the cost model's priors, until it has measured (defaults: the 180 s
    #: reference run, controller.cost.REFERENCE): a session's relay per
    #: switch, bytes a migration sends per byte of RAM, bytes per relayed
    #: migration packet
    prior_session_pps: float = Field(K.REFERENCE["session_pps"], gt=0, le=1e7)
    prior_session_bps: float = Field(K.REFERENCE["session_bps"], gt=0, le=1e11)
    prior_transfer_ratio: float = Field(K.REFERENCE["transfer_ratio"], gt=0, le=100)
    prior_bytes_per_packet: float = Field(K.REFERENCE["bytes_per_packet"], ge=40, le=65536)
    #: a migration's prediction is checked against what was measured this
    #: long after it completed (the session's relay after the move)
    prediction_check_s: float = Field(30.0, ge=1, le=DAY_S)

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

    def priors(self) -> K.Priors:
        return K.Priors(session_pps=self.prior_session_pps, session_bps=self.prior_session_bps,
                        transfer_ratio=self.prior_transfer_ratio,
                        bytes_per_packet=self.prior_bytes_per_packet)

    @field_validator("hold_time_s", "min_idle_cpus", "migration_timeout_s",
                     "migration_bandwidth_mbit", "hysteresis_saving_frac", "hysteresis_margin",
                     "prior_session_pps", "prior_session_bps", "prior_transfer_ratio",
                     "prior_bytes_per_packet", "prediction_check_s", mode="before")
    @classmethod
    def _int_ok_for_float(cls, v):
        return as_float(v)


class HypervisorEntry(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    uri: str = Field(min_length=1, max_length=512)
    address: str = Field(min_length=7, max_length=15)
    memory_mib: int = Field(2048, ge=64, le=1 << 24)
    cpus: int = Field(2, ge=1, le=1024)
    #: [dpid, port] where the host attaches: only there may its address and
    #: its VMs be learnt (unset: where its address is first seen)
    attach: tuple[int, int] | None = None

    @field_validator("attach", mode="before")
    @classmethod
    def _pair(cls, v):
        return tuple(v) if isinstance(v, list) else v

    @field_validator("attach")
    @classmethod
    def _attach_range(cls, v):
        if v is not None and not (0 <= v[0] < 2 ** 64 and 1 <= v[1] <= 0xFFFFFF00):
            raise ValueError(f"no such switch port {list(v)}")
        return v

    @field_validator("uri")
    @classmethod
    def _scheme(cls, v):
        if not v.startswith(URI_SCHEMES) or any(c in v for c in "\n\r\0 "):
            raise ValueError(f"libvirt URI must start with one of {', '.join(URI_SCHEMES)} "
                             f"and hold no spaces, got {v!r}")
        return v

    @field_validator("address")
    @classmethod
    def _ipv4(cls, v):
        try:
            return str(ipaddress.IPv4Address(v))
        except ValueError:
            raise ValueError(f"not an IPv4 address: {v!r}") from None

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
        for attr in ("name", "address", "uri"):
            seen = set()
            for i, h in enumerate(self.hypervisors):
                val = getattr(h, attr)
                if val in seen:
                    raise ValueError(f"hypervisors.{i}.{attr}: duplicate {attr} {val!r}")
                seen.add(val)
        return self

    def classes(self) -> tuple[TrafficClass, ...]:
        return (TrafficClass(VNC, self.ovct.vnc_ports), TrafficClass(MIGRATION, MIGRATION_PORTS))


def _part(p) -> str:
    """A location part as a reader finds it in the file (a key YAML read
    as true/false, an empty key, a number)."""
    return p if isinstance(p, str) and p and p.isprintable() else repr(p)


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(_part(p) for p in err["loc"]) or "(top level)"
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


def _key_problem(data, path: tuple = ()) -> str | None:
    """A mapping key that is not a name (YAML reads yes/no/true/false/on/
    off and numbers unquoted as such), anywhere in ``data``: where it is,
    every part written as :func:`_explain` writes a location (``_part``)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(k, str) or not k:
                at = ".".join(_part(p) for p in (*path, k))
                return f"{at}: a key must be a name (quote it if you meant text)"
            found = _key_problem(v, (*path, k))
            if found:
                return found
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            found = _key_problem(v, (*path, i))
            if found:
                return found
    return None


def parse(data, source: str = "config", model=ControllerConfig):
    """Validate a mapping (already parsed YAML) into ``model``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        problem = _key_problem(data)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    if problem:
        raise ConfigError(f"{source}: invalid configuration\n  {problem}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice (PyYAML keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in out
        except TypeError:                       # an unhashable key (a list ...)
            raise yaml.constructor.ConstructorError(
                None, None, f"a key that is a {type(key).__name__}", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

#: files above this size are refused before they are parsed
MAX_FILE_BYTES = 1 << 20


def load_yaml(path: str):
    """A YAML file as data: UTF-8 only, no key twice, at most 1 MiB."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if "\0" in text:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def load(path: str) -> ControllerConfig:
    return parse(load_yaml(path), path)


def dump(cfg: ControllerConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
