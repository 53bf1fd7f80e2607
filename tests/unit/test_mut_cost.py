"""controller/cost.py by hand, what test_policies.py leaves open (mutation
testing, issue 14): running means over several observations, each VM's
own dirty rate and rate against the others', the guards on zero and tiny
values, and every field of a prediction."""
import pytest

from controller import cost as K

MIB = 1 << 20
MIX = K.LEARN_RATE


def mixed(old, new):
    return (1 - MIX) * old + MIX * new


def test_a_vms_own_dirty_rate_else_the_mean_of_the_others():
    m = K.CostModel(priors=K.Priors(migration_bps=1000.0))
    assert m.dirty_share("vm1") == 0.0                      # nothing known: nothing dirtied
    m.dirty_bps.update(vm1=100.0, vm2=300.0)
    assert m.dirty_share("vm1") == pytest.approx(0.1)
    assert m.dirty_share("vm2") == pytest.approx(0.3)
    assert m.dirty_share("vm3") == pytest.approx(0.2)       # the mean of the two
    assert m.transfer_bytes("vm2", 1000) == pytest.approx(1000 * 0.788 / 0.7)


@pytest.mark.parametrize("bw,share", [(0.5, 0.2), (0.0, K.MAX_DIRTY_SHARE)])
def test_the_dirty_share_with_a_tiny_or_no_bandwidth(bw, share):
    m = K.CostModel(priors=K.Priors(migration_bps=bw))
    m.dirty_bps["vm1"] = 0.1
    assert m.dirty_share("vm1") == pytest.approx(share)


def test_migrations_are_counted_and_learnt_as_running_means():
    m = K.CostModel(priors=K.Priors(migration_bps=1e9))
    m.learn_migration("vm1", 1000, 800, 2e6, None)
    m.learn_migration("vm1", 1000, 600, 4e6, None)
    assert m.migrations == 2
    assert m.bandwidth_bps == pytest.approx(mixed(2e6, 4e6))
    assert m.efficiency == pytest.approx(mixed(0.8, 0.6))
    m.learn_migration("vm1", 1000, 700, 0, None)            # bandwidth not reported
    assert m.bandwidth_bps == pytest.approx(mixed(2e6, 4e6)) and m.migrations == 3
    slow = K.CostModel()
    slow.learn_migration("vm1", 1000, 700, 0.5, None)       # any positive rate is one
    assert slow.bandwidth_bps == 0.5


def test_efficiency_leaves_out_the_vms_dirtied_pages_only_when_they_were_reported():
    m = K.CostModel(priors=K.Priors(migration_bps=1000.0))
    m.dirty_bps["vm2"] = 500.0                             # another VM's: not vm1's
    m.learn_migration("vm1", 1000, 800, None, None)
    assert m.efficiency == pytest.approx(0.8)
    m = K.CostModel(priors=K.Priors(migration_bps=1000.0))
    m.dirty_bps["vm2"] = 750.0
    m.learn_migration("vm1", 1000, 800, None, 250.0)        # vm1's q = 0.25, not the mean
    assert m.efficiency == pytest.approx(0.8 * 0.75) and m.dirty_bps["vm1"] == 250.0


@pytest.mark.parametrize("dirty", [0.0, 0.5])
def test_a_small_or_zero_dirty_rate_is_learnt_too(dirty):
    m = K.CostModel(priors=K.Priors(migration_bps=1000.0))
    m.dirty_bps["vm2"] = 600.0
    m.learn_migration("vm1", 1000, 800, None, dirty)
    assert m.dirty_bps["vm1"] == dirty
    assert m.dirty_share("vm1") == pytest.approx(dirty / 1000.0)


def test_efficiency_needs_memory_and_bytes_sent():
    m = K.CostModel()
    m.learn_migration("vm1", 0, 800, None, None)            # no memory size: nothing learnt
    assert m.efficiency is None and m.migrations == 1
    m.learn_migration("vm1", 1, 2, None, None)              # one byte is a size
    assert m.efficiency == pytest.approx(2.0)


