"""run_all.py --also: every listed experiment is a script that exists and
takes --out, and the table says truly whether it can re-plot."""
import importlib
import os

import pytest

from experiments import run_all
from experiments.common import ROOT


@pytest.mark.parametrize("name", sorted(run_all.ALSO))
def test_also_names_a_script_with_out_and_true_replot_flag(name, capsys):
    """Asked in-process: run as a program, a script outside the venv would
    run the set-up first (bootstrap.ensure_venv), which the unit tier never does."""
    script, _what, replots = run_all.ALSO[name]
    assert os.path.exists(os.path.join(ROOT, "experiments", script))
    mod = importlib.import_module("experiments." + script.removesuffix(".py"))
    with pytest.raises(SystemExit) as done:
        mod.main(["--help"])
    assert done.value.code == 0
    helptext = capsys.readouterr().out
    assert "--out" in helptext
    assert ("--plot-only" in helptext) == replots


def test_plot_only_skips_what_cannot_replot(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(run_all.subprocess, "call", lambda cmd: ran.append(cmd) or 0)
    assert run_all.run_also(["policy-sim", "soak"], "/tmp/x", plot_only=True) == 0
    assert [os.path.basename(c[1]) for c in ran] == ["soak.py"]
    assert ran[0][-3:] == ["--out", "/tmp/x/soak", "--plot-only"]
    assert "policy-sim: has no --plot-only, skipped" in capsys.readouterr().out


def test_a_failing_experiment_stops_the_rest(monkeypatch):
    ran = []
    monkeypatch.setattr(run_all.subprocess, "call", lambda cmd: ran.append(cmd) or 3)
    assert run_all.run_also(["soak", "policy-sim"], "/tmp/x", plot_only=False) == 3
    assert len(ran) == 1
