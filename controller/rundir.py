"""One run directory layout, shared by the controller (which writes events,
statistics and state there), the testbed (logs, pings, flow dumps, the
summary) and the experiments (which read them).

A run directory holds one emulation::

    controller.yaml       policy and inventory the controller ran with
    controller.log        the controller's log (controller.out: its stdout/stderr)
    events.jsonl          every event (controller.events has the schema)
    stats.jsonl           flow/port statistics polls
    state.json            the controller's current view, replaced atomically
    testbed.json          how the network was built (datapath, accel ...)
    hypervisors.json      the KVM hosts' libvirt URIs (``ovct where`` reads it)
    vm_boot.json          boot-to-VNC time per guest
    thinclients/<client>-<vm>-<n>.jsonl   one line per screen update
    pings/<src>-<dst>.txt                 raw ``ping -D`` output
    flows/<switch>.txt                    flow tables at the end of a scenario
    failure-flows/[<test>/]<switch>.txt   flow tables when something failed
    hosts/<host>/                         a KVM host's libvirt logs
    vms/<vm>-console.log                  a guest's serial console
    placement.json, summary.json          a scenario's outcome
    trial.json                            an experiment's trial metadata

Default roots, one per kind of run:

* ``runs/<name>-<time>`` -- interactive runs (``ovct up``/``check``/``run``,
  ``Testbed()`` without a run dir, ``python -m controller`` alone);
* ``runs/pytest/<time>/<test>`` -- integration tests;
* ``results/<name>-<time>`` -- experiments (``experiments/*.py``): a results
  folder holds tidy CSVs, figures, ``metadata.json`` and ``raw/<trial>/``,
  each trial a run directory as above.
"""
from __future__ import annotations

import json
import os
import time

#: the repository (controller/..)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "runs")
RESULTS = os.path.join(ROOT, "results")


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def default_run(name: str, root: str = RUNS, pid: bool = False) -> str:
    """``<root>/<name>-<time>[-<pid>]``: where a run goes unless told."""
    return os.path.join(root, f"{name}-{stamp()}" + (f"-{os.getpid()}" if pid else ""))


class RunDir:
    """Paths inside one run directory (see the module docstring)."""

    EVENTS = "events.jsonl"
    STATS = "stats.jsonl"
    STATE = "state.json"

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    def _p(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def ensure(self, *subdirs: str) -> "RunDir":
        for d in ("",) + subdirs:
            os.makedirs(self._p(d), exist_ok=True)
        return self

    # -- written by the controller ------------------------------------------------
    @property
    def events(self) -> str:
        return self._p(self.EVENTS)

    @property
    def stats(self) -> str:
        return self._p(self.STATS)

    @property
    def state(self) -> str:
        return self._p(self.STATE)

    # -- written by the testbed ------------------------------------------------------
    @property
    def controller_config(self) -> str:
        return self._p("controller.yaml")

    @property
    def controller_log(self) -> str:
        return self._p("controller.log")

    @property
    def controller_out(self) -> str:
        return self._p("controller.out")

    @property
    def testbed_meta(self) -> str:
        return self._p("testbed.json")

    @property
    def hypervisors(self) -> str:
        return self._p("hypervisors.json")

    @property
    def vm_boot(self) -> str:
        return self._p("vm_boot.json")

    @property
    def thinclients(self) -> str:
        return self._p("thinclients")

    def thinclient_log(self, client: str, vm: str, n: int) -> str:
        return self._p("thinclients", f"{client}-{vm}-{n}.jsonl")

    @property
    def pings(self) -> str:
        return self._p("pings")

    def ping_log(self, src: str, dst: str) -> str:
        return self._p("pings", f"{src}-{dst}.txt")

    @property
    def flows(self) -> str:
        return self._p("flows")

    def failure_flows(self, test: str | None = None) -> str:
        return self._p("failure-flows", *([test] if test else []))

    def host_logs(self, host: str) -> str:
        return self._p("hosts", host)

    def console_log(self, vm: str) -> str:
        return self._p("vms", f"{vm}-console.log")

    @property
    def placement(self) -> str:
        return self._p("placement.json")

    @property
    def summary(self) -> str:
        return self._p("summary.json")

    @property
    def trial(self) -> str:
        return self._p("trial.json")

    # -- reading -------------------------------------------------------------------------
    def read_json(self, path: str, default=None):
        """A JSON file of this run (``default`` if absent or half-written)."""
        try:
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return default

    def write_json(self, path: str, data, indent: int | None = 1) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent, sort_keys=True)
