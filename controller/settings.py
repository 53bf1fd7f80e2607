"""Controller settings (pure; filled from the command line by __main__)."""
from __future__ import annotations

from dataclasses import dataclass, field

from controller.config import ControllerConfig


@dataclass(frozen=True)
class Settings:
    run_dir: str = "."
    stats_interval: float = 5.0           # seconds between statistics polls
    config: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self):
        if not self.stats_interval > 0:
            raise ValueError("stats_interval must be > 0")
