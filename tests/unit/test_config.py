"""Policy/inventory validation: bad input names the field and stops before
anything starts."""
import pytest

from controller import config as cfg

GOOD = {
    "ovct": {"update_mode": "paper", "hold_time_s": 30, "vnc_ports": [[5900, 5909]]},
    "hypervisors": [
        {"name": "pm1", "uri": "qemu+unix:///system?socket=/x", "address": "10.0.0.11"},
        {"name": "pm2", "uri": "qemu+unix:///system?socket=/y", "address": "10.0.0.12",
         "memory_mib": 1024, "cpus": 4},
    ],
}


def test_good_config_parses_and_round_trips(tmp_path):
    c = cfg.parse(GOOD)
    assert c.ovct.update_mode == "paper" and c.ovct.hold_time_s == 30.0
    assert c.ovct.vnc_ports == ((5900, 5909),)
    assert [h.name for h in c.hypervisors] == ["pm1", "pm2"] and c.hypervisors[1].cpus == 4
    assert c.classes()[0].tcp_ports == ((5900, 5909),)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.dump(c))
    assert cfg.load(str(path)) == c
    assert cfg.parse(None) == cfg.ControllerConfig()


@pytest.mark.parametrize("data,field,text", [
    ({"ovct": {"update_mod": "fast"}}, "ovct.update_mod", "unknown key"),
    ({"ovct": {"update_mode": "slow"}}, "ovct.update_mode", "'fast' or 'paper'"),
    ({"ovct": {"hold_time_s": "soon"}}, "ovct.hold_time_s", ""),
    ({"ovct": {"hold_time_s": -1}}, "ovct.hold_time_s", "greater than or equal"),
    ({"ovct": {"enabled": "yes"}}, "ovct.enabled", "boolean"),
    ({"ovct": {"vnc_ports": [[5999, 5900]]}}, "ovct.vnc_ports", "bad port range"),
    ({"hypervisors": [{"name": "pm1", "uri": "u"}]}, "hypervisors.0.address", "Field required"),
    ({"hypervisors": [{"name": "pm1", "uri": "qemu+unix:///system?socket=/u",
                       "address": "10.0.0.11"},
                      {"name": "pm1", "uri": "qemu+unix:///system?socket=/v",
                       "address": "10.0.0.12"}]},
     "hypervisors.1.name", "duplicate name"),
    ({"hypervisors": [{"name": "pm1", "uri": "qemu+unix:///system?socket=/u",
                       "address": "10.0.0.11"},
                      {"name": "pm2", "uri": "qemu+unix:///system?socket=/v",
                       "address": "10.0.0.11"}]},
     "hypervisors.1.address", "duplicate address"),
    ({"extra": 1}, "extra", "unknown key"),
])
def test_bad_fields_are_named(data, field, text):
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.parse(data, "c.yaml")
    msg = str(exc.value)
    assert msg.startswith("c.yaml: invalid configuration") and field in msg and text in msg


@pytest.mark.parametrize("data,line", [
    ({"\n": {None: 1}}, "'\\n'.None: a key must be a name"),
    ({"ovct": {"a\tb": [{"": 1}]}}, "ovct.'a\\tb'.0.'': a key must be a name"),
    ({"ovct": {True: 1}}, "ovct.True: a key must be a name"),
])
def test_a_bad_key_is_located_on_one_line_as_validation_errors_are(data, line):
    """The path to a key that is not a name is written part by part as
    pydantic's locations are (repr for a key that is not printable), so the
    message stays one line and names the parent."""
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.parse(data, "c.yaml")
    head, *lines = str(exc.value).split("\n")
    assert head == "c.yaml: invalid configuration"
    assert len(lines) == 1 and lines[0].startswith(f"  {line}"), str(exc.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("ovct: [unclosed\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load(str(p))
    with pytest.raises(cfg.ConfigError, match="No such file"):
        cfg.load(str(tmp_path / "none.yaml"))
    p.write_text("- a\n- b\n")
    with pytest.raises(cfg.ConfigError, match="must be a mapping"):
        cfg.load(str(p))


@pytest.fixture
def no_controller_start(monkeypatch):
    """The controller's own main, in-process, with os-ken's start replaced by
    a failure: a validation regression fails this unit test instead of
    starting a controller (the unit tier never starts anything)."""
    from os_ken.base.app_manager import AppManager

    def refuse(*_a, **_kw):
        raise AssertionError("the controller would have started")
    monkeypatch.setattr(AppManager, "run_apps", staticmethod(refuse))
    from controller.__main__ import main
    return main


def test_controller_refuses_a_bad_config_before_listening(tmp_path, capsys, no_controller_start):
    p = tmp_path / "bad.yaml"
    p.write_text("ovct:\n  update_mode: slow\n")
    rc = no_controller_start(["--config", str(p), "--run-dir", str(tmp_path / "run"),
                              "--port", "1"])
    assert rc == 2
    assert "ovct.update_mode" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()          # nothing started, nothing written
    good = tmp_path / "good.yaml"
    good.write_text(cfg.dump(cfg.parse(GOOD)))
    assert no_controller_start(["--config", str(good), "--check-config"]) == 0
    assert "2 hypervisors" in capsys.readouterr().out
