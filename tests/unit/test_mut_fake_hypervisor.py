"""controller/fake_hypervisor.py, the test double the engine's unit tests
rely on (mutation testing, issue 14): a migration's domain events and their
times on the fake clock, its statistics, timeouts and failures, and when it
says something is due.  A wrong fake makes the tests built on it lie."""
from dataclasses import replace

import pytest

from controller import hypervisor as H
from controller.fake_hypervisor import FakeHypervisor, MigrationProfile

MIB = 1 << 20


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def make(**kw):
    """Two hosts, vm1 (256 MiB) on pm2, and a watcher that keeps what it gets."""
    clock = Clock()
    hv = FakeHypervisor([H.HostSpec("pm1", "u1", "10.0.0.11", 1024, 2),
                         H.HostSpec("pm2", "u2", "10.0.0.12", 2048, 4)], clock, **kw)
    hv.add_vm("pm2", "vm1", "10.0.0.101", "52:54:00:00:00:01")
    got = []
    hv.watch(got.append)
    return hv, clock, got


def at(hv, clock, got, t):
    """Move the clock to ``t`` and deliver what is due: the events the
    watcher ``got`` then, as (host, kind, detail, time, iteration)."""
    clock.t = t
    seen = len(got)
    hv.pump()
    return [(e.host, e.kind, e.detail, e.time, e.iteration) for e in got[seen:]]


def ev(host, kind, t, detail="migrated", iteration=None):
    return (host, kind, detail, t, iteration)


# -- the inventory ------------------------------------------------------------------------

def test_a_vm_added_without_sizes_has_256_mib_and_one_vcpu_and_names_its_host():
    hv, _clock, _got = make()
    assert hv.domains("pm2") == [H.DomainInfo("vm1", "pm2", True, "52:54:00:00:00:01",
                                              "10.0.0.101", 256, 1)]


def test_a_host_s_capacity_counts_its_running_vms_only():
    hv, _clock, _got = make()
    hv.add_vm("pm2", "vm2", "10.0.0.102", "52:54:00:00:00:02", 512, 2, cpu_used=0.5)
    hv.add_vm("pm2", "off", "10.0.0.103", "52:54:00:00:00:03", 128, cpu_used=0.25)
    off = hv.vms["pm2"]["off"]
    off.info = replace(off.info, active=False)
    assert hv.capacity("pm2") == H.HostCapacity("pm2", 2048, 256 + 512, 4, 0.5, 1.0)
    assert hv.capacity("pm1") == H.HostCapacity("pm1", 1024, 0, 2, 0.0, 1.0)


# -- watching -----------------------------------------------------------------------------

def test_watch_says_whether_events_will_come():
    hv, _clock, _got = make()
    assert hv.watch(print) is True and hv.sink is print
    quiet, _clock, _got = make(events=False)
    assert quiet.watch(print) is False and quiet.sink is None


def test_events_wait_for_a_watcher():
    """Pumping with nobody watching delivers nothing and loses nothing."""
    hv, clock, _got = make()
    hv.sink = None
    hv.migrate("vm1", "pm1")
    clock.t = 1.0
    hv.pump()
    got = []
    hv.watch(got.append)
    hv.pump()
    assert [(e.host, e.kind) for e in got] == [("pm1", H.STARTED), ("pm2", H.ITERATION)]


# -- a migration that completes -----------------------------------------------------------

def test_a_migration_s_events_come_in_libvirt_s_order_each_at_its_time():
    """The defaults: 5 s, 150 ms downtime, the destination up after 0.3 s;
    here the source stops 1.6 s after the switchover.  next_event_time names
    each next step."""
    hv, clock, got = make(completion_lag_s=1.6)
    job = hv.migrate("vm1", "pm1")
    assert hv.next_event_time() == 0.3
    assert at(hv, clock, got, 0.3) == [ev("pm1", H.STARTED, 0.3), ev("pm2", H.ITERATION, 0.3,
                                                                iteration=1)]
    assert hv.next_event_time() == 5.0 - 0.15
    assert at(hv, clock, got, 4.85) == [ev("pm2", H.SUSPENDED, 4.85)]
    assert at(hv, clock, got, 5.0) == [ev("pm1", H.RESUMED, 5.0)]
    assert hv.next_event_time() == 6.6 and not job.done()
    assert at(hv, clock, got, 6.6) == [ev("pm2", H.STOPPED, 6.6),
                                       ev("pm2", H.JOB_COMPLETED, 6.6, detail="")]
    assert got[-1].stats == job.result().raw
    assert hv.next_event_time() is None
    assert [d.host for d in hv.domains("pm1")] == ["pm1"] and hv.domains("pm2") == []


