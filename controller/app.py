"""The os-ken shim: turns OpenFlow/topology events into plain calls on the
pure :class:`controller.routing.Router` and :class:`controller.stats.
StatsAccumulator`, and their plain messages into OpenFlow 1.3.  No logic
lives here.  Launched by ``python -m controller`` (see __main__).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3
from os_ken.topology import event as topo_event

from controller import classes as C
from controller import events as E
from controller import flows as F
from controller import packets
from controller.hypervisor import HostSpec, Hypervisor
from controller.ovct import BarrierReply, HostSeen, Ovct, SessionIdle
from controller.routernet import RouterNetwork
from controller.rundir import RunDir
from controller.routing import Router
from controller.settings import Settings
from controller.stats import FlowSample, RateMeter, StatsAccumulator

LOG = logging.getLogger("ovct.app")
#: how often time-based topology changes are checked (s)
TOPOLOGY_TICK_S = 1.0
#: the state file is rewritten at most this often
STATE_WRITE_GAP_S = 0.5

#: set by controller.__main__ before os-ken instantiates the app
SETTINGS: Settings | None = None
#: the running app (for the signal handler's shutdown)
INSTANCE: "OvctApp | None" = None

#: OVCT on/off requests (True/False) appended by the SIGUSR1/SIGUSR2 handlers
#: in controller.__main__; the OVCT worker drains them (a list append is
#: all a signal handler may safely do)
SWITCH_REQUESTS: list[bool] = []

_COMMANDS = {F.ADD: "OFPFC_ADD", F.MODIFY: "OFPFC_MODIFY", F.DELETE: "OFPFC_DELETE"}


class OvctApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = SETTINGS or Settings()
        s = self.settings
        self.clock = s.clock
        run = RunDir(s.run_dir).ensure()
        self.event_log = E.EventLog(run.events, clock=self.clock)
        self.stats_log = E.EventLog(run.stats, clock=self.clock)
        self.state_path = run.state
        self.router = Router(plan=F.ClassPlan.from_classes(s.config.classes()),
                             events=self._event)
        # who may claim the KVM hosts' addresses, and from which port
        self.router.trust.set_hosts({h.address: h.attach for h in s.config.hypervisors})
        self.stats = StatsAccumulator()
        self.rates = RateMeter()          # relay rates for OVCT's cost model
        self.datapaths: dict = {}
        self._partial: dict[tuple[int, str], list] = {}
        self._lock = threading.RLock()
        self._dirty = threading.Event()
        self._dirty.set()
        self._barriers: dict[tuple[int, int], str] = {}   # (dpid, xid) -> tag
        # OVCT runs in its own thread, fed by a queue: the os-ken event loop
        # never waits on libvirt
        self._ovct_q: queue.Queue = queue.Queue()
        self.ovct = None
        if s.config.hypervisors:
            make = s.hypervisor_factory or _libvirt_hypervisor
            hv = make([h.spec() for h in s.config.hypervisors])
            self.ovct = Ovct(s.config.ovct, hv,
                             RouterNetwork(self.router, self._send, self._lock, self.rates),
                             self._emit, self.clock)
            previous = [r for r in E.read(run.events) if r.get("type") != E.CONTROLLER_START]
            if previous:               # a restart: take over where the last one was
                self.ovct.restore(previous)
            self.router.on_vnc = self._ovct_q.put
            self.router.on_host_seen = lambda ip, loc, t: self._ovct_q.put(
                HostSeen(ip, loc.dpid, loc.port, t))
            # the hypervisor's domain events (a migration's phases) wake the
            # worker at once: the switchover cannot wait for a poll
            hv.watch(self._ovct_q.put)

    def start(self):
        # background loops start with the app, not on construction, so the
        # shim can be built and its handlers called in a unit test
        global INSTANCE
        INSTANCE = self
        thread = super().start()
        self.threads.append(hub.spawn(self._poll_loop))
        self.threads.append(hub.spawn(self._state_loop))
        self.threads.append(hub.spawn(self._topology_loop))
        if self.ovct is not None:
            self.threads.append(hub.spawn(self._ovct_loop))
        self._event(E.CONTROLLER_START, {
            "pid": os.getpid(), "stats_interval": self.settings.stats_interval,
            "ovct": self.settings.config.ovct.model_dump(mode="json"),
            "hypervisors": [h.name for h in self.settings.config.hypervisors]})
        return thread

    def _ovct_loop(self):
        while True:
            self._ovct_step(0.05)

    def _ovct_step(self, timeout: float) -> None:
        """One turn of the OVCT worker: on/off requests, one event, timers."""
        try:
            ev = self._ovct_q.get(timeout=timeout)
        except queue.Empty:
            ev = None
        try:
            while SWITCH_REQUESTS:
                on = SWITCH_REQUESTS.pop(0)
                self.ovct.set_enabled(on, "SIGUSR1" if on else "SIGUSR2")
            if ev is not None:
                self.ovct.handle(ev)
            self.ovct.poll()
        except Exception as exc:   # keep routing whatever OVCT does
            LOG.exception("OVCT error")
            self._emit(E.Error(error=repr(exc)))

    def shutdown(self, why: str) -> None:
        """Stop cleanly: the last state file and statistics totals written,
        the switches' connections closed (they keep their flows: fail-mode
        secure), a ``controller_stop`` event."""
        with self._lock:
            state = self.router.snapshot()
            state["polls"] = {str(k): v for k, v in self.stats.polls.items()}
            state["totals"] = [[d, c, t, pk, by] for (d, c, t), (pk, by)
                               in sorted(self.stats.totals().items())]
            for dpid in sorted(self.stats.polls):
                by_class, by_dst = self.stats.switch_totals(dpid)
                self.stats_log(E.FLOW_STATS, {"dpid": dpid, "poll": self.stats.polls[dpid],
                                              "by_class": by_class, "by_dst": by_dst,
                                              "final": True})
        state["time"] = time.time()
        state["pid"] = os.getpid()
        E.write_json_atomic(self.state_path, state)
        for dp in list(self.datapaths.values()):
            try:
                dp.socket.close()
            except (AttributeError, OSError):
                pass
        self._event(E.CONTROLLER_STOP, {"why": why, "switches": sorted(self.datapaths)})
        self.event_log.close()
        self.stats_log.close()

    # -- plumbing -------------------------------------------------------------
    def _event(self, kind: str, payload: dict) -> None:
        self.event_log(kind, payload)
        self._dirty.set()

    def _emit(self, ev: E.Event) -> None:
        self.event_log.emit(ev)
        self._dirty.set()

    def _send(self, msgs: list[F.Message]) -> None:
        for m in msgs:
            dp = self.datapaths.get(m.dpid)
            if dp is None:
                continue
            ofp, parser = dp.ofproto, dp.ofproto_parser
            if isinstance(m, F.FlowMod):
                out = ofp.OFPP_CONTROLLER if m.out_port == F.CONTROLLER else m.out_port
                actions = [] if out is None else [
                    parser.OFPActionOutput(out, ofp.OFPCML_NO_BUFFER)]
                inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
                if m.goto_table is not None:
                    inst.append(parser.OFPInstructionGotoTable(m.goto_table))
                dp.send_msg(parser.OFPFlowMod(
                    dp, cookie=m.cookie, cookie_mask=m.cookie_mask,
                    table_id=m.table_id, command=getattr(ofp, _COMMANDS[m.command]),
                    idle_timeout=m.idle_timeout, priority=m.priority,
                    flags=ofp.OFPFF_SEND_FLOW_REM if m.notify_removed else 0,
                    out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                    match=parser.OFPMatch(**dict(m.match)), instructions=inst))
            elif isinstance(m, (F.PacketOut, F.ArpReply)):
                if isinstance(m, F.ArpReply):
                    data = packets.arp_reply(m.src_mac, m.src_ip, m.dst_mac, m.dst_ip)
                    ports = (m.port,)
                else:
                    data, ports = m.data, m.ports
                dp.send_msg(parser.OFPPacketOut(
                    dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                    actions=[parser.OFPActionOutput(p) for p in ports], data=data))
            elif isinstance(m, F.Barrier):
                req = parser.OFPBarrierRequest(dp)
                dp.set_xid(req)
                if m.tag:
                    self._barriers[(m.dpid, req.xid)] = m.tag
                dp.send_msg(req)

    def _call(self, fn, *args) -> None:
        with self._lock:
            msgs = fn(*args)
        self._send(msgs)

    # -- topology -----------------------------------------------------------------
    @set_ev_cls(topo_event.EventSwitchEnter)
    def _switch_enter(self, ev):
        dp = ev.switch.dp
        self.datapaths[dp.id] = dp
        ports = {p.port_no for p in ev.switch.ports}
        self._call(self.router.switch_enter, dp.id, ports, self.clock())

    @set_ev_cls(topo_event.EventSwitchReconnected)
    def _switch_reconnected(self, ev):
        """A new connection from a switch whose old one had not died yet:
        os-ken hands over the new datapath (no port events follow); the
        switch gets its whole table again."""
        self._switch_enter(ev)

    @set_ev_cls(topo_event.EventSwitchLeave)
    def _switch_leave(self, ev):
        dpid = ev.switch.dp.id
        self.datapaths.pop(dpid, None)
        with self._lock:
            self.stats.forget_switch(dpid)
        self._call(self.router.switch_leave, dpid, self.clock())

    @set_ev_cls(topo_event.EventPortAdd)
    def _port_add(self, ev):
        self._call(self.router.port_add, ev.port.dpid, ev.port.port_no)

    @set_ev_cls(topo_event.EventPortModify)
    def _port_modify(self, ev):
        if ev.port.is_down():          # its link is cut: the switch says so
            self._call(self.router.port_down, ev.port.dpid, ev.port.port_no)

    def _topology_loop(self):
        """Time-based topology changes (switches away past their grace,
        links not seen again after a switch returned)."""
        while True:
            hub.sleep(TOPOLOGY_TICK_S)
            self._call(self.router.tick, self.clock())

    @set_ev_cls(topo_event.EventPortDelete)
    def _port_delete(self, ev):
        self._call(self.router.port_delete, ev.port.dpid, ev.port.port_no)

    @set_ev_cls(topo_event.EventLinkAdd)
    def _link_add(self, ev):
        s, d = ev.link.src, ev.link.dst
        self._call(self.router.link_add, (s.dpid, s.port_no), (d.dpid, d.port_no))

    @set_ev_cls(topo_event.EventLinkDelete)
    def _link_delete(self, ev):
        s = ev.link.src
        self._call(self.router.link_delete, (s.dpid, s.port_no))

    # -- packets ----------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        in_port = msg.match.get("in_port")
        if in_port is None:
            return
        self._call(self.router.packet_in, msg.datapath.id, in_port,
                   packets.decode(msg.data), msg.data, self.clock(), msg.table_id)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        dpid = ev.msg.datapath.id
        tag = self._barriers.pop((dpid, ev.msg.xid), None)
        if tag is not None:
            self._ovct_q.put(BarrierReply(tag, dpid, self.clock()))

    # -- statistics ---------------------------------------------------------------
    def _poll_loop(self):
        """Every switch once per interval, spread over the interval: asked
        all at once, 30 switches' replies (thousands of flows) arrived
        together and queued every packet-in behind them for seconds (ARP
        answers came too late for a first ping: results/startup-scaling)."""
        while True:
            dps = list(self.datapaths.values())
            if not dps:
                hub.sleep(self.settings.stats_interval)
            for dp in dps:
                hub.sleep(self.settings.stats_interval / len(dps))
                if self.datapaths.get(dp.id) is not dp:
                    continue                  # gone (or reconnected) meanwhile
                ofp, parser = dp.ofproto, dp.ofproto_parser
                dp.send_msg(parser.OFPFlowStatsRequest(
                    dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0,
                    parser.OFPMatch()))
                dp.send_msg(parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY))

    def _parts(self, ev, kind: str):
        """Collect a multipart reply; returns the bodies once it is complete."""
        msg = ev.msg
        key = (msg.datapath.id, kind)
        self._partial.setdefault(key, []).extend(msg.body)
        if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            return None
        return self._partial.pop(key)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        body = self._parts(ev, "flow")
        if body is None:
            return
        dpid = ev.msg.datapath.id
        samples = [FlowSample(f.table_id, f.priority, str(f.match), f.cookie,
                              f.packet_count, f.byte_count) for f in body]
        with self._lock:
            self.stats.update(dpid, samples)
            by_class, by_dst = self.stats.switch_totals(dpid)
            poll = self.stats.polls[dpid]
            self.rates.observe(dpid, self.clock(), by_dst)
        self.stats_log(E.FLOW_STATS, {"dpid": dpid, "poll": poll,
                                      "by_class": by_class, "by_dst": by_dst})
        self._dirty.set()

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        body = self._parts(ev, "port")
        if body is None:
            return
        ports = {str(p.port_no): [p.rx_packets, p.tx_packets, p.rx_bytes, p.tx_bytes]
                 for p in body}
        self.stats_log(E.PORT_STATS, {"dpid": ev.msg.datapath.id, "ports": ports})

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        m = ev.msg
        if (C.parse_cookie(m.cookie).cls == C.SESSION
                and m.reason == m.datapath.ofproto.OFPRR_IDLE_TIMEOUT):
            self._ovct_q.put(SessionIdle(m.match.get("ipv4_src"), m.match.get("tcp_src"),
                                         m.match.get("ipv4_dst"), m.match.get("tcp_dst"),
                                         self.clock()))
        with self._lock:
            self.stats.removed(m.datapath.id, FlowSample(
                m.table_id, m.priority, str(m.match), m.cookie,
                m.packet_count, m.byte_count))

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        LOG.info("switch %016x connected", ev.msg.datapath.id)

    # -- state file ------------------------------------------------------------
    def _state_loop(self):
        while True:
            self._dirty.wait()
            self._dirty.clear()
            with self._lock:
                state = self.router.snapshot()
                state["polls"] = {str(k): v for k, v in self.stats.polls.items()}
                state["totals"] = [[d, c, t, pk, by] for (d, c, t), (pk, by)
                                   in sorted(self.stats.totals().items())]
            state["time"] = time.time()
            state["pid"] = os.getpid()
            E.write_json_atomic(self.state_path, state)
            # at most twice a second: a 100-host network's state is ~300 kB
            # of JSON, and writing it after every statistics reply kept
            # packet-ins waiting (this loop shares the controller's hub)
            hub.sleep(STATE_WRITE_GAP_S)


def _libvirt_hypervisor(specs: list[HostSpec]) -> Hypervisor:
    # imported here: libvirt-python is needed only with KVM hosts in the
    # inventory (a routing-only controller runs without it)
    from controller.libvirt_hv import LibvirtHypervisor
    return LibvirtHypervisor(specs)
