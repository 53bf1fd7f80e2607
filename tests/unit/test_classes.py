import pytest

from controller import classes as C


@pytest.mark.parametrize("lo,hi", [(5900, 5999), (49152, 49215), (16509, 16509),
                                   (0, 65535), (1, 2), (1023, 1025), (5900, 5900)])
def test_range_to_masks_covers_exactly_the_range(lo, hi):
    masks = C.range_to_masks(lo, hi)
    covered = {p for p in range(max(0, lo - 300), min(65536, hi + 300))
               if any((p & m) == v for v, m in masks)}
    assert covered == set(range(max(0, lo - 300), min(65536, hi + 300))) & set(range(lo, hi + 1))


def test_range_to_masks_is_minimal_for_aligned_blocks():
    assert C.range_to_masks(49152, 49215) == [(49152, 0xFFC0)]
    assert C.range_to_masks(0, 65535) == [(0, 0)]


@pytest.mark.parametrize("lo,hi", [(10, 9), (-1, 5), (0, 70000)])
def test_bad_ranges_rejected(lo, hi):
    with pytest.raises(ValueError):
        C.range_to_masks(lo, hi)


def test_cookie_round_trip_and_destination_mask():
    ck = C.make_cookie(C.VNC, "10.1.2.3")
    assert C.parse_cookie(ck) == C.CookieInfo(True, C.VNC, "10.1.2.3")
    assert (ck & C.DEST_COOKIE_MASK) == C.dest_cookie("10.1.2.3")
    assert (C.make_cookie(C.OTHER, "10.1.2.3") & C.DEST_COOKIE_MASK) == C.dest_cookie("10.1.2.3")
    assert (C.make_cookie(C.OTHER, "10.1.2.4") & C.DEST_COOKIE_MASK) != C.dest_cookie("10.1.2.3")
    assert C.parse_cookie(C.make_cookie(C.CONTROL)) == C.CookieInfo(True, C.CONTROL, None)
    assert C.parse_cookie(0) == C.CookieInfo(False, None, None)   # os-ken's LLDP flow
