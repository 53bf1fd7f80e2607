"""Wait on state with a deadline instead of sleeping."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               interval: float = 0.1, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               describe: Callable[[], str] | None = None) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises :class:`WaitTimeout` naming ``what`` (plus ``describe()``, the
    state seen last) once ``timeout`` seconds have passed.  Exceptions from
    the predicate propagate.
    """
    deadline = clock() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if clock() >= deadline:
            detail = f": {describe()}" if describe else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}")
        sleep(interval)


def size_deadline(base: float, hosts: int = 0, switches: int = 0, links: int = 0,
                  per_host: float = 0.3, per_switch: float = 0.5,
                  per_link: float = 0.2) -> float:
    """A deadline that grows with the network: ``base`` for the report's
    4-host network, plus time per host, switch and link beyond what that
    base covers (start-up measured here scales about linearly in each:
    results/startup-scaling)."""
    return base + per_host * max(0, hosts - 4) + per_switch * max(0, switches - 3) \
        + per_link * max(0, links - 2)
