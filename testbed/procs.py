"""Processes the testbed started: a PID is signalled only while it is still
the process that was started (same start time and name) -- a process that
exited may have had its PID given to another one."""
from __future__ import annotations

import psutil


def identity(pid: int) -> tuple[float, str] | None:
    """(start time, name) of a running process, None if there is none."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time(), proc.name()
    except psutil.Error:
        return None


def same_process(pid: int, seen: tuple[float, str]) -> psutil.Process | None:
    """The process ``pid`` if it is still the one ``seen`` and not a
    zombie; None otherwise."""
    try:
        proc = psutil.Process(pid)
        if (proc.create_time(), proc.name()) != seen or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None
