"""Structured output of the controller: JSON-lines events and an atomically
replaced state file.  One JSON object per line, Faucet-style: ``version``,
``time`` (wall, s), ``mono`` (monotonic, s), ``event_id``, ``type``, payload.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Callable

EVENT_VERSION = 1


class EventLog:
    def __init__(self, path: str | None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._next_id = 1
        self._fh = open(path, "a", buffering=1, encoding="utf-8") if path else None

    def __call__(self, kind: str, payload: dict) -> dict:
        with self._lock:
            rec = {"version": EVENT_VERSION, "time": self._wall(),
                   "mono": self._clock(), "event_id": self._next_id,
                   "type": kind, **payload}
            self._next_id += 1
            if self._fh:
                self._fh.write(json.dumps(rec, sort_keys=True) + "\n")
        return rec

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


def write_json_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
    os.replace(tmp, path)


def read_jsonl(path: str) -> list[dict]:
    """Read a JSON-lines file; a torn last line (writer still busy) is skipped."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
