"""When moving pays: the decision policies of OVCT's phase 2 (pure).

Once the engine has found a closer host with room for the VM, a policy
says whether to move it now, to keep it where it is, or to ask again
later.  Each policy sees the session's age, the predicted cost and saving
of the move (:class:`controller.cost.Prediction`) and what the history of
the client's (or the VM's) past sessions says about the time it has left.

* ``always`` -- the report's rule, and the default: move at once.
* ``never`` -- the baseline: keep every VM where it is.
* ``breakeven`` -- rent or buy: move once the session has lasted the
  predicted break-even (times 1 + ``hysteresis_margin``); until then ask
  again at that time.  Whatever the lengths, it pays at most about twice
  what the best decision in hindsight pays (the ski-rental bound).
* ``predicted`` -- move at detection if the expected time left, learnt from
  the history of that client's sessions with that VM (or, with too few of
  those, of the VM's sessions), exceeds the break-even (times 1 +
  margin); otherwise keep it.  Without enough history it falls back to
  ``breakeven``.
* ``adaptive`` -- ``predicted`` when the history says "move"; otherwise the
  ``breakeven`` rule, so a session the history misjudged still moves once
  it has lasted its break-even.

A policy is a class with a :meth:`Decider.verdict`; :data:`DECIDERS` maps
the names of ``config.Policy.decision`` to them.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from controller.cost import Prediction

MIGRATE, STAY, DEFER = "migrate", "stay", "defer"
#: a deferred decision is taken again no sooner than this (s)
MIN_RECHECK_S = 1.0


@dataclass(frozen=True)
class Context:
    """What a policy knows when it decides (times on the engine's clock)."""
    now: float
    started: float                         # the session's detection
    prediction: Prediction | None
    expected_remaining_s: float | None     # None: too little history
    history_n: int                         # the sessions that estimate rests on
    margin: float = 0.0                    # hysteresis: the break-even times 1 + margin
    session: object = None                 # the engine's Session
    src_switch: int | None = None          # the move: the VM's switch now ...
    dst_switch: int | None = None          # ... and the candidate host's

    @property
    def age_s(self) -> float:
        return self.now - self.started

    @property
    def threshold_s(self) -> float | None:
        be = self.prediction.breakeven_s if self.prediction is not None else None
        return None if be is None else be * (1 + self.margin)


@dataclass(frozen=True)
class Verdict:
    action: str                        # migrate | stay | defer
    reason: str = ""                   # "" for migrate: the engine says which host and why
    recheck_at: float | None = None    # defer: decide again then


class Decider:
    name = ""
    #: whether the policy reads the session history (the engine computes
    #: the expected time left only for those)
    uses_history = False

    def verdict(self, ctx: Context) -> Verdict:
        raise NotImplementedError


class Always(Decider):
    name = "always"

    def verdict(self, ctx: Context) -> Verdict:
        return Verdict(MIGRATE)


class Never(Decider):
    name = "never"

    def verdict(self, ctx: Context) -> Verdict:
        return Verdict(STAY, "policy never: the VM stays where it is")


def _no_saving(ctx: Context) -> Verdict | None:
    if ctx.prediction is None:
        return Verdict(STAY, "no prediction for this move (its path is not known)")
    if ctx.threshold_s is None:
        return Verdict(STAY, "the move saves nothing (predicted saving "
                             f"{ctx.prediction.saving:.3g} {ctx.prediction.unit}/s)")
    return None


class Breakeven(Decider):
    name = "breakeven"

    def verdict(self, ctx: Context) -> Verdict:
        out = _no_saving(ctx)
        if out is not None:
            return out
        t = ctx.threshold_s
        if ctx.now >= ctx.started + t:        # as the recheck time is computed
            return Verdict(MIGRATE, f"lasted {ctx.age_s:.0f} s >= break-even {t:.0f} s")
        return Verdict(DEFER, f"lasted {ctx.age_s:.0f} s < break-even {t:.0f} s",
                       recheck_at=max(ctx.started + t, ctx.now + MIN_RECHECK_S))


class Predicted(Decider):
    name = "predicted"
    uses_history = True
    fallback = Breakeven()

    def verdict(self, ctx: Context) -> Verdict:
        out = _no_saving(ctx)
        if out is not None:
            return out
        t = ctx.threshold_s
        if ctx.expected_remaining_s is None:
            v = self.fallback.verdict(ctx)
            return Verdict(v.action, f"too little history ({ctx.history_n} session(s)); "
                                     f"rent or buy: {v.reason}", v.recheck_at)
        rem = ctx.expected_remaining_s
        if rem >= t:
            return Verdict(MIGRATE, f"expected {rem:.0f} s left >= break-even {t:.0f} s "
                                    f"({ctx.history_n} past sessions)")
        return self.short(ctx, rem, t)

    def short(self, ctx: Context, rem: float, t: float) -> Verdict:
        return Verdict(STAY, f"expected {rem:.0f} s left < break-even {t:.0f} s "
                             f"({ctx.history_n} past sessions)")


class Adaptive(Predicted):
    name = "adaptive"

    def short(self, ctx: Context, rem: float, t: float) -> Verdict:
        v = self.fallback.verdict(ctx)
        return Verdict(v.action, f"expected {rem:.0f} s left < break-even {t:.0f} s "
                                 f"({ctx.history_n} past sessions); rent or buy: {v.reason}",
                       v.recheck_at)


DECIDERS: dict[str, type[Decider]] = {c.name: c for c in (Always, Never, Breakeven, Predicted,
                                                          Adaptive)}
DECISIONS = tuple(DECIDERS)


def make(name: str) -> Decider:
    return DECIDERS[name]()


class SessionHistory:
    """How long past sessions lasted, per (client address, VM) and per VM;
    the last ``keep`` of each."""

    def __init__(self, keep: int = 64):
        self.keep = keep
        self.pairs: dict[tuple[str, str], deque] = {}
        self.vms: dict[str, deque] = {}

    def add(self, client_ip: str, vm: str, duration_s: float) -> None:
        for table, key in ((self.pairs, (client_ip, vm)), (self.vms, vm)):
            d = table.get(key)
            if d is None:
                d = table[key] = deque(maxlen=self.keep)
            d.append(float(duration_s))

    def lengths(self, client_ip: str, vm: str, min_n: int) -> tuple[list[float], str]:
        """The lengths the estimate rests on: that client's with that VM if
        there are ``min_n``, else the VM's with any client, else none."""
        pair = self.pairs.get((client_ip, vm), ())
        if len(pair) >= min_n:
            return list(pair), "client"
        both = self.vms.get(vm, ())
        if len(both) >= min_n:
            return list(both), "vm"
        return [], "none"

    def expected_remaining(self, client_ip: str, vm: str, age_s: float,
                           min_n: int) -> tuple[float | None, int]:
        """The mean residual life at ``age_s``: over the past sessions that
        lasted longer than ``age_s``, the mean of what they lasted beyond it
        (0 if none did).  (None, n) with fewer than ``min_n`` sessions."""
        lengths, _src = self.lengths(client_ip, vm, min_n)
        if not lengths:
            n = max(len(self.pairs.get((client_ip, vm), ())), len(self.vms.get(vm, ())))
            return None, n
        longer = [x - age_s for x in lengths if x > age_s]
        return (sum(longer) / len(longer) if longer else 0.0), len(lengths)
