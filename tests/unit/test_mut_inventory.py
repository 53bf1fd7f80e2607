"""controller/inventory.py by hand (mutation testing, issue 14): what a
host-by-host read returns (addresses and VMs touched, whether a MAC
changed), VMs leaving, split brains in the hypervisors' order, and which
domains count as running VMs."""
from controller.hypervisor import DomainInfo, HypervisorError
from controller.inventory import Inventory


class Hv:
    """Just what the inventory asks: hosts and their domains."""

    def __init__(self, order, **domains):
        self.order = order
        self.doms = {h: list(domains.get(h, ())) for h in order}
        self.down = set()

    def hosts(self):
        return list(self.order)

    def domains(self, host):
        if host in self.down:
            raise HypervisorError(f"cannot reach libvirtd of {host}")
        return list(self.doms[host])


def vm(name, host, ip, mac=None, memory=256, active=True):
    return DomainInfo(name, host, active, mac, ip, memory, 1)


def test_a_first_read_host_by_host_fills_everything_and_says_what_it_touched():
    hv = Hv(["pm1"], pm1=[vm("vm1", "pm1", "10.0.0.101", "52:54:00:00:00:01", 512),
                          vm("vm2", "pm1", "10.0.0.102")])
    inv = Inventory(hv.hosts())
    ips, vms, macs = inv.read_hosts(hv, ["pm1"])
    assert (ips, vms, macs) == ({"10.0.0.101", "10.0.0.102"}, {"vm1", "vm2"}, True)
    assert inv.by_ip == {"10.0.0.101": ("vm1", "pm1", 512), "10.0.0.102": ("vm2", "pm1", 256)}
    assert inv.macs == {"10.0.0.101": "52:54:00:00:00:01"}
    assert inv.where == {"vm1": {"pm1"}, "vm2": {"pm1"}}
    assert [d.name for d in inv.by_host["pm1"]] == ["vm1", "vm2"]
    assert inv.read_hosts(hv, ["pm1"]) == ({"10.0.0.101", "10.0.0.102"}, {"vm1", "vm2"}, False)


def test_only_running_domains_with_an_address_are_vms():
    hv = Hv(["pm1"], pm1=[vm("off", "pm1", "10.0.0.9", active=False), vm("noip", "pm1", None),
                          vm("vm1", "pm1", "10.0.0.101")])
    inv = Inventory(hv.hosts())
    inv.read_all(hv)
    assert list(inv.by_ip) == ["10.0.0.101"] and set(inv.where) == {"vm1"}


def test_a_vm_that_leaves_is_forgotten_with_its_mac():
    for mac in ("52:54:00:00:00:01", None):
        hv = Hv(["pm1", "pm2"], pm1=[vm("vm1", "pm1", "10.0.0.101", mac)],
                pm2=[vm("vm2", "pm2", "10.0.0.102")])
        inv = Inventory(hv.hosts())
        inv.read_all(hv)
        hv.doms["pm1"] = []                             # shut down
        assert inv.read_hosts(hv, ["pm1"]) == ({"10.0.0.101"}, {"vm1"}, mac is not None)
        assert inv.by_ip == {"10.0.0.102": ("vm2", "pm2", 256)}
        assert inv.macs == {} and inv.where == {"vm2": {"pm2"}}
        hv.doms["pm1"] = [vm("vm1", "pm1", "10.0.0.101", mac)]   # and back
        assert inv.read_hosts(hv, ["pm1"])[:2] == ({"10.0.0.101"}, {"vm1"})
        assert inv.by_ip["10.0.0.101"] == ("vm1", "pm1", 256)


def test_a_vm_that_moves_is_touched_on_both_hosts():
    hv = Hv(["pm1", "pm2"], pm2=[vm("vm1", "pm2", "10.0.0.101", "52:54:00:00:00:01")])
    inv = Inventory(hv.hosts())
    inv.read_all(hv)
    hv.doms["pm2"], hv.doms["pm1"] = [], [vm("vm1", "pm1", "10.0.0.101", "52:54:00:00:00:01")]
    assert inv.read_hosts(hv, ["pm2", "pm1"]) == ({"10.0.0.101"}, {"vm1"}, False)
    assert inv.by_ip == {"10.0.0.101": ("vm1", "pm1", 256)} and inv.where == {"vm1": {"pm1"}}


def test_a_mac_change_is_reported_whichever_address_is_visited_last():
    # 20 inventories, each with one address whose MAC changes and one that
    # stays: the answer must not depend on the order a set visits them in
    for n in range(20):
        same, moved = f"10.1.{n}.1", f"10.1.{n}.2"
        hv = Hv(["pm1"], pm1=[vm("a", "pm1", same, "02:00:00:00:00:01"),
                              vm("b", "pm1", moved, "02:00:00:00:00:02")])
        inv = Inventory(hv.hosts())
        inv.read_all(hv)
        hv.doms["pm1"] = [vm("a", "pm1", same, "02:00:00:00:00:01"),
                          vm("b", "pm1", moved, "02:00:00:00:00:03")]
        assert inv.read_hosts(hv, ["pm1"])[2] is True, n


def test_a_mac_no_longer_reported_is_forgotten():
    hv = Hv(["pm1"], pm1=[vm("vm1", "pm1", "10.0.0.101", "52:54:00:00:00:01")])
    inv = Inventory(hv.hosts())
    inv.read_all(hv)
    hv.doms["pm1"] = [vm("vm1", "pm1", "10.0.0.101", None)]
    assert inv.read_hosts(hv, ["pm1"]) == ({"10.0.0.101"}, {"vm1"}, True)
    assert inv.macs == {} and inv.by_ip == {"10.0.0.101": ("vm1", "pm1", 256)}


def test_a_split_brain_counts_at_the_last_host_in_the_hypervisors_order():
    order = ["pm2", "pm1"]                              # not alphabetical
    hv = Hv(order, pm2=[vm("vm1", "pm2", "10.0.0.101", "02:00:00:00:00:02")],
            pm1=[vm("vm1", "pm1", "10.0.0.101", "02:00:00:00:00:01")])
    inv = Inventory(order)
    inv.read_all(hv)
    assert inv.by_ip == {"10.0.0.101": ("vm1", "pm1", 256)}
    assert inv.macs == {"10.0.0.101": "02:00:00:00:00:01"}
    assert inv.conflicts() == {"vm1": {"pm1", "pm2"}}
    assert inv.conflicts(["vm1"]) == {"vm1": {"pm1", "pm2"}}
    assert inv.conflicts(["vm2"]) == {} and inv.conflicts([]) == {}


def test_an_unreachable_host_has_no_vms_running():
    hv = Hv(["pm1"], pm1=[vm("vm1", "pm1", "10.0.0.101")])
    inv = Inventory(hv.hosts())
    inv.read_all(hv)
    hv.down.add("pm1")
    assert inv.read_hosts(hv, ["pm1"])[:2] == ({"10.0.0.101"}, {"vm1"})
    assert inv.by_ip == {} and inv.where == {}
