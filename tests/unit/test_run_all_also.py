"""run_all.py --also: every listed experiment is a script that exists and
takes --out, and the table says truly whether it can re-plot."""
import os
import subprocess
import sys

import pytest

from experiments import run_all
from experiments.common import ROOT


@pytest.mark.parametrize("name", sorted(run_all.ALSO))
def test_also_names_a_script_with_out_and_true_replot_flag(name):
    script, _what, replots = run_all.ALSO[name]
    path = os.path.join(ROOT, "experiments", script)
    helptext = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True,
                              timeout=60, check=True).stdout
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
