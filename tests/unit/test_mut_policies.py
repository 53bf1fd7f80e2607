"""controller/policies.py, what test_policies.py leaves open (mutation
testing, issue 14): the reason every verdict gives (it is what the
decision event says), the boundaries of the rules, and which history an
estimate rests on."""
import pytest

from controller import policies as P

from tests.unit.test_policies import _ctx


@pytest.mark.parametrize("policy,ctx,action,reason", [
    ("never", _ctx(5), P.STAY, "policy never: the VM stays where it is"),
    ("breakeven", _ctx(40), P.DEFER, "lasted 40 s < break-even 100 s"),
    ("breakeven", _ctx(120), P.MIGRATE, "lasted 120 s >= break-even 100 s"),
    ("breakeven", _ctx(0, saving=0.0), P.STAY,
     "the move saves nothing (predicted saving 0 packets/s)"),
    ("predicted", _ctx(0, saving=0.0), P.STAY,
     "the move saves nothing (predicted saving 0 packets/s)"),
    ("predicted", _ctx(0, rem=500, n=5), P.MIGRATE,
     "expected 500 s left >= break-even 100 s (5 past sessions)"),
    ("predicted", _ctx(0, rem=100, n=5), P.MIGRATE,                 # exactly the break-even
     "expected 100 s left >= break-even 100 s (5 past sessions)"),
    ("predicted", _ctx(0, rem=50, n=5), P.STAY,
     "expected 50 s left < break-even 100 s (5 past sessions)"),
    ("predicted", _ctx(30, n=1), P.DEFER,
     "too little history (1 session(s)); rent or buy: lasted 30 s < break-even 100 s"),
    ("adaptive", _ctx(30, rem=50, n=5), P.DEFER,
     "expected 50 s left < break-even 100 s (5 past sessions); "
     "rent or buy: lasted 30 s < break-even 100 s"),
])
def test_each_verdict_says_why(policy, ctx, action, reason):
    v = P.make(policy).verdict(ctx)
    assert (v.action, v.reason) == (action, reason)


@pytest.mark.parametrize("policy", ["breakeven", "predicted", "adaptive"])
def test_without_a_prediction_every_rule_keeps_the_vm_and_says_why(policy):
    ctx = P.Context(now=10.0, started=0.0, prediction=None, expected_remaining_s=1e9,
                    history_n=50)
    v = P.make(policy).verdict(ctx)
    assert v == P.Verdict(P.STAY, "no prediction for this move (its path is not known)")


def test_the_history_keeps_the_last_64_sessions_by_default():
    h = P.SessionHistory()
    for d in range(1, 66):                       # 1 .. 65 s: the first is forgotten
        h.add("c1", "vm1", d)
    assert h.lengths("c1", "vm1", 1) == ([float(d) for d in range(2, 66)], "client")


def test_a_session_that_ended_exactly_at_the_age_has_nothing_left():
    h = P.SessionHistory()
    for d in (100, 300):
        h.add("c1", "vm1", d)
    assert h.expected_remaining("c1", "vm1", 100, 1) == (200.0, 2)


def test_the_clients_own_sessions_come_first_from_exactly_min_n():
    h = P.SessionHistory()
    h.add("c1", "vm1", 10)
    h.add("c1", "vm1", 20)
    h.add("c2", "vm1", 600)
    assert h.lengths("c1", "vm1", 2) == ([10.0, 20.0], "client")
    assert h.expected_remaining("c1", "vm1", 0, 2) == (15.0, 2)
    # c2 has one of its own: the VM's three (exactly min_n) stand in
    assert h.lengths("c2", "vm1", 3) == ([10.0, 20.0, 600.0], "vm")
    assert h.expected_remaining("c2", "vm1", 0, 3) == (210.0, 3)
    assert h.lengths("c2", "vm1", 4) == ([], "none")
    assert h.expected_remaining("c2", "vm1", 0, 4) == (None, 3)
