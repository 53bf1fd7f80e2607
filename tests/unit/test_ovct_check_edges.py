"""Two bugs of the prediction check that mutation testing found (issue 14):
a move whose flows switched at clock 0.0 counted as never switched (its
session's relay since the move was ignored), and a VM whose memory read
0 MiB made the check divide by zero and stop poll()."""
from dataclasses import replace

from controller.cost import Prediction, Rates
from tests.unit.world import World


def test_a_move_switched_at_clock_zero_is_still_measured_after_the_move():
    w = World()
    pred = Prediction(unit="packets", memory_bytes=256 << 20, transfer_bytes=2e8,
                      migration_switches=3, cost_bytes=6e8, cost_packets=5e5,
                      current_pps=900.0, current_bps=4.5e5, saving_pps=600.0,
                      saving_bps=3e5, rates="measured")
    w.engine.model.predict = lambda *a, **kw: pred
    rates = {"now": Rates({d: (300.0, 150_000.0) for d in (1, 2, 3)}, since=-6.0)}
    w.engine.net.session_rates = lambda c, v: rates["now"]
    w.clock.t = -6.0
    w.syn()
    w.land()                                  # completed and switched at t = 0.0
    assert w.event("ovct_network_update")[0]["migration_start_to_switch_s"] == 6.0
    rates["now"] = Rates({2: (330.0, 165_000.0)}, since=0.0)
    w.clock.t += 30
    w.run()
    (c,) = w.event("ovct_prediction_check")
    assert "why_unmeasured" not in c, c["why_unmeasured"]
    assert c["realised_saving_pps"] == 570.0


def test_a_vm_of_unknown_memory_gets_its_prediction_checked_without_crashing():
    w = World()
    vm = w.hv.vms["pm2"]["vm1"]
    vm.info = replace(vm.info, memory_mib=0)
    w.syn()
    vm = w.hv.vms["pm2"]["vm1"]
    vm.info = replace(vm.info, memory_mib=256)     # libvirt's job reports the RAM
    w.land()
    w.clock.t += 30
    w.run()                                        # ZeroDivisionError in _check
    (c,) = w.event("ovct_prediction_check")
    assert c["predicted_transfer_bytes"] == 0 and c["transferred_bytes"] > 0
