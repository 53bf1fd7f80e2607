"""Mininet adapter for :mod:`testbed.topology`.

Usable as a Mininet custom file, as every Mininet user expects::

    sudo mn --custom testbed/mn_topos.py --topo paper \\
        --switch ovs,protocols=OpenFlow13,datapath=user \\
        --controller remote,ip=127.0.0.1,port=6653
    sudo mn --custom testbed/mn_topos.py --topo multisite,6,2,1,3 ...

(start our controller first: ``python -m controller --port 6653``).
"""
import os
import sys

if __package__ in (None, ""):
    # Loaded by ``mn --custom``, which exec()s this file without __file__:
    # make the repository importable from the code object's file name.
    _file = globals().get("__file__") or sys._getframe().f_code.co_filename
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(_file))))

from mininet.topo import Topo  # noqa: E402

from testbed import topology as _topology  # noqa: E402


class DataTopo(Topo):
    """A Mininet Topo built from a pure :class:`testbed.topology.Topology`."""

    def build(self, topology: "_topology.Topology", link_opts=None, host_opts=None,
              switch_opts=None):
        """``host_opts``, ``switch_opts``: extra node options per node name
        (a host class for KVM hosts; the server of each node in cluster mode)."""
        self.topology = topology
        link_opts = dict(link_opts or {})
        host_opts = host_opts or {}
        switch_opts = switch_opts or {}
        for s in topology.switches:
            self.addSwitch(s.name, dpid=f"{s.dpid:016x}", **switch_opts.get(s.name, {}))
        for h in topology.hosts:
            self.addHost(h.name, ip=h.ip_cidr, mac=h.mac, **host_opts.get(h.name, {}))
        for ln in topology.links:
            self.addLink(ln.a, ln.b, port1=ln.a_port, port2=ln.b_port,
                         **link_opts)


def _kind_topo(kind: "_topology.TopologyKind") -> type:
    """A Mininet Topo class for one kind of the registry: ``--topo
    <kind>,<p1>,<p2>...`` gives its parameters in order; other keyword
    options (``bw``, ``delay`` ...) are link options."""
    class KindTopo(DataTopo):
        def build(self, *args, **opts):
            params = {p: int(v) for p, v in zip(kind.params, args)}
            params.update({k: int(opts.pop(k)) for k in list(opts) if k in kind.params})
            super().build(kind.factory(**params), opts)
    KindTopo.__name__ = KindTopo.__qualname__ = f"{kind.name.capitalize()}Topo"
    KindTopo.__doc__ = kind.summary
    return KindTopo


topos = {name: _kind_topo(k) for name, k in _topology.KINDS.items()}
