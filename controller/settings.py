"""Controller settings (pure; filled from the command line by __main__)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from controller.config import ControllerConfig
from controller.hypervisor import HostSpec, Hypervisor


@dataclass(frozen=True)
class Settings:
    run_dir: str = "."
    stats_interval: float = 5.0           # seconds between statistics polls
    config: ControllerConfig = field(default_factory=ControllerConfig)
    #: builds the hypervisor adapter from the inventory; None: libvirt's
    #: (a unit test passes the fake hypervisor, to run the real OVCT path)
    hypervisor_factory: Callable[[list[HostSpec]], Hypervisor] | None = None
    #: the clock of every handler and of the OVCT engine (a test's fake one)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self):
        if not self.stats_interval > 0:
            raise ValueError("stats_interval must be > 0")
