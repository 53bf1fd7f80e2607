"""The README's commands, run as written (see tests/readme_commands.py for
the table that ties every README line to one of these tests).

Each command runs through bash from the repository root, exactly as the
README prints it (``sudo`` included once the set-up has installed it);
what it printed is kept in ``runs/pytest/<time>/readme/<test>.log``.
Long-running commands (``ovct up``, the controller, the notebook server)
are started in their own session and stopped by their PID with the signal
the README names, and must exit cleanly by a deadline."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from testbed import ROOT, machine, ovs
from tests import readme_commands as R
from tests.integration.conftest import run_dir

LOGS = run_dir("readme")


def _bash_line(cmd: str) -> str:
    """The README line, made runnable where sudo is missing (we are root)."""
    if cmd.startswith("sudo ") and shutil.which("sudo") is None and os.geteuid() == 0:
        return cmd[len("sudo "):]
    return cmd


def _log(test: str, text: str) -> None:
    os.makedirs(LOGS, exist_ok=True)
    with open(os.path.join(LOGS, f"{test}.log"), "a", encoding="utf-8") as f:
        f.write(text)
    print(text)


def run(cmd: str, test: str, timeout: float, stdin: str | None = None,
        expect_rc: int | None = 0) -> subprocess.CompletedProcess:
    assert cmd in R.COMMANDS and R.COMMANDS[cmd] == ("run", test), \
        f"{cmd!r} is not a README command checked by {test}"
    p = subprocess.run(["bash", "-c", _bash_line(cmd)], cwd=ROOT, input=stdin, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    _log(test, f"$ {cmd}\n{p.stdout}[exit {p.returncode}]\n\n")
    if expect_rc is not None:
        assert p.returncode == expect_rc, f"{cmd!r} exited {p.returncode}:\n{p.stdout[-3000:]}"
    return p


def _as_typed_at_a_terminal():
    """A command typed at a terminal gets Ctrl-C; a test suite started as a
    background job (`.ci/run &` without job control) has SIGINT and SIGQUIT
    ignored, and its children would inherit that (CI hung once on an `up`
    that never saw the test's SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Background:
    """A README command that keeps running: its output collected by a
    thread, waited on for a line, stopped with a signal to its PID."""

    def __init__(self, cmd: str, test: str, stdin: bool = False):
        assert R.COMMANDS.get(cmd) == ("run", test), cmd
        self.cmd, self.test = cmd, test
        self.proc = subprocess.Popen(["bash", "-c", "exec " + _bash_line(cmd)], cwd=ROOT,
                                     text=True, stdout=subprocess.PIPE,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_as_typed_at_a_terminal)
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        # chunks, not lines: a prompt ("mininet> ") ends without a newline
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 4096):
            self.out.append(chunk.decode(errors="replace"))

    def text(self) -> str:
        return "".join(self.out)

    def type_line(self, line: str) -> None:
        """What a user types at the prompt."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, needle: str, deadline_s: float, times: int = 1) -> None:
        end = time.monotonic() + deadline_s
        while self.text().count(needle) < times:
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"{self.cmd!r} exited {self.proc.returncode} before printing "
                            f"{needle!r}:\n{self.text()[-3000:]}")
            if time.monotonic() > end:
                pytest.fail(f"{self.cmd!r} did not print {needle!r} within {deadline_s} s:\n"
                            f"{self.text()[-3000:]}")
            time.sleep(0.2)

    def wait_exit(self, deadline_s: float) -> int:
        """It ends by itself (e.g. `exit` typed at a prompt)."""
        try:
            rc = self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.cmd!r} did not exit within {deadline_s} s:\n"
                        f"{self.text()[-3000:]}")
        self._reader.join(5)
        _log(self.test, f"$ {self.cmd}\n{self.text()}[exit {rc}]\n\n")
        return rc

    def stop(self, sig: int, deadline_s: float) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            pytest.fail(f"{self.cmd!r} did not exit within {deadline_s} s of "
                        f"{signal.Signals(sig).name}:\n{self.text()[-3000:]}")
        self._reader.join(5)
        _log(self.test, f"$ {self.cmd}\n{self.text()}[{signal.Signals(sig).name} -> exit {rc}]\n\n")
        return rc


@pytest.fixture
def clean_machine():
    before = machine.snapshot()
    yield
    left = machine.left_behind(before)
    assert not left, "left behind on the machine: " + "; ".join(left)


def test_preflight(clean_machine):
    p = run("sudo .venv/bin/ovct preflight", "test_preflight", 120)
    assert "all dependencies present" in p.stdout


def test_check_paper(clean_machine):
    p = run("sudo .venv/bin/ovct check", "test_check_paper", 600)
    assert "OK" in p.stdout.splitlines()[-1]


def test_check_multisite(clean_machine):
    p = run("sudo .venv/bin/ovct check --topo multisite --sites 6 --core 3 --no-vms",
            "test_check_multisite", 600)
    assert "network 'multisite" in p.stdout and "OK" in p.stdout.splitlines()[-1]


def test_check_cluster_standin(clean_machine):
    """Cluster mode with a stand-in second server: the network over both,
    two switch links tunnelled, every pair reachable."""
    p = run("sudo .venv/bin/ovct check --topo multisite --sites 4 --core 3 --no-vms "
            "--standin 1", "test_check_cluster_standin", 600)
    assert ("cluster: local: 5 switches (c1, c2, c3, e1, e3), 6 hosts; srv2 (stand-in): "
            "2 switches (e2, e4), 6 hosts; 2 switch links cross servers (ssh tunnels)"
            ) in p.stdout
    assert "132/132 ordered host pairs" in p.stdout, p.stdout[-2000:]
    assert "OK" in p.stdout.splitlines()[-1]


def test_up_cluster_interrupted(clean_machine):
    """Ctrl-C on a cluster-mode `up`: both servers' nodes, the tunnels, the
    forward and the stand-in (sshd, OVS, namespace) are gone (the fixture
    looks at the machine)."""
    up = Background("sudo .venv/bin/ovct up --no-vms --standin 1", "test_up_cluster_interrupted")
    try:
        up.wait_for("Ctrl-C to stop", 300)
    finally:
        rc = up.stop(signal.SIGINT, 120)
    assert rc == 0
    assert "stopped; everything started was stopped" in up.text()


def test_up_where_migrate(clean_machine):
    up = Background("sudo .venv/bin/ovct up", "test_up_where_migrate")
    try:
        up.wait_for("Ctrl-C to stop", 300)
        assert "vm1 on pm2" in up.text()
        where = run("sudo .venv/bin/ovct where", "test_up_where_migrate", 60)
        assert "vm1" in where.stdout
        mig = run("sudo .venv/bin/ovct migrate vm1 pm1", "test_up_where_migrate", 400)
        assert "done: vm1 now on pm1" in mig.stdout
        where = run("sudo .venv/bin/ovct where", "test_up_where_migrate", 60)
        pm1 = where.stdout.split("pm1:", 1)[1].split("pm2:", 1)[0]
        assert "vm1" in pm1, where.stdout
    finally:
        rc = up.stop(signal.SIGTERM, 120)
    assert rc == 0


def test_up_bw_interrupted(clean_machine):
    up = Background("sudo .venv/bin/ovct up --bw 100", "test_up_bw_interrupted")
    try:
        up.wait_for("Ctrl-C to stop", 300)
    finally:
        rc = up.stop(signal.SIGINT, 120)
    assert rc == 0


def test_up_cli_scripted(clean_machine):
    """Mininet's CLI driven as a user drives it: each line typed once the
    prompt is shown (typed ahead, input can be lost: sudo runs the command
    on a pty of its own, and the CLI resets that terminal -- 'stty sane' --
    before its first prompt; CI lost the first character that way). `exit`
    ends it; so does SIGTERM at the prompt (the CLI swallows Ctrl-C)."""
    cmd = "sudo .venv/bin/ovct up --cli"
    cli = Background(cmd, "test_up_cli_scripted", stdin=True)
    try:
        for k, line in enumerate(("tcl1 ping -c 3 pm2", "nodes", "exit"), 1):
            cli.wait_for("mininet>", 300 if k == 1 else 120, times=k)
            cli.type_line(line)
        rc = cli.wait_exit(180)
    finally:
        if cli.proc.poll() is None:
            cli.stop(signal.SIGTERM, 120)
    assert rc == 0
    out = cli.text()
    assert " 0% packet loss" in out, out[-3000:]
    assert "tcl1" in out.split("nodes", 1)[-1], out[-3000:]
    assert "stopped; everything started was stopped" in out

    term = Background(cmd, "test_up_cli_scripted", stdin=True)
    try:
        term.wait_for("mininet>", 300)
    finally:
        rc = term.stop(signal.SIGTERM, 120)
    assert rc == 0 and "stopped; everything started was stopped" in term.text()


def test_up_delay(clean_machine):
    cmd = "sudo .venv/bin/ovct up --delay 2ms"
    if ovs.netem_available():
        up = Background(cmd, "test_up_delay")
        try:
            up.wait_for("Ctrl-C to stop", 300)
        finally:
            assert up.stop(signal.SIGINT, 120) == 0
    else:
        # The README says it needs sch_netem: without it, a clear refusal
        # before anything starts, not a half-built network.
        p = run(cmd, "test_up_delay", 120, expect_rc=None)
        assert p.returncode != 0
        assert "sch_netem" in p.stdout and "Traceback" not in p.stdout


def test_mn_custom_with_controller(clean_machine):
    """The README's block: the controller in the background, Debian's mn
    on both topology kinds, then ``kill %1`` -- as one bash script, so
    ``%1`` is the controller; it must be gone within a second."""
    block = next(b for b in R.shell_blocks() if R.MN_PAPER in b)
    for line in block:
        assert R.COMMANDS[line] == ("run", "test_mn_custom_with_controller"), line
    script = "\n".join(_bash_line(c) for c in block) + (
        '\nt0=$(date +%s%N); wait %1 && rc=0 || rc=$?\n'
        'echo "controller exited $rc after $(( ($(date +%s%N) - t0) / 1000000 )) ms"')
    p = subprocess.run(["bash", "-c", "set -e\n" + script], cwd=ROOT, text=True, timeout=600,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _log("test_mn_custom_with_controller", f"$ <README block>\n{script}\n{p.stdout}"
         f"[exit {p.returncode}]\n\n")
    assert p.returncode == 0, p.stdout[-4000:]
    assert p.stdout.count("Results: 0% dropped") == 2, p.stdout[-4000:]
    # `wait` gives 143 for a process SIGTERM killed; ours handles it, exits 0
    assert "controller exited 0 " in p.stdout, p.stdout[-2000:]


def test_python_snippet(clean_machine):
    (code,) = R.python_blocks()
    p = subprocess.run([os.path.join(ROOT, ".venv", "bin", "python"), "-c", code], cwd=ROOT,
                       text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    _log("test_python_snippet", f"$ python <README snippet>\n{p.stdout}[exit {p.returncode}]\n")
    assert p.returncode == 0, p.stdout[-3000:]
    rtt, stats = p.stdout.strip().splitlines()[-2:]
    assert 0 < float(rtt) < 100
    assert stats.startswith("{(") and stats.endswith(")}"), stats


def _scenario_run(mode_cmd: str, test: str, out: str) -> None:
    shutil.rmtree(os.path.join(ROOT, out), ignore_errors=True)
    try:
        run(mode_cmd, test, 900)
        assert os.path.exists(os.path.join(ROOT, out, "events.jsonl"))
        assert os.path.exists(os.path.join(ROOT, out, "summary.json"))
    finally:
        # keep the output beside the test logs, not in the checkout
        dest = os.path.join(LOGS, os.path.basename(out))
        if os.path.isdir(os.path.join(ROOT, out)):
            shutil.rmtree(dest, ignore_errors=True)
            shutil.move(os.path.join(ROOT, out), dest)


def test_ovct_run_fast(clean_machine):
    _scenario_run("sudo .venv/bin/ovct run experiments/scenarios/paper.yaml --out runs/paper-fast",
                  "test_ovct_run_fast", "runs/paper-fast")


def test_ovct_run_paper(clean_machine):
    _scenario_run("sudo .venv/bin/ovct run experiments/scenarios/paper.yaml --mode paper "
                  "--out runs/paper-paper", "test_ovct_run_paper", "runs/paper-paper")


def test_ovct_run_cluster_standin(clean_machine):
    """The paper scenario over two servers: pm2 (with both guests) and s3
    on the stand-in; OVCT moves vm1 to pm1 here, across the tunnel."""
    out = "runs/paper-cluster"
    _scenario_run("sudo .venv/bin/ovct run experiments/scenarios/paper.yaml --standin 1 "
                  f"--out {out}", "test_ovct_run_cluster_standin", out)
    summary = json.load(open(os.path.join(LOGS, "paper-cluster", "summary.json")))
    assert summary["initial_placement"]["vm1"] == "pm2"
    assert summary["final_placement"]["vm1"] == "pm1"
    placed = json.load(open(os.path.join(LOGS, "paper-cluster", "testbed.json")))
    assert placed["cluster"]["placement"]["pm2"] == "srv2"


def test_bench_migration(clean_machine):
    results = os.path.join(ROOT, "results")
    before = set(os.listdir(results))
    try:
        p = run("sudo python experiments/bench_migration.py --runs 5", "test_bench_migration",
                900)
    finally:
        for new in set(os.listdir(results)) - before:   # its results-<time>/, kept with the logs
            shutil.move(os.path.join(results, new), os.path.join(LOGS, new))
    assert "median" in p.stdout.lower()


def _digest(folder: str) -> dict[str, str]:
    out = {}
    for base, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


PLOT_ONLY = [c for c, how in R.COMMANDS.items() if how == ("run", "test_plot_only")]


@pytest.mark.parametrize("cmd", PLOT_ONLY)
def test_plot_only(cmd):
    """Re-analysing a committed results folder reproduces it byte for byte:
    every CSV, figure, summary and metadata file it holds (an analysis run
    without --plot-only writes its own new metadata.json)."""
    folder = os.path.join(ROOT, cmd.split("--out ", 1)[1].split()[0])
    assert os.path.isdir(folder), f"{folder} is not committed"
    before = _digest(folder)
    saved = {rel: open(os.path.join(folder, rel), "rb").read() for rel in before}
    try:
        run(cmd, "test_plot_only", 600)
        after = _digest(folder)
    finally:
        for rel, data in saved.items():     # leave the checkout as it was
            with open(os.path.join(folder, rel), "wb") as f:
                f.write(data)
        for rel in set(_digest(folder)) - set(before):
            os.unlink(os.path.join(folder, rel))
    # an analysis that is not --plot-only (window_convergence) records when
    # and on what it ran: its metadata.json is new, all else must be equal
    fresh = {"metadata.json"} if "--plot-only" not in cmd else set()
    changed = sorted(k for k in before if after.get(k) != before[k] and k not in fresh)
    added = sorted(set(after) - set(before))
    assert not changed and not added, f"changed: {changed}; added: {added}"


def test_notebook_server(clean_machine):
    nb = Background("sudo .venv/bin/ovct notebook --results results/reference",
                    "test_notebook_server")
    try:
        nb.wait_for("http://127.0.0.1:", 120)
        url = next(w for w in nb.text().split() if w.startswith("http://127.0.0.1:"))
        import urllib.request
        port = url.split(":")[2].split("/")[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=10) as r:
            assert r.status == 200 and b"version" in r.read()
    finally:
        rc = nb.stop(signal.SIGTERM, 60)
    assert rc == 0
