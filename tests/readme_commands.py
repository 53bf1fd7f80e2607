"""The commands README.md shows, and where each one is proven to work.

``shell_commands()`` reads every line of every ```sh block of the README
(comments stripped). ``COMMANDS`` maps each of them to how it is covered:
``("run", test)`` -- ``tests/integration/test_readme.py::<test>`` runs the
line as written (``sudo`` dropped when we are root and it is absent);
``("elsewhere", why)`` -- too long for CI or it is CI itself, with what
covers it instead. ``tests/unit/test_readme_commands.py`` keeps the README
and this table equal, so a command cannot be added, changed or dropped
without its check.
"""
from __future__ import annotations

import os
import re

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")

_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def shell_blocks(text: str | None = None) -> list[list[str]]:
    """Each ```sh block of the README as its command lines, in order."""
    if text is None:
        with open(README, encoding="utf-8") as f:
            text = f.read()
    blocks = []
    for body in _BLOCK.findall(text):
        lines = []
        for raw in body.splitlines():
            line = re.sub(r"\s+#.*$", "", raw).strip()
            if line and not line.startswith("#"):
                lines.append(line)
        blocks.append(lines)
    return blocks


def shell_commands(text: str | None = None) -> list[str]:
    return [c for block in shell_blocks(text) for c in block]


MN_PAPER = ("sudo mn --custom testbed/mn_topos.py --topo paper --switch "
            "ovs,protocols=OpenFlow13,datapath=user --controller remote,ip=127.0.0.1,port=6653 "
            "--test pingall")
MN_MULTI = ("sudo mn --custom testbed/mn_topos.py --topo multisite,6,2,1,3 --switch "
            "ovs,protocols=OpenFlow13,datapath=user --controller remote,ip=127.0.0.1,port=6653 "
            "--test pingall")