def test_a_completed_migration_s_statistics_as_libvirt_reports_them():
    """Without a profile: the fake's 5 s and 150 ms, the VM's RAM as the
    total, 70 % of it sent, 10 bytes/s, 3 iterations, 3 ms of setup."""
    hv, clock, _got = make()
    job = hv.migrate("vm1", "pm1")
    clock.t = 5.0
    total = 256 * MIB
    raw = {"time_elapsed": 5000.0, "downtime": 150.0, "data_total": total,
           "data_processed": int(total * 0.7), "memory_iteration": 3, "memory_bps": 10.0,
           "setup_time": 3}
    assert job.result() == H.MigrationStats("vm1", "pm2", "pm1", 5000.0, 150.0, total, 10.0,
                                            3, 3, 5.0, raw, int(total * 0.7))
    assert job.result().raw == raw


def test_a_profile_gives_a_migration_its_own_duration_downtime_and_statistics():
    asked = []

    def profile(vm, memory_mib):
        asked.append((vm, memory_mib))
        return MigrationProfile(2.0, 300.0, 12345, memory_bps=7.5, dirty_pages_per_s=40.0)

    hv, clock, got = make(profile=profile)
    hv.add_vm("pm2", "big", "10.0.0.102", "52:54:00:00:00:02", memory_mib=512)
    job = hv.migrate("big", "pm1")
    assert asked == [("big", 512)]
    assert at(hv, clock, got, 1.0) == [ev("pm1", H.STARTED, 0.3),
                                  ev("pm2", H.ITERATION, 0.3, iteration=1)]
    assert at(hv, clock, got, 1.7) == [ev("pm2", H.SUSPENDED, 1.7)]
    clock.t = 2.0
    st = job.result()
    assert (st.elapsed_ms, st.downtime_ms, st.data_total_bytes, st.memory_bps, st.wall_s,
            st.transferred_bytes) == (2000.0, 300.0, 512 * MIB, 7.5, 2.0, 12345)
    assert st.raw == {"time_elapsed": 2000.0, "downtime": 300.0, "data_total": 512 * MIB,
                      "data_processed": 12345, "memory_iteration": 3, "memory_bps": 7.5,
                      "setup_time": 3, "memory_dirty_rate": 40.0, "memory_page_size": 4096}


def test_a_profile_without_a_dirty_rate_reports_none():
    hv, clock, _got = make(profile=lambda vm, mib: MigrationProfile(2.0, 300.0, 12345))
    job = hv.migrate("vm1", "pm1")
    clock.t = 2.0
    assert "memory_dirty_rate" not in job.result().raw
    assert "memory_page_size" not in job.result().raw


def test_a_running_migration_has_no_result_yet():
    hv, _clock, _got = make()
    job = hv.migrate("vm1", "pm1")
    with pytest.raises(TimeoutError) as exc:
        job.result()
    assert str(exc.value) == "migration of vm1 still running"


# -- timeouts -----------------------------------------------------------------------------

def test_a_migration_longer_than_its_timeout_is_aborted_at_the_timeout_not_before():
    hv, clock, _got = make()
    job = hv.migrate("vm1", "pm1", timeout=3.0)
    clock.t = 2.9
    assert not job.done()
    clock.t = 3.0
    assert job.done()
    with pytest.raises(H.MigrationError, match="^migration of vm1 timed out and was aborted$"):
        job.result()
    assert hv.locate("vm1") == "pm2"


@pytest.mark.parametrize("timeout,looked_at", [(5.0, 5.0), (6.0, 7.0), (5.0, 9.0)])
def test_a_migration_that_ends_by_its_timeout_succeeds_even_if_read_later(timeout, looked_at):
    hv, clock, _got = make()
    job = hv.migrate("vm1", "pm1", timeout=timeout)
    clock.t = looked_at
    assert job.result().elapsed_ms == 5000.0
    assert hv.locate("vm1") == "pm1"


# -- failures -----------------------------------------------------------------------------

