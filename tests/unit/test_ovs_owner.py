"""Bridges carry the run that made them, and a run that finds bridges of
its names says whose they are (testbed/ovs.py), with a fake ovs-vsctl."""
import pytest

from testbed import ovs


class Res:
    def __init__(self, out="", rc=0, err=""):
        self.returncode, self.stdout, self.stderr = rc, out, err


def test_a_failed_list_br_is_an_error_not_an_empty_list():
    with pytest.raises(ovs.OvsError, match="list-br failed .exit 1.: database connection"):
        ovs.list_bridges(run=lambda cmd: Res(rc=1, err="database connection failed\n"))
    assert ovs.list_bridges(run=lambda cmd: Res("s1\ns2\n")) == ["s1", "s2"]
    assert ovs.list_bridges(run=lambda cmd: Res("")) == []


def test_tagging_is_one_call_and_reads_back_per_bridge():
    calls = []

    listing = ('{"data":[["s2",["map",[]]],["s1",["map",[["other","x"],'
               '["ovct-run","pid=7 run=/r/a b"]]]],["s9",["map",[]]]],'
               '"headings":["name","external_ids"]}')

    def run(cmd):
        calls.append(cmd)
        return Res(listing if "list" in cmd else "")
    ovs.tag_bridges(["s1", "s2"], ovs.owner_tag(7, "/r/a b"), run=run)
    assert len(calls) == 1
    assert calls[0].count("set") == 2 and "external_ids:ovct-run=pid=7 run=/r/a b" in calls[0]
    # s3 went away meanwhile: left out, and nobody else's tag is given to it
    assert ovs.bridge_owners(["s1", "s2", "s3"], run=run) == {"s1": "pid=7 run=/r/a b",
                                                               "s2": ""}
    ovs.tag_bridges([], "x", run=run)
    ovs.tag_bridges(["s1"], "", run=run)
    assert ovs.bridge_owners([], run=run) == {}
    assert len(calls) == 2
    with pytest.raises(ovs.OvsError, match="tagging"):
        ovs.tag_bridges(["s1"], "x", run=lambda cmd: Res(rc=1))
    with pytest.raises(ovs.OvsError, match="owners"):
        ovs.bridge_owners(["s1"], run=lambda cmd: Res(rc=1))


def test_the_clash_names_each_owner_and_how_to_remove_a_dead_run_s_bridges():
    owners = {"s1": "pid=10 run=/runs/a", "s2": "pid=10 run=/runs/a",
              "s3": "pid=20 run=/runs/b", "s4": ""}
    msg = ovs.clash_message(owners, alive=lambda pid: pid == 20)
    lines = msg.splitlines()
    assert lines[0] == "OVS bridges ['s1', 's2', 's3', 's4'] already exist; not touching them:"
    assert "  s1, s2: left by the ovct run in /runs/a (pid 10, no longer running)" in lines
    assert "  s3: made by the ovct run in /runs/b (pid 20, still running: stop it first)" in lines
    assert "  s4: not made by an ovct run (Debian's mn, or something of yours?)" in lines
    # only the dead run's bridges are offered for removal
    assert lines[-1] == "  remove what the ended run left with: ovs-vsctl del-br s1 -- del-br s2"
    assert "remove" not in ovs.clash_message({"s9": ""}, alive=lambda pid: False)


@pytest.mark.parametrize("name, cmd, kind", [
    ("python3", "/work/x/.venv/bin/python /work/x/.venv/bin/ovct check", "ovct command"),
    ("sudo", "sudo .venv/bin/ovct up --no-vms", "ovct command"),
    ("python", "python experiments/bench_migration.py --runs 5", "experiment"),
    ("python3", "python3 /usr/bin/mn --custom testbed/mn_topos.py --topo paper", "mn"),
    ("sudo", "sudo mn --test pingall", "mn"),
])
def test_what_drives_a_run_is_seen_on_the_machine(name, cmd, kind):
    from testbed import machine
    assert [k for k, match in machine.PROCESS_KINDS.items() if match(name, cmd)] == [kind]


@pytest.mark.parametrize("cmd", ["python -m pytest tests/integration", "vim ovct.py",
                                 "less experiments/README.md", "cat /usr/bin/mnexec",
                                 "python3 -m ovct_other"])
def test_other_processes_are_not_ours(cmd):
    from testbed import machine
    assert not [k for k, match in machine.PROCESS_KINDS.items() if match("x", cmd)]