def test_relay_per_byte_sent_is_a_running_mean_and_needs_bytes_on_both_sides():
    m = K.CostModel()
    m.learn_relay(1000, 2, 0, 0)                            # the switches counted nothing
    m.learn_relay(0, 2, 5, 100)                             # libvirt sent nothing
    assert (m.relay_bytes_per_byte, m.relay_packets_per_byte) == (None, None)
    m.learn_relay(1000, 2, 4, 4000)                         # 2 bytes, 0.002 packets per byte
    m.learn_relay(1, 1, 1, 1)                               # one byte sent is a measurement
    assert m.relay_bytes_per_byte == pytest.approx(mixed(2.0, 1.0))
    assert m.relay_packets_per_byte == pytest.approx(mixed(0.002, 1.0))


def test_session_rates_are_a_running_mean_in_both_units():
    m = K.CostModel()
    m.learn_session("vm1", (100.0, 1000.0))
    m.learn_session("vm2", (200.0, 3000.0))
    assert m.session_rate == pytest.approx((mixed(100.0, 200.0), mixed(1000.0, 3000.0)))


def test_rates_mean_over_the_switches_it_has():
    r = K.Rates({1: (10.0, 100.0), 2: (30.0, 300.0)}, since=0.0)
    assert r.mean([1, 2, 9]) == (20.0, 200.0)
    assert r.mean([9]) is None


def test_every_field_of_a_prediction_by_hand():
    m = K.CostModel(priors=K.Priors(migration_bps=1000.0))
    m.dirty_bps.update(vm1=100.0, vm2=500.0)                # vm1's own: q = 0.1
    m.relay_bytes_per_byte, m.relay_packets_per_byte = 2.0, 0.01
    m.learn_session("vm1", (10.0, 100.0))
    m.learn_session("vm2", (50.0, 900.0))
    # not measured: vm1's own rate (not vm2's, not the mean) on every switch
    p = m.predict("vm1", 900, None, old_path=[2, 1, 3], new_path=[2, 4],
                  migration_path=[3, 1, 2, 4])
    transfer = 900 * 0.788 / 0.9
    assert (p.unit, p.memory_bytes, p.migration_switches, p.rates) == ("packets", 900, 4, "prior")
    assert p.transfer_bytes == pytest.approx(transfer)
    assert p.cost_bytes == pytest.approx(transfer * 4 * 2.0)
    assert p.cost_packets == pytest.approx(transfer * 4 * 0.01)
    assert (p.current_pps, p.current_bps) == (30.0, 300.0)
    # s1 and s3 left, s4 added
    assert (p.saving_pps, p.saving_bps) == (10.0, 100.0)


def test_a_measured_session_saves_its_own_rates_and_pays_its_mean_on_added_switches():
    m = K.CostModel()
    rates = K.Rates({2: (10.0, 100.0), 1: (20.0, 400.0), 3: (30.0, 700.0)}, since=0.0)
    p = m.predict("vm1", MIB, rates, [2, 1, 3], [2, 4, 5], [3, 1, 2, 4, 5])
    assert (p.current_pps, p.current_bps, p.rates) == (60.0, 1200.0, "measured")
    assert (p.saving_pps, p.saving_bps) == (50.0 - 2 * 20.0, 1100.0 - 2 * 400.0)


def test_a_decision_event_gets_the_prediction_rounded():
    p = K.Prediction("packets", 1, 1.0, 3, 1234.56789, 98.7654, 1.0, 1.0, 0.123456, 9.87654,
                     "prior")
    assert p.fields() == {"cost_bytes": 1235, "cost_packets": 99, "saving_pps": 0.123,
                          "saving_bps": 9.9, "breakeven_s": 800.005, "rates": "prior"}
    never = K.Prediction("bytes", 1, 1.0, 3, 10.0, 1.0, 1.0, 1.0, 1.0, 0.0, "prior")
    assert never.fields()["breakeven_s"] is None
