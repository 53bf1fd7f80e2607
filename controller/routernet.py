"""The shim side of the engine/router boundary: :class:`RouterNetwork`
implements the OVCT engine's :class:`controller.ovct.Network` on top of the
:class:`controller.routing.Router`.  Each call runs under the lock the os-ken
handlers share, and the flow plan it returns goes out through ``send`` (the
shim's OpenFlow sender; in unit tests, the fake flow table).  No os-ken
here, so the unit tests use the very same glue as the controller.
"""
from __future__ import annotations

import contextlib
from typing import Callable

from controller.flows import Barrier, FlowMod, Message, PacketOut, session_monitor
from controller.routing import Router, Update, VncConnection


class RouterNetwork:
    def __init__(self, router: Router, send: Callable[[list[Message]], None], lock=None):
        self.router = router
        self.send = send
        self.lock = lock if lock is not None else contextlib.nullcontext()

    def _do(self, fn, *args) -> list[Message]:
        with self.lock:
            msgs = fn(*args)
        self.send(msgs)
        return msgs

    @staticmethod
    def _flow_mods(msgs) -> int:
        return sum(isinstance(m, FlowMod) for m in msgs)

    @staticmethod
    def _barriers(msgs, tag: str) -> set[int]:
        return {m.dpid for m in msgs if isinstance(m, Barrier) and m.tag == tag}

    def locate(self, ip: str) -> tuple[int, int] | None:
        with self.lock:
            h = self.router.view.hosts.get(ip)
            return (h.dpid, h.port) if h else None

    def hops(self, a: int, b: int) -> int | None:
        with self.lock:
            return self.router.view.hop_distance(a, b)

    def prepare_move(self, ip: str, dpid: int, port: int) -> int:
        return self._flow_mods(self._do(self.router.prepare_move, ip, dpid, port))

    def hold(self, ip: str) -> int:
        return self._flow_mods(self._do(self.router.hold, ip))

    def commit_move(self, ip: str, tag: str) -> Update:
        with self.lock:
            msgs = self.router.commit_move(ip, tag)
            dropped = self.router.release_log.pop(ip, (0, 0))[1]
        self.send(msgs)
        return Update(self._flow_mods(msgs), frozenset(self._barriers(msgs, tag)),
                      sum(isinstance(m, PacketOut) for m in msgs), dropped)

    def settle(self, ip: str, dpid: int, port: int) -> int:
        return self._flow_mods(self._do(self.router.settle, ip, dpid, port))

    def pin(self, ip: str) -> None:
        with self.lock:
            self.router.pin(ip)


    def paper_move(self, ip: str, dpid: int, port: int, tag: str) -> Update:
        msgs = self._do(self.router.paper_move, ip, dpid, port, tag)
        return Update(self._flow_mods(msgs), frozenset(self._barriers(msgs, tag)))

    def trust_vms(self, macs: dict[str, str]) -> None:
        with self.lock:
            self.router.trust.set_vms(macs)

    def expect_vm(self, ip: str, where) -> None:
        with self.lock:
            self.router.trust.expect(ip, where)

    def session_monitor(self, conn: VncConnection, idle_s: int) -> None:
        self.send([session_monitor(conn.dpid, conn.client_ip, conn.client_port,
                                   conn.server_ip, conn.server_port, idle_s)])