COMMANDS: dict[str, tuple[str, str]] = {
    "sudo ./run.sh": (
        "elsewhere", "the main job's full profile takes ~20 min; CI runs the same script's "
        "--quick profile (tests/integration/test_evaluation.py); results/reference is its "
        "committed output"),
    "sudo ./test.sh": ("elsewhere", "it is CI: .ci/run calls it"),
    "sudo .venv/bin/ovct notebook --results results/reference": ("run", "test_notebook_server"),
    "sudo .venv/bin/python -m controller --port 6653 &": ("run", "test_mn_custom_with_controller"),
    MN_PAPER: ("run", "test_mn_custom_with_controller"),
    MN_MULTI: ("run", "test_mn_custom_with_controller"),
    "kill %1": ("run", "test_mn_custom_with_controller"),
    "sudo .venv/bin/ovct preflight": ("run", "test_preflight"),
    "sudo .venv/bin/ovct check": ("run", "test_check_paper"),
    "sudo .venv/bin/ovct check --topo multisite --sites 6 --core 3 --no-vms":
        ("run", "test_check_multisite"),
    "sudo .venv/bin/ovct check --topo multisite --sites 25 --clients 3 --core 5 --no-vms "
    "--pairs 2000": ("elsewhere", "the same 100-host network and check (2,000 sampled pairs, "
                     "first ping) run in CI from Python: tests/integration/test_multisite.py"),
    "sudo .venv/bin/ovct check --topo multisite --sites 4 --core 3 --no-vms --standin 1":
        ("run", "test_check_cluster_standin"),
    "sudo .venv/bin/ovct up --no-vms --standin 1": ("run", "test_up_cluster_interrupted"),
    "sudo .venv/bin/ovct run experiments/scenarios/paper.yaml --standin 1 --out runs/paper-cluster":
        ("run", "test_ovct_run_cluster_standin"),
    "sudo .venv/bin/ovct up --cli": ("run", "test_up_cli_scripted"),
    "sudo .venv/bin/ovct up --bw 100": ("run", "test_up_bw_interrupted"),
    "sudo .venv/bin/ovct up --delay 2ms": ("run", "test_up_delay"),
    "sudo .venv/bin/ovct up": ("run", "test_up_where_migrate"),
    "sudo .venv/bin/ovct where": ("run", "test_up_where_migrate"),
    "sudo .venv/bin/ovct migrate vm1 pm1": ("run", "test_up_where_migrate"),
    "sudo .venv/bin/ovct run experiments/scenarios/paper.yaml --out runs/paper-fast":
        ("run", "test_ovct_run_fast"),
    "sudo .venv/bin/ovct run experiments/scenarios/paper.yaml --mode paper --out runs/paper-paper":
        ("run", "test_ovct_run_paper"),
    "sudo python experiments/sweep_bandwidth.py --out results/sweep-bandwidth": (
        "elsewhere", "12 live migrations with iperf3, ~15 min: an experiment with committed "
        "results (results/sweep-bandwidth), re-analysed in CI by its --plot-only line"),
    "python experiments/sweep_bandwidth.py --plot-only --out results/sweep-bandwidth":
        ("run", "test_plot_only"),
    "sudo python experiments/bench_migration.py --runs 5": ("run", "test_bench_migration"),
    "python experiments/window_convergence.py --out results/window-convergence":
        ("run", "test_plot_only"),
    "python experiments/fig27_rtt.py --plot-only --out results/reference": ("run", "test_plot_only"),
    "python experiments/fig29_relayed.py --plot-only --out results/reference":
        ("run", "test_plot_only"),
    "python experiments/fig31_phases.py --plot-only --out results/reference":
        ("run", "test_plot_only"),
    "python experiments/run_all.py --plot-only --out results/reference": ("run", "test_plot_only"),
    "sudo python experiments/soak.py --migrations 100 --out results/soak": (
        "elsewhere", "100 live migrations: an experiment with committed results "
        "(results/soak), re-analysed in CI by its --plot-only line"),
    "python experiments/soak.py --plot-only --out results/soak": ("run", "test_plot_only"),
    "python experiments/policy_sim.py --out results/policy-sim": (
        "elsewhere", "the simulation is unit-tested (tests/unit/test_policy_sim.py) and its "
        "committed folder results/policy-sim is what this line writes"),
    "sudo python experiments/policy_live.py --out results/policy-live": (
        "elsewhere", "two live runs of 26 min: an experiment with committed results "
        "(results/policy-live), re-analysed in CI by its --plot-only line; its quick form "
        "runs in CI (tests/integration/test_policy_live.py)"),
    "python experiments/policy_live.py --plot-only --out results/policy-live":
        ("run", "test_plot_only"),
    "sudo python experiments/manysite.py --out results/manysite": (
        "elsewhere", "6 guests for 4 min: an experiment with committed results "
        "(results/manysite), re-analysed in CI by its --plot-only line; its quick form runs "
        "in CI (tests/integration/test_manysite.py)"),
    "python experiments/manysite.py --plot-only --out results/manysite": ("run", "test_plot_only"),
    "sudo python experiments/bench_startup.py --out results/startup-scaling --stats-intervals 30": (
        "elsewhere", "networks up to 250 hosts, tens of minutes: a benchmark with committed "
        "results (results/startup-scaling), re-plotted in CI by its --plot-only line; a "
        "100-host start-up runs in CI (tests/integration/test_multisite.py)"),
    "python experiments/bench_startup.py --plot-only --out results/startup-scaling":
        ("run", "test_plot_only"),
    "sudo python experiments/run_all.py --also sweep-bandwidth policy-sim": (
        "elsewhere", "the full profile plus two experiments; --also is unit-tested "
        "(tests/unit/test_run_all_also.py)"),
    ".venv/bin/python -m pytest tests/unit": (
        "elsewhere", "test.sh runs tests/ (unit tier included) in CI; "
        "tests/unit/test_readme_commands.py is part of it"),
    "sudo .venv/bin/python -m pytest tests/integration -x": (
        "elsewhere", "the integration tier this check belongs to; test.sh runs it in CI"),
    "sudo scripts/mutation.sh": (
        "elsewhere", "hours on 2 cores: an experiment with a committed report "
        "(results/mutation)"),
}

# The one README Python block, run as written by test_python_snippet.
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str | None = None) -> list[str]:
    if text is None:
        with open(README, encoding="utf-8") as f:
            text = f.read()
    return PYTHON_BLOCK.findall(text)
