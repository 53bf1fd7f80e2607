"""os-ken's topology discovery (LLDP), with one change: a second connection
from a datapath id is a new switch, not a resumed one.

os-ken's ``Switches`` treats a connection from a dpid it still has as a
reconnect: it keeps the port list it had, sends no LLDP on the new
connection's ports ("do not add ports while dp has multiple connections")
and raises ``EventSwitchReconnected``.  That loses links for good when the
"same" switch is really another one -- a second Mininet network started on
the same controller (its core switches reuse dpids 1, 2, 3 with other
ports), or a switch restarted with ports added -- and ARP floods then cross
the undiscovered links (measured: the README's two ``mn --custom`` runs on
one controller found 1 of 24 links in 8 minutes, hosts flapping between
edge and core ports).

:func:`install` wraps ``Switches.state_change_handler`` so that the old
connection is retired first, exactly as if it had died (its links go,
``EventSwitchLeave``), and the new one is registered from scratch with the
ports it reports (LLDP on every one, ``EventSwitchEnter``).  The app then
gives the switch its whole table, as for any new switch, and keeps the
hosts it had learnt behind it.  (A wrapper, not a subclass: os-ken loads
its own ``Switches`` as the provider of topology events whatever else runs.)
"""
from __future__ import annotations

import functools
import logging

from os_ken.topology import event
from os_ken.topology import switches as oskswitches

LOG = logging.getLogger("ovct.lldp")


def retire(app: oskswitches.Switches, old_dp) -> None:
    """What os-ken does when ``old_dp`` dies, done now."""
    switch = app._get_switch(old_dp.id)
    app._unregister(old_dp)
    if switch is not None:
        app.send_event_to_observers(event.EventSwitchLeave(switch))
        if app.link_discovery:
            for port in switch.ports:
                if not port.is_reserved():
                    app.ports.del_port(port)
                    app._link_down(port)
            app.lldp_event.set()
    old_dp.close()


def install() -> None:
    """Wrap os-ken's handler (once; the wrapper keeps its event binding)."""
    original = oskswitches.Switches.state_change_handler
    if getattr(original, "ovct_wrapped", False):
        return

    @functools.wraps(original)       # copies ``callers``: still an EventOFPStateChange handler
    def state_change_handler(self, ev):
        dp = ev.datapath
        old = self.dps.get(dp.id) if dp.id is not None else None
        if ev.state == oskswitches.MAIN_DISPATCHER and old is not None and old is not dp:
            LOG.warning("dpid %s connected again: the old connection is retired and the "
                        "switch discovered afresh", dp.id)
            retire(self, old)
        return original(self, ev)

    state_change_handler.ovct_wrapped = True
    oskswitches.Switches.state_change_handler = state_change_handler
