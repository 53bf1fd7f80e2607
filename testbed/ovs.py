"""Open vSwitch and kernel feature probes for the testbed."""
from __future__ import annotations

import functools
import json
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


def dump_flows(bridge: str, run=None) -> str:
    """``run``: how a command is run (here by default; a cluster-mode
    switch's server over ssh)."""
    res = (run or _run)(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge])
    return res.stdout + res.stderr


def list_bridges(run=None) -> list[str]:
    """The bridges of the OVS that ``run`` reaches.  A failed ``list-br``
    is an error, not "no bridges": a leftover check that could not look
    must not pass."""
    res = (run or _run)(["ovs-vsctl", "--timeout=30", "list-br"])
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl list-br failed (exit {res.returncode}): "
                       f"{res.stderr.strip()}")
    return res.stdout.split()


#: the external_ids key naming the run that made a bridge
OWNER_KEY = "ovct-run"


def tag_bridges(bridges: list[str], owner: str, run=None) -> None:
    """Mark ``bridges`` as made by ``owner`` (one ovs-vsctl call), so a run
    that finds them later can say whose they are."""
    if not bridges or not owner:
        return
    cmd = ["ovs-vsctl", "--timeout=30"]
    for b in bridges:
        cmd += ["--", "set", "Bridge", b, f"external_ids:{OWNER_KEY}={owner}"]
    res = (run or _run)(cmd)
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl: tagging the bridges: {res.stderr.strip()}")


def owner_tag(pid: int, run_dir: str) -> str:
    return f"pid={pid} run={run_dir}"


def clash_message(owners: dict[str, str], alive) -> str:
    """Why a run will not start over existing bridges, and what to do:
    ``owners`` from :func:`bridge_owners`, ``alive(pid)`` whether that
    process still runs."""
    lines = [f"OVS bridges {sorted(owners)} already exist; not touching them:"]
    stale: list[str] = []
    by_owner: dict[str, list[str]] = {}
    for b in sorted(owners):
        by_owner.setdefault(owners[b], []).append(b)
    for tag, names in by_owner.items():
        fields = dict(f.split("=", 1) for f in tag.split(" ", 1) if "=" in f)
        pid = fields.get("pid", "")
        if not pid.isdigit():
            lines.append(f"  {', '.join(names)}: not made by an ovct run "
                         "(Debian's mn, or something of yours?)")
        elif alive(int(pid)):
            lines.append(f"  {', '.join(names)}: made by the ovct run in "
                         f"{fields.get('run', '?')} (pid {pid}, still running: stop it first)")
        else:
            lines.append(f"  {', '.join(names)}: left by the ovct run in "
                         f"{fields.get('run', '?')} (pid {pid}, no longer running)")
            stale += names
    if stale:
        lines.append("  remove what the ended run left with: ovs-vsctl "
                     + " -- ".join(f"del-br {b}" for b in stale))
    return "\n".join(lines)


def bridge_owners(bridges: list[str], run=None) -> dict[str, str]:
    """Each of ``bridges``' owner tag, "" where it has none (made by
    something else, e.g. Debian's ``mn``); a bridge gone meanwhile is left
    out.  One listing of every bridge's name and tags, so no answer can be
    paired with the wrong bridge."""
    if not bridges:
        return {}
    res = (run or _run)(["ovs-vsctl", "--timeout=30", "--format=json",
                         "--columns=name,external_ids", "list", "Bridge"])
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl: the bridges' owners: {res.stderr.strip()}")
    tags = {name: dict(ids[1]) for name, ids in json.loads(res.stdout)["data"]}
    return {b: tags[b].get(OWNER_KEY, "") for b in bridges if b in tags}


#: how long a switch waits at most between attempts to reach a controller
#: that went away (OVS's default is 8 s): a restarted controller gets its
#: switches back within a second
RECONNECT_MAX_BACKOFF_MS = 1000
#: how long a switch waits for a busy controller's echo reply before it
#: drops the connection (OVS's default is 5 s): on 2 shared cores a
#: controller starting a 175-host network answered later than that, and
#: every drop made it resend the switch's flows (a cascade of reconnects)
INACTIVITY_PROBE_MS = 30_000


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


def tune_controllers(bridges: list[str], max_backoff_ms: int = RECONNECT_MAX_BACKOFF_MS,
                     inactivity_probe_ms: int = INACTIVITY_PROBE_MS, run=None) -> None:
    """``max_backoff`` and ``inactivity_probe`` on every controller record
    of ``bridges``, in two ovs-vsctl calls whatever their number (one pair
    of calls per bridge took seconds at 60 switches)."""
    if not bridges:
        return
    run = run or _run
    get = ["ovs-vsctl", "--timeout=30"]
    for b in bridges:
        get += ["--", "get", "Bridge", b, "controller"]
    res = run(get)
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl: the bridges' controllers: {res.stderr.strip()}")
    uuids = controller_uuids(res.stdout)
    if not uuids:
        return
    cmd = ["ovs-vsctl", "--timeout=30"]
    for uuid in uuids:
        cmd += ["--", "set", "Controller", uuid, f"max_backoff={int(max_backoff_ms)}",
                f"inactivity_probe={int(inactivity_probe_ms)}"]
    res = run(cmd)
    if res.returncode != 0:
        raise OvsError(f"ovs-vsctl: controller max_backoff/inactivity_probe: "
                       f"{res.stderr.strip()}")


def controller_uuids(text: str) -> list[str]:
    """The controller UUIDs in ``ovs-vsctl get Bridge <b> controller``
    output, one ``[uuid, ...]`` line per bridge."""
    return [u for line in text.splitlines()
            for u in line.strip().strip("[]").replace(",", " ").split()]
