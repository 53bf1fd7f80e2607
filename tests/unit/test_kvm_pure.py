"""Pure parts of the KVM layer: libvirt configuration, domain XML, the
hypervisor interface with the fake hypervisor and a fake clock, the guest
image recipe, VMs in topologies."""
import subprocess
import xml.etree.ElementTree as ET

import psutil

import pytest

from controller import hypervisor as H
from controller.fake_hypervisor import FakeHypervisor
from testbed import accel, guest_files, guest_image
from testbed import libvirt_config as LC
from testbed.procs import same_process
from testbed import topology as T


def test_libvirtd_conf_has_distinct_uuid_and_tcp_without_auth():
    a, b = LC.host_uuid("pm1", "run"), LC.host_uuid("pm2", "run")
    assert a != b and a == LC.host_uuid("pm1", "run")
    conf = LC.libvirtd_conf(a, "10.0.0.11", "/var/log/libvirt/libvirtd.log")
    for line in ("listen_tcp = 1", "listen_tls = 0", 'auth_tcp = "none"',
                 'listen_addr = "10.0.0.11"', f'host_uuid = "{a}"'):
        assert line in conf.splitlines()
    q = LC.qemu_conf().splitlines()
    for line in ('user = "root"', "dynamic_ownership = 0", 'security_driver = "none"',
                 "cgroup_controllers = [ ]", "namespaces = [ ]", 'stdio_handler = "file"',
                 "migration_port_min = 49152"):
        assert line in q


def test_domain_xml_round_trip():
    vm = T.paper_topology().vm("vm1")
    xml = LC.domain_xml(vm, "/img/vmlinuz", "/img/initrd.img", "/img/rootfs.squashfs", "tcg",
                        "/runs/vm1.log")
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == "/img/vmlinuz"
    assert "ovct.ip=10.0.0.101/8" in root.findtext("os/cmdline")
    disk = root.find("devices/disk")
    assert disk.find("readonly") is not None and disk.find("shareable") is not None
    assert root.find("devices/interface/source").get("bridge") == "br0"
    assert root.find("devices/interface/driver/host").get("csum") == "off"
    assert H.parse_domain_xml(xml) == {"mac": "52:54:00:00:00:01", "ip": "10.0.0.101",
                                       "memory_mib": 256, "vcpus": 1}
    kvm = ET.fromstring(LC.domain_xml(vm, "k", "i", "r", "kvm", "l"))
    assert kvm.get("type") == "kvm"
    with pytest.raises(ValueError):
        LC.domain_xml(vm, "k", "i", "r", "xen", "l")


def test_parse_domain_xml_as_libvirt_reports_it():
    xml = ("<domain><memory unit='KiB'>262144</memory><vcpu placement='static'>2</vcpu>"
           "<os><cmdline>console=ttyS0 ovct.ip=10.1.2.3/8</cmdline></os>"
           "<devices><interface type='bridge'><mac address='52:54:00:aa:bb:cc'/></interface>"
           "</devices></domain>")
    assert H.parse_domain_xml(xml) == {"mac": "52:54:00:aa:bb:cc", "ip": "10.1.2.3",
                                       "memory_mib": 256, "vcpus": 2}


def test_cpu_used_from_cpu_time_deltas():
    prev = {"a": (10.0, 1_000_000_000), "b": (10.0, 0), "gone": (10.0, 5)}
    cur = {"a": (12.0, 2_000_000_000), "b": (12.0, 1_000_000_000), "new": (12.0, 9)}
    used, window = H.cpu_used(prev, cur)
    assert used == pytest.approx(1.0) and window == pytest.approx(2.0)


def test_stats_from_job():
    st = H.stats_from_job("vm1", "pm2", "pm1", {"time_elapsed": 7000, "downtime": 150,
                                               "data_total": 10, "memory_iteration": 3}, 8.5)
    assert (st.elapsed_ms, st.downtime_ms, st.data_total_bytes, st.iterations, st.wall_s) == (
        7000, 150, 10, 3, 8.5)
    assert st.memory_bps is None


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def fake():
    clk = Clock()
    hv = FakeHypervisor([H.HostSpec("pm1", "x", "10.0.0.11", 1024, 2),
                         H.HostSpec("pm2", "y", "10.0.0.12", 1024, 2)], clk, migration_s=5)
    hv.add_vm("pm2", "vm1", "10.0.0.101", "52:54:00:00:00:01", 256, cpu_used=0.5)
    hv.add_vm("pm2", "vm2", "10.0.0.102", "52:54:00:00:00:02", 256)
    return hv, clk


def test_fake_capacity_and_placement(fake):
    hv, _ = fake
    cap = hv.capacity("pm2")
    assert (cap.free_memory_mib, cap.idle_cpus) == (512, 1.5)
    assert hv.placement() == {"vm1": "pm2", "vm2": "pm2"}


def test_migration_is_asynchronous_and_lands(fake):
    hv, clk = fake
    job = hv.migrate("vm1", "pm1")
    assert not job.done() and hv.locate("vm1") == "pm2"
    with pytest.raises(TimeoutError):
        job.result(timeout=0)
    clk.t = 5
    st = job.result()
    assert (st.src, st.dst, st.downtime_ms) == ("pm2", "pm1", 150.0)
    assert hv.locate("vm1") == "pm1" and hv.capacity("pm1").free_memory_mib == 768