def test_a_failure_at_the_instant_the_destination_starts_reports_none_of_its_events():
    """An event at the failure's time is one the failure prevented; the job
    is due at once (its failure to deliver), then nothing is."""
    hv, clock, got = make()
    hv.fail_next, hv.fail_after_s = "connection reset", 0.3
    job = hv.migrate("vm1", "pm1")
    clock.t = 0.3
    assert job.done()
    clock.t = 1.0
    assert hv.next_event_time() == 1.0
    assert at(hv, clock, got, 1.0) == []
    assert hv.next_event_time() is None
    with pytest.raises(H.MigrationError, match="^migration of vm1 failed: connection reset$"):
        job.result()
    again = hv.migrate("vm1", "pm1")              # only the next migration fails
    clock.t += 5.0
    assert again.result().dst == "pm1"


def test_a_failed_migration_is_due_now_not_at_the_events_it_will_never_send():
    hv, clock, got = make()
    hv.fail_next, hv.fail_after_s = "lost the destination", 1.0
    job = hv.migrate("vm1", "pm1")
    assert at(hv, clock, got, 0.5) == [ev("pm1", H.STARTED, 0.3),
                                  ev("pm2", H.ITERATION, 0.3, iteration=1)]
    assert hv.next_event_time() == 1.0            # the failure, before the pause
    clock.t = 1.0
    assert job.done()
    assert hv.next_event_time() == 1.0
    clock.t = 4.9                                 # the pause (4.85) never comes
    assert hv.next_event_time() == 4.9
    assert at(hv, clock, got, 4.9) == []
    assert hv.next_event_time() is None


def test_a_failure_after_the_pause_resumes_the_source():
    """libvirt resumes a source it paused for a migration that failed."""
    hv, clock, got = make()
    hv.fail_next, hv.fail_after_s = "statistics unreadable", 4.9
    job = hv.migrate("vm1", "pm1")
    assert at(hv, clock, got, 4.85)[-1] == ev("pm2", H.SUSPENDED, 4.85)
    assert at(hv, clock, got, 4.9) == [ev("pm2", H.RESUMED, 4.9, detail="migration_canceled")]
    assert hv.next_event_time() is None and job.done()
    assert hv.locate("vm1") == "pm2"


# -- a migration shorter than its setup (the timeline out of order) -----------------------

def test_a_migration_shorter_than_its_setup_still_delivers_every_event_once():
    """0.2 s with the destination up after 0.3 s: the switchover's events
    and the completion come first, the late start after; none twice."""
    hv, clock, got = make(migration_s=0.2)
    hv.migrate("vm1", "pm1")
    assert at(hv, clock, got, 0.2) == [ev("pm2", H.SUSPENDED, 0.2 - 0.15),
                                  ev("pm1", H.RESUMED, 0.2), ev("pm2", H.STOPPED, 0.2),
                                  ev("pm2", H.JOB_COMPLETED, 0.2, detail="")]
    assert at(hv, clock, got, 0.25) == []
    assert at(hv, clock, got, 0.3) == [ev("pm1", H.STARTED, 0.3),
                                  ev("pm2", H.ITERATION, 0.3, iteration=1)]
    assert hv.next_event_time() is None


def test_a_failure_reports_every_event_before_it_whatever_their_order():
    hv, clock, got = make(migration_s=0.2)
    hv.fail_next, hv.fail_after_s = "connection reset", 0.1
    job = hv.migrate("vm1", "pm1")
    clock.t = 0.1
    assert job.done()
    assert at(hv, clock, got, 0.5) == [ev("pm2", H.SUSPENDED, 0.2 - 0.15),
                                  ev("pm2", H.RESUMED, 0.1, detail="migration_canceled")]


def test_a_driver_that_follows_next_event_time_gets_past_a_short_migration():
    """A migration shorter than its set-up: the destination's start event
    comes after completion.  The fake once said a completed job with an
    event still to come was due *now*, forever, so a driver that follows
    next_event_time (experiments/sim.py) never got past it."""
    hv, clock, got = make(migration_s=0.2)
    hv.migrate("vm1", "pm1")
    for _ in range(20):
        t = hv.next_event_time()
        if t is None:
            break
        clock.t = max(clock.t, t)
        hv.pump()
    assert hv.next_event_time() is None
    assert len(got) == 6 and clock.t == 0.3
