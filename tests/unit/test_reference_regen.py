"""The committed reference run's tidy CSVs come back byte for byte when the
analysis re-reads its raw trial folders: the proof that a change to the
code that reads events, statistics and summaries changed no result."""
import filecmp
import glob
import os

import pytest

from controller.rundir import RESULTS
from experiments import analysis as A
from experiments import fig27_rtt, fig29_relayed

REF = os.path.join(RESULTS, "reference-180s")


def _dirs(pattern: str) -> list[str]:
    return sorted(glob.glob(os.path.join(REF, "raw", pattern)))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("regen"))
    trials = _dirs("trial-*")
    phases = [d for mode in ("fast", "paper") for d in
              sorted(_dirs(f"{mode}-*"), key=lambda d: int(d.rsplit("-", 1)[1]))]
    assert trials and phases
    A.ping_rows(trials).to_csv(os.path.join(out, "ping.csv"), index=False)
    A.relayed_rows(trials).to_csv(os.path.join(out, "relayed.csv"), index=False)
    A.migration_rows(trials).to_csv(os.path.join(out, "migrations.csv"), index=False)
    A.phase_rows(phases).to_csv(os.path.join(out, "phases.csv"), index=False)
    fig27_rtt.analyse(out)          # rtt_table.csv
    fig29_relayed.analyse(out)      # projection.csv
    return out


@pytest.mark.parametrize("name", ["ping.csv", "relayed.csv", "migrations.csv", "rtt_table.csv",
                                  "projection.csv", "phases.csv"])
def test_reference_csv_regenerates_byte_identical(regenerated, name):
    assert filecmp.cmp(os.path.join(regenerated, name), os.path.join(REF, name), shallow=False)
