"""controller/routing.py: what the other unit tests never reach (mutation
testing, issue 14)."""
from controller import routing

from tests.unit.test_routing import _paper_up


def test_a_removed_switch_takes_its_own_unverified_links_and_leaves_the_others():
    """s3 is away past the grace while s1 has just come back (its links not
    yet confirmed by LLDP): removing s3 drops s3's link from the ones to
    verify; s1's link to s2 stays to be verified."""
    h = _paper_up()
    t0 = h.now
    h.feed(h.router.switch_leave(3, t0))
    h.feed(h.router.switch_leave(1, t0 + 14))
    h.feed(h.router.switch_enter(1, {1, 2}, t0 + 14.5))
    assert set(h.router.unverified_links) == {(1, 1), (2, 1), (1, 2), (3, 1)}
    h.now = t0 + routing.SWITCH_GRACE_S
    h.feed(h.router.tick(h.now))
    assert 3 not in h.router.view.ports
    left = h.router.unverified_links
    assert (3, 1) not in left and {(1, 1), (2, 1)} <= set(left)
    assert left[(1, 1)] == left[(2, 1)] == t0 + 14.5
