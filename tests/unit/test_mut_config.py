"""controller/config.py: what the other unit tests never call (mutation
testing, issue 14)."""
from controller.config import HypervisorEntry
from controller.hypervisor import HostSpec


def test_a_hypervisor_entry_from_a_host_spec_keeps_every_field():
    spec = HostSpec("pm7", "qemu+unix:///system?socket=/run/pm7.sock", "10.0.0.17", 4096, 3)
    e = HypervisorEntry.of(spec, (5, 2))
    assert (e.name, e.uri, e.address, e.memory_mib, e.cpus, e.attach) == (
        "pm7", "qemu+unix:///system?socket=/run/pm7.sock", "10.0.0.17", 4096, 3, (5, 2))
    assert HypervisorEntry.of(spec).attach is None


def test_the_migration_cap_in_libvirts_unit():
    from controller.config import Policy
    assert Policy().migration_bandwidth_mibps() == 0                     # unlimited
    assert Policy(migration_bandwidth_mbit=1.0).migration_bandwidth_mibps() == 1
    # 8392.8 Mbit/s = 1000.4997 MiB/s: rounds down
    assert Policy(migration_bandwidth_mbit=8392.8).migration_bandwidth_mibps() == 1000
    assert Policy(migration_bandwidth_mbit=8392.81).migration_bandwidth_mibps() == 1001


def test_an_entrys_host_spec_keeps_uri_and_cpus():
    spec = HostSpec("pm7", "qemu+unix:///system?socket=/run/pm7.sock", "10.0.0.17", 4096, 3)
    assert HypervisorEntry.of(spec).spec() == spec


def test_a_dumped_config_reads_back_in_the_models_field_order():
    import yaml
    from controller import config as cfgmod
    cfg = cfgmod.ControllerConfig(hypervisors=(HypervisorEntry.of(
        HostSpec("pm1", "qemu+unix:///system?socket=/run/pm1.sock", "10.0.0.11"), (2, 4)),))
    text = cfgmod.dump(cfg)
    loaded = yaml.safe_load(text)
    assert loaded == cfg.model_dump(mode="json")
    assert list(loaded["ovct"]) == list(cfgmod.Policy.model_fields)
    assert list(loaded["hypervisors"][0]) == list(HypervisorEntry.model_fields)
    assert cfgmod.parse(loaded, "c.yaml", cfgmod.ControllerConfig) == cfg


def test_as_float_turns_ints_into_floats_and_names_what_it_refuses():
    import math
    import pytest
    from controller.config import as_float
    assert as_float(5) == 5.0 and isinstance(as_float(5), float)
    assert as_float(True) is True                                  # a bool is no number here
    assert as_float("x") == "x"
    with pytest.raises(ValueError, match="^number too large$"):
        as_float(10 ** 400)
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="^must be a finite number$"):
            as_float(bad)


def test_the_policys_priors_are_its_own_values():
    from controller.config import Policy
    p = Policy(prior_session_pps=123.0, prior_session_bps=4567.0, prior_transfer_ratio=0.75,
               prior_bytes_per_packet=321.0)
    k = p.priors()
    assert (k.session_pps, k.session_bps, k.transfer_ratio, k.bytes_per_packet) == (
        123.0, 4567.0, 0.75, 321.0)


def test_a_key_given_twice_or_not_a_scalar_is_refused_with_its_line(tmp_path):
    import pytest
    from controller import config as cfgmod
    for text, needle, line in (("ovct:\n  enabled: true\n  enabled: false\n",
                                "key 'enabled' given twice", "line 3, column 3"),
                               ("ovct:\n  enabled: true\n  ? [a, b]\n  : 1\n",
                                "a key that is a list", "line 3, column 5")):
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(cfgmod.ConfigError) as exc:
            cfgmod.load_yaml(str(path))
        assert needle in str(exc.value) and line in str(exc.value), str(exc.value)


def test_a_file_of_exactly_the_limit_is_read_whole_and_one_byte_more_is_refused(tmp_path):
    import pytest
    from controller import config as cfgmod
    tail = "\nx: 1"
    body = "# " + "." * (cfgmod.MAX_FILE_BYTES - len(tail) - 2) + tail
    assert len(body.encode()) == cfgmod.MAX_FILE_BYTES
    ok = tmp_path / "ok.yaml"
    ok.write_text(body)
    assert cfgmod.load_yaml(str(ok)) == {"x": 1}
    big = tmp_path / "big.yaml"
    big.write_text(body + "0")
    with pytest.raises(cfgmod.ConfigError) as exc:
        cfgmod.load_yaml(str(big))
    assert str(exc.value) == f"{big}: larger than {cfgmod.MAX_FILE_BYTES} bytes"


def test_a_document_without_a_source_is_called_config_in_errors():
    import pytest
    from controller import config as cfgmod
    with pytest.raises(cfgmod.ConfigError) as exc:
        cfgmod.parse({"bogus": 1})
    assert str(exc.value).startswith("config: ")


def test_a_file_that_never_ends_is_refused_after_the_limit(monkeypatch):
    """A FIFO or a device named as the config (/dev/zero): it is read up to
    one byte past the limit, never to its end (which does not come)."""
    import pytest

    from controller import config as cfgmod

    class Endless:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size=-1):
            assert size is not None and size >= 0, "read to the end of an endless file"
            return b"\0" * size

    monkeypatch.setattr(cfgmod, "open", lambda path, mode: Endless(), raising=False)
    with pytest.raises(cfgmod.ConfigError) as exc:
        cfgmod.load_yaml("/dev/zero")
    assert str(exc.value) == f"/dev/zero: larger than {cfgmod.MAX_FILE_BYTES} bytes"


def test_a_mapping_nested_too_deeply_is_refused_naming_its_source():
    import pytest

    from controller import config as cfgmod
    data = {}
    for _ in range(5000):
        data = {"a": data}
    with pytest.raises(cfgmod.ConfigError) as exc:
        cfgmod.parse(data, "ovct.yaml")
    assert str(exc.value) == "ovct.yaml: nested too deeply"
