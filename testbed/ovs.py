"""Open vSwitch and kernel feature probes for the testbed."""
from __future__ import annotations

import functools
import os
import subprocess

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


class OvsError(RuntimeError):
    pass


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def ovs_running() -> bool:
    try:
        return _run(["ovs-vsctl", "--timeout=5", "show"]).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_running() -> bool:
    """Start Open vSwitch if it is not running.  Returns True if we started
    it.  (OVS is a system service: it stays up for later runs.)"""
    if ovs_running():
        return False
    res = _run([OVS_CTL, "start", "--system-id=random"], timeout=60)
    if not ovs_running():
        raise OvsError(f"could not start Open vSwitch with {OVS_CTL}:\n"
                       f"{res.stdout}{res.stderr}")
    return True


def kernel_datapath_available(sys_module: str = "/sys/module/openvswitch") -> bool:
    """True when the OVS kernel module is loaded (ovs-ctl start loads it
    where the kernel can)."""
    return os.path.isdir(sys_module)


def choose_datapath(kernel_available: bool) -> str:
    """Mininet's OVSSwitch datapath: 'kernel' with the module, else 'user'."""
    return "kernel" if kernel_available else "user"


@functools.lru_cache(maxsize=None)
def netem_available() -> bool:
    """Probe sch_netem once, in a throw-away network namespace (unshare -n):
    nothing to clean up afterwards."""
    try:
        res = _run(["unshare", "--net", "sh", "-c",
                    "ip link add ovctprobe type dummy && "
                    "tc qdisc add dev ovctprobe root netem delay 1ms"], timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def dump_flows(bridge: str) -> str:
    res = _run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge])
    return res.stdout + res.stderr


def list_bridges() -> list[str]:
    res = _run(["ovs-vsctl", "--timeout=5", "list-br"])
    return res.stdout.split() if res.returncode == 0 else []


#: how long a switch waits at most between attempts to reach a controller
#: that went away (OVS's default is 8 s): a restarted controller gets its
#: switches back within a second
RECONNECT_MAX_BACKOFF_MS = 1000


def connect_controller(bridge: str, target: str,
                       max_backoff_ms: int = RECONNECT_MAX_BACKOFF_MS) -> None:
    """Point ``bridge`` at one controller ``target`` (``tcp:127.0.0.1:N``),
    replacing any it had, retrying at most every ``max_backoff_ms``."""
    res = _run(["ovs-vsctl", "--timeout=10", "--", "--id=@c", "create", "Controller",
                f"target=\"{target}\"", f"max_backoff={int(max_backoff_ms)}", "--",
                "set", "Bridge", bridge, "controller=@c"])
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl: could not set {bridge}'s controller: {res.stderr.strip()}")


def disconnect_controller(bridge: str) -> None:
    """Drop ``bridge``'s controller connection (its flows stay: fail-mode secure)."""
    res = _run(["ovs-vsctl", "--timeout=10", "del-controller", bridge])
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl del-controller {bridge}: {res.stderr.strip()}")


def limit_backoff(bridge: str, max_backoff_ms: int = RECONNECT_MAX_BACKOFF_MS) -> None:
    """Set ``max_backoff`` on the controller records ``bridge`` has."""
    res = _run(["ovs-vsctl", "--timeout=10", "get", "Bridge", bridge, "controller"])
    uuids = res.stdout.strip().strip("[]").replace(",", " ").split()
    for uuid in uuids:
        res = _run(["ovs-vsctl", "--timeout=10", "set", "Controller", uuid,
                    f"max_backoff={int(max_backoff_ms)}"])
        if res.returncode != 0:
            raise OvsError(f"ovs-vsctl: {bridge}'s controller max_backoff: {res.stderr.strip()}")
