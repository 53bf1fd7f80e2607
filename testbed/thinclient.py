"""A thin client: a real VNC (RFB) viewer built on vncdotool's protocol code.

    python -m testbed.thinclient 10.0.0.101 --port 5900 --duration 60 \\
        --input-rate 2 --log tcl1-vm1.jsonl

Runs inside a thin client's network namespace.  It connects to the VM's VNC
server, asks for incremental framebuffer updates continuously (a new
request as soon as an update is complete, like a viewer), sends keyboard and
mouse input at ``--input-rate`` events per second, and logs one JSON line per
framebuffer update received (wall and monotonic time, rectangles, bytes):
the application-level view of any interruption.  Pixels are counted, not
decoded into images (RAW encoding), to keep the 2-core machine for the
guests.  After ``--duration`` seconds it closes the connection (FIN).
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time

import warnings

from twisted.internet import reactor, task
from vncdotool import rfb
from vncdotool.client import VNCDoToolClient, VNCDoToolFactory, factory_connect

# we override updateRectangle to count bytes; vncdotool warns that its
# signature may change (sibson/vncdotool#385), which the pin in setup.py covers
warnings.filterwarnings("ignore", message="updateRectangle will change", category=FutureWarning)

KEYS = [ord(c) for c in "ovct"]


class Viewer:
    def __init__(self, log, input_rate: float, duration: float):
        self.log = log
        self.input_rate = input_rate
        self.duration = duration
        self.client: ViewerClient | None = None
        self.updates = 0
        self.bytes = 0
        self._input = None
        self._tick = 0
        self.exit_code = 1

    def write(self, kind: str, **fields) -> None:
        rec = {"event": kind, "time": time.time(), "mono": time.monotonic(), **fields}
        self.log.write(json.dumps(rec) + "\n")
        self.log.flush()

    def connected(self, client: "ViewerClient") -> None:
        self.client = client
        self.write("connected", width=client.width, height=client.height,
                   name=getattr(client, "name", b"").decode("latin-1", "replace")
                   if isinstance(getattr(client, "name", b""), bytes) else "")
        client.framebufferUpdateRequest(incremental=False)
        if self.input_rate > 0:
            self._input = task.LoopingCall(self.send_input)
            self._input.start(1.0 / self.input_rate, now=False)
        reactor.callLater(self.duration, self.finish)

    def update(self, rects: int, nbytes: int) -> None:
        self.updates += 1
        self.bytes += nbytes
        self.write("update", rects=rects, bytes=nbytes)

    def send_input(self) -> None:
        c = self.client
        if c is None:
            return
        self._tick += 1
        if self._tick % 2:
            x = (self._tick * 37) % max(1, c.width)
            y = (self._tick * 23) % max(1, c.height)
            c.pointerEvent(x, y, 0)
        else:
            key = KEYS[self._tick // 2 % len(KEYS)]
            c.keyEvent(key, down=True)
            c.keyEvent(key, down=False)

    def finish(self) -> None:
        self.write("closing", updates=self.updates, bytes=self.bytes)
        self.exit_code = 0 if self.updates else 1
        if self._input is not None and self._input.running:
            self._input.stop()
        if self.client is not None:
            self.client.transport.loseConnection()
        reactor.callLater(0.5, _stop)

    def lost(self, reason) -> None:
        self.write("closed", reason=str(reason.value) if reason else "")
        _stop()


def _stop() -> None:
    if reactor.running:
        reactor.stop()


class ViewerClient(VNCDoToolClient):
    encoding = rfb.Encoding.RAW
    _rects = 0
    _bytes = 0

    def vncConnectionMade(self) -> None:
        super().vncConnectionMade()
        self.factory.viewer.connected(self)

    def beginUpdate(self) -> None:
        self._rects = 0
        self._bytes = 0

    def updateRectangle(self, x, y, width, height, data) -> None:
        self._rects += 1
        self._bytes += len(data)

    def commitUpdate(self, rectangles=None) -> None:
        self.factory.viewer.update(self._rects, self._bytes)
        self.framebufferUpdateRequest(incremental=True)

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        self.factory.viewer.lost(reason)


class ViewerFactory(VNCDoToolFactory):
    protocol = ViewerClient

    def __init__(self, viewer: Viewer):
        super().__init__()
        self.viewer = viewer
        self.deferred.addErrback(self._failed)

    def _failed(self, reason) -> None:
        self.viewer.write("failed", reason=str(reason.value))
        _stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.thinclient",
                                description="a VNC viewer that logs every screen update")
    p.add_argument("server", help="VM address")
    p.add_argument("--port", type=int, default=5900)
    p.add_argument("--duration", type=float, default=60.0, help="seconds to stay connected")
    p.add_argument("--input-rate", type=float, default=2.0,
                   help="keyboard/mouse events per second (0: none)")
    p.add_argument("--log", required=True, help="JSON-lines log of updates")
    args = p.parse_args(argv)
    with open(args.log, "a", buffering=1) as log:
        viewer = Viewer(log, args.input_rate, args.duration)
        viewer.write("start", server=args.server, port=args.port, duration=args.duration,
                     input_rate=args.input_rate)
        signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(viewer.finish))
        factory_connect(ViewerFactory(viewer), args.server, args.port, socket.AF_INET)
        reactor.run(installSignalHandlers=False)
        return viewer.exit_code


if __name__ == "__main__":
    sys.exit(main())
