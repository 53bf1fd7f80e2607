"""Launch the OVCT controller: ``python -m controller [options]``.

os-ken 4.x has no ``osken-manager``; we parse our own options, hand os-ken
its configuration and run the apps (os-ken's LLDP topology discovery, as
:mod:`controller.lldp` adjusts it, plus our shim) with ``AppManager.run_apps``.

Signals: SIGTERM/SIGINT stop it; SIGUSR1 switches OVCT on and SIGUSR2 off
while it runs (each logged as an ``ovct_enabled``/``ovct_disabled`` event).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from controller import config as cfgmod
from controller.rundir import default_run
from controller.settings import Settings


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controller",
                                description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1",
                   help="OpenFlow listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6653, help="OpenFlow TCP port")
    p.add_argument("--run-dir",
                   help="where events.jsonl, stats.jsonl, state.json go "
                        "(default runs/controller-<time>)")
    p.add_argument("--stats-interval", type=float, default=5.0,
                   help="seconds between flow/port statistics polls")
    p.add_argument("--config", help="policy and inventory file (YAML); see controller/config.py")
    p.add_argument("--check-config", action="store_true",
                   help="validate --config and exit")
    p.add_argument("--log-file", help="log here instead of stderr")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error("--port must be in 1..65535")
    if not args.stats_interval > 0:
        p.error("--stats-interval must be > 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # validate the configuration before anything starts
    try:
        conf = cfgmod.load(args.config) if args.config else cfgmod.ControllerConfig()
    except cfgmod.ConfigError as exc:
        print(f"controller: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{args.config}: OK ({len(conf.hypervisors)} hypervisors, "
              f"update mode {conf.ovct.update_mode})")
        return 0
    args.run_dir = args.run_dir or default_run("controller")
    os.makedirs(args.run_dir, exist_ok=True)
    logging.basicConfig(
        filename=args.log_file, level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # os-ken is imported only once the configuration is valid (so
    # --check-config and a bad file need none of it); importing these
    # registers their options with os-ken's CONF.
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    import os_ken.controller.controller  # noqa: F401
    import os_ken.topology.switches  # noqa: F401

    from controller import app, lldp
    lldp.install()

    cfg.CONF(args=["--ofp-listen-host", args.host,
                   "--ofp-tcp-listen-port", str(args.port),
                   "--observe-links"], project="os_ken")
    app.SETTINGS = Settings(run_dir=args.run_dir, stats_interval=args.stats_interval,
                            config=conf)

    def _stop(signum, _frame):
        # os-ken's native hub runs non-daemon threads that cannot be
        # killed: say goodbye to the switches, write the last state and
        # statistics, then leave the process directly
        logging.getLogger("ovct").info("signal %d: stopping", signum)
        if app.INSTANCE is not None:
            app.INSTANCE.shutdown(f"signal {signum}")
        logging.shutdown()
        os._exit(0)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # OVCT on (SIGUSR1) / off (SIGUSR2) while running: "before" and "after"
    # in one emulation, or by hand with kill -USR1 <pid>
    signal.signal(signal.SIGUSR1, lambda *_: app.SWITCH_REQUESTS.append(True))
    signal.signal(signal.SIGUSR2, lambda *_: app.SWITCH_REQUESTS.append(False))
    logging.getLogger("ovct").info("controller on %s:%d, run dir %s",
                                   args.host, args.port, args.run_dir)
    # os-ken runs in a thread of its own; the main thread only waits for it
    # (a lock wait that signals interrupt, so one is handled the moment it
    # arrives; a stop signal leaves through _stop).  If os-ken's thread ends
    # by itself, it failed: its traceback is in the output, and so is ours.
    runner = threading.Thread(target=AppManager.run_apps, name="os-ken", daemon=True,
                              args=(["os_ken.topology.switches", "controller.app"],))
    runner.start()
    runner.join()
    logging.getLogger("ovct").error("os-ken stopped by itself: the controller exits")
    print("controller: os-ken stopped by itself (see the traceback above)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