@pytest.mark.parametrize("vm,dst,msg", [("vm1", "pm9", "unknown destination host 'pm9'"),
                                        ("vm9", "pm1", "unknown VM 'vm9'"),
                                        ("vm1", "pm2", "already runs on pm2")])
def test_bad_requests_change_nothing(fake, vm, dst, msg):
    hv, _ = fake
    with pytest.raises(H.MigrationError, match=msg):
        hv.migrate(vm, dst)
    assert hv.placement() == {"vm1": "pm2", "vm2": "pm2"} and hv.jobs == []


def test_failed_timed_out_and_aborted_migrations_leave_vm_on_source(fake):
    hv, clk = fake
    hv.down.add("pm1")
    job = hv.migrate("vm1", "pm1")
    clk.t = 1
    with pytest.raises(H.MigrationError, match="cannot reach libvirtd of pm1"):
        job.result()
    hv.down.clear()
    job = hv.migrate("vm1", "pm1", timeout=2)
    clk.t = 4
    with pytest.raises(H.MigrationError, match="timed out"):
        job.result()
    job = hv.migrate("vm1", "pm1")
    job.abort()
    with pytest.raises(H.MigrationError, match="aborted"):
        job.result()
    assert hv.locate("vm1") == "pm2"


def test_duplicate_host_specs_rejected():
    with pytest.raises(H.HypervisorError, match="duplicate"):
        FakeHypervisor([H.HostSpec("pm1", "a", "1"), H.HostSpec("pm1", "b", "2")], Clock())


def test_recipe_hash_follows_the_recipe(monkeypatch):
    h = guest_image.recipe_hash()
    assert h == guest_image.recipe_hash() and len(h) == 16
    changed = dict(guest_image.RECIPE, guest_init=guest_files.GUEST_INIT + "\n# x")
    assert guest_image.recipe_hash(changed) != h
    monkeypatch.setenv("OVCT_IMAGE_DIR", "/tmp/ovct-img")
    assert guest_image.current().path == f"/tmp/ovct-img/{h}"
    assert guest_image.current().kernel.endswith(f"{h}/vmlinuz")


def test_init_script_loads_modules_in_dependency_order():
    init = guest_files.init_script()
    mods = guest_files.INITRAMFS_MODULES
    assert " ".join(mods) in init
    assert mods.index("virtio_ring") < mods.index("virtio") < mods.index("virtio_pci")
    assert mods.index("failover") < mods.index("net_failover") < mods.index("virtio_net")


def test_debian_mirror_from_apt_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\n# http://snapshot.debian.org/x\n"
                      "URIs: http://mirror.example/debian\nSuites: bookworm\n\n"
                      "Types: deb\nURIs: http://mirror.example/debian-security\n")
    assert guest_image.debian_mirror((str(deb822),)) == "http://mirror.example/debian"
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb http://security.example/debian-security bookworm-security main\n"
                      "deb [arch=amd64] http://ftp.example/debian/ bookworm main\n")
    assert guest_image.debian_mirror((str(tmp_path / "none"), str(legacy))) == \
        "http://ftp.example/debian"
    assert guest_image.debian_mirror((str(tmp_path / "none"),)) == "http://deb.debian.org/debian"


def test_accel_choice_forced_and_invalid():
    assert accel.choose("/nonexistent", "tcg") == ("tcg", "forced by option")
    with pytest.raises(ValueError):
        accel.choose("/nonexistent", "xen")


def test_paper_vms_and_vm_validation():
    t = T.paper_topology()
    assert [(v.name, v.ip, v.host) for v in t.vms] == [("vm1", "10.0.0.101", "pm2"),
                                                       ("vm2", "10.0.0.102", "pm2")]
    t.vms.append(T.VM("bad", "10.0.0.103", "52:54:00:00:00:09", "tcl1"))
    with pytest.raises(T.TopologyError, match="not a KVM host"):
        t.validate()
    t = T.paper_topology()
    t.vms.append(T.VM("dup", "10.0.0.1", "52:54:00:00:00:09", "pm1"))
    with pytest.raises(T.TopologyError, match="duplicate host ip"):
        t.validate()


def test_multisite_vms_start_away_from_their_site():
    t = T.multisite_topology(sites=3, clients=1, hosts=2, vms=2)
    assert len(t.vms) == 6
    for v in t.vms:
        site = int(v.name[1:].split("x")[0])
        assert t.host(v.host).site != site
    with pytest.raises(T.TopologyError, match="hosts >= 1"):
        T.multisite_topology(sites=2, hosts=0, vms=1)


def test_firewall_rules_close_libvirt_to_all_but_the_kvm_hosts():
    rules = LC.firewall_rules(["10.0.0.12", "10.0.0.11"])
    assert "tcp dport { 16509, 49152-49215 } ip saddr != { 10.0.0.11, 10.0.0.12 } drop" in rules
    assert "hook input" in rules


def test_a_pid_is_ours_only_while_it_is_the_same_process():
    p = subprocess.Popen(["sleep", "30"])
    try:
        proc = psutil.Process(p.pid)
        seen = (proc.create_time(), proc.name())
        assert same_process(p.pid, seen) is not None
        assert same_process(p.pid, (seen[0] - 5, seen[1])) is None      # a reused pid
        assert same_process(p.pid, (seen[0], "qemu-system-x86")) is None
    finally:
        p.kill()
        p.wait()
    assert same_process(p.pid, seen) is None
