"""controller/hypervisor.py's pure helpers and the Hypervisor base class
(mutation testing, issue 14): every memory unit of a domain's XML, CPU
samples at their edges, libvirt's job statistics, and the checks before a
migration starts."""
import pytest

from controller import hypervisor as H
from controller.fake_hypervisor import FakeHypervisor


def xml(memory="<memory unit='KiB'>262144</memory>", body=""):
    return f"<domain>{memory}{body}</domain>"


@pytest.mark.parametrize("memory,mib", [
    ("<memory unit='KiB'>1048576</memory>", 1024),
    ("<memory>1048576</memory>", 1024),                      # libvirt's default unit
    ("<memory unit='k'>1048576</memory>", 1024),
    ("<memory unit='KB'>1048576</memory>", 1024),            # unknown: read as KiB
    ("<memory unit='MiB'>300</memory>", 300),
    ("<memory unit='M'>300</memory>", 300),
    ("<memory unit='GiB'>3</memory>", 3072),
    ("<memory unit='G'>3</memory>", 3072),
    ("<memory unit='b'>316145664</memory>", 302),          # 301.5 MiB, rounded to even
    ("<memory unit='bytes'>316145664</memory>", 302),
    ("<memory unit='GiB'></memory>", 0),                     # no size given
    ("", 0),                                                 # no memory element
])
def test_memory_in_every_unit_libvirt_writes(memory, mib):
    assert H.parse_domain_xml(xml(memory))["memory_mib"] == mib


def test_a_domain_without_mac_address_or_vcpus():
    assert H.parse_domain_xml(xml(body="<os><cmdline>console=ttyS0</cmdline></os>")) == {
        "mac": None, "ip": None, "memory_mib": 256, "vcpus": 1}
    assert H.parse_domain_xml(xml())["ip"] is None


def test_cpu_used_at_the_edges_of_its_samples():
    # an idle domain counts (0 used) and sets the window; a sample with no
    # time between or a counter that went back is ignored
    used, window = H.cpu_used({"idle": (10.0, 500), "same": (10.0, 0), "reset": (10.0, 900)},
                              {"idle": (10.5, 500), "same": (10.0, 100), "reset": (10.5, 100)})
    assert (used, window) == (0.0, 0.5)
    used, window = H.cpu_used({"a": (0.0, 0)}, {"a": (1.0, 3_000_000_000)})
    assert used == 3.0 and window == 1.0
    assert H.cpu_used({}, {}) == (0.0, 0.0)


def test_job_statistics_keep_every_key_and_fall_back_to_memory_processed():
    job = {"time_elapsed": 7000, "memory_processed": 123, "memory_bps": 5.0, "setup_time": 2}
    st = H.stats_from_job("vm1", "pm2", "pm1", job, 8.5)
    assert (st.vm, st.src, st.dst, st.transferred_bytes, st.memory_bps, st.setup_ms) == (
        "vm1", "pm2", "pm1", 123, 5.0, 2)
    assert st.raw == job and st.raw is not job
    both = H.stats_from_job("vm1", "pm2", "pm1", {"data_processed": 456, "memory_processed": 1}, 1)
    assert both.transferred_bytes == 456
    assert H.stats_from_job("vm1", "a", "b", {}, 1.0).transferred_bytes is None


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def hv():
    h = FakeHypervisor([H.HostSpec("pm1", "u1", "10.0.0.11", 1024, 2),
                        H.HostSpec("pm2", "u2", "10.0.0.12", 1024, 2)], Clock())
    h.add_vm("pm2", "vm1", "10.0.0.101", "52:54:00:00:00:01")
    return h


def test_a_migration_gets_300_s_and_no_bandwidth_cap_unless_told(hv):
    job = hv.migrate("vm1", "pm1")
    assert (job.timeout, job.bandwidth_mibps, job.src, job.dst) == (300.0, 0, "pm2", "pm1")


def test_a_short_timeout_is_a_timeout(hv):
    assert hv.migrate("vm1", "pm1", timeout=0.5).timeout == 0.5


@pytest.mark.parametrize("kw,message", [
    ({"timeout": 0}, "timeout must be > 0"),
    ({"bandwidth_mibps": -1}, "bandwidth must be >= 0 MiB/s (0: unlimited)"),
])
def test_bad_migration_arguments_are_refused_saying_which(hv, kw, message):
    with pytest.raises(H.MigrationError) as exc:
        hv.migrate("vm1", "pm1", **kw)
    assert str(exc.value) == message and hv.jobs == []


def test_unknown_hosts_are_named_with_the_known_ones(hv):
    with pytest.raises(H.MigrationError) as exc:
        hv.migrate("vm1", "pm9")
    assert str(exc.value) == "unknown destination host 'pm9'; known: pm1, pm2"
    with pytest.raises(H.HypervisorError) as exc:
        hv.spec("pm9")
    assert str(exc.value) == "unknown host 'pm9'; known: pm1, pm2"


def test_placement_skips_an_unreachable_host_and_reads_the_others(hv):
    hv.add_vm("pm1", "vm2", "10.0.0.102", "52:54:00:00:00:02")
    hv.down.add("pm1")
    assert hv.placement() == {"vm1": "pm2"}


class Bare(H.Hypervisor):
    """A hypervisor that implements only what it must."""

    def domains(self, host):
        return []

    def capacity(self, host):
        raise H.HypervisorError("no capacity")

    def _start_migration(self, vm, src, dst, timeout, bandwidth_mibps=0):
        raise AssertionError("not reached")


def test_what_a_hypervisor_does_unless_it_says_otherwise():
    b = Bare([H.HostSpec("pm1", "u1", "10.0.0.11", 1024, 2)])
    assert b.watch(print) is False and b.in_flight() == []
    assert b.inventory_changes(None) == (None, None) and b.pump() is None
    assert b.hosts() == ["pm1"] and b.placement() == {} and b.locate("vm1") is None
    with pytest.raises(H.HypervisorError, match="duplicate host names"):
        Bare([H.HostSpec("pm1", "u1", "10.0.0.11", 1024, 2)] * 2)
