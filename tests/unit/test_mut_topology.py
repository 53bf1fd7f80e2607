"""testbed/topology.py: what the other unit tests never call (mutation
testing, issue 14)."""
import pytest

from testbed import topology as T


def test_a_switch_is_found_by_name_and_an_unknown_one_is_a_key_error():
    t = T.paper_topology()
    s = t.switch("s2")
    assert s.name == "s2" and s is next(x for x in t.switches if x.name == "s2")
    assert [t.switch(x.name) for x in t.switches] == t.switches
    with pytest.raises(KeyError, match="s99"):
        t.switch("s99")
