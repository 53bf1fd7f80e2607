"""controller/settings.py: a statistics interval must be positive (mutation
testing, issue 14)."""
import math

import pytest

from controller.settings import Settings


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan])
def test_a_statistics_interval_that_is_not_positive_is_refused_naming_it(bad):
    with pytest.raises(ValueError) as exc:
        Settings(stats_interval=bad)
    assert str(exc.value) == "stats_interval must be > 0"


def test_a_positive_statistics_interval_is_kept():
    assert Settings(stats_interval=0.001).stats_interval == 0.001
    assert Settings().stats_interval == 5.0
