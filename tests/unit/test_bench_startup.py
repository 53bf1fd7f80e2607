"""experiments/bench_startup.py's pure parts: flow counting, /proc parsing,
the report (a size that failed says why) and the figure."""
import os

import pandas as pd

from experiments import bench_startup as B


def test_flows_per_switch_count_flow_lines_only():
    dumps = {"s1": "OFPST_FLOW reply (OF1.3):\n cookie=0x1, table=0\n cookie=0x2, table=1\n",
             "s2": ""}
    assert B.flows_per_switch(dumps) == [2, 0]


def test_proc_readers_on_this_process():
    assert B.proc_cpu_s(os.getpid()) >= 0
    assert B.proc_rss_mib(os.getpid()) > 1


def _row(hosts, ok=True, **kw):
    r = {"sites": hosts // 5, "core": 1, "hosts": hosts, "switches": hosts // 5 + 1,
         "links": hosts // 5, "run": 1, "ok": ok, "error": None}
    if ok:
        r.update(ready_s=10.0 + hosts / 10, build_s=1.0, start_s=2.0, hosts_configured_s=1.0,
                 switches_connected_s=1.0, links_discovered_s=2.0, hosts_learnt_s=3.0,
                 controller_cpu_s=5.0, controller_rss_mib=80.0, ovs_vswitchd_rss_mib=30.0,
                 flows_per_switch_median=40, flows_per_switch_max=90, ping_pairs=100,
                 ping_pairs_reached=100, ping_check_s=4.0, stats_interval_s=5.0)
    r.update(kw)
    return r


def test_report_names_the_largest_size_that_passed_and_why_one_failed(tmp_path):
    df = pd.DataFrame([_row(10), _row(50), _row(250, ok=False, error="WaitTimeout: hosts")])
    text = B.report(df)
    assert "largest network that started and passed: 50 hosts" in text
    assert "FAILED: WaitTimeout: hosts" in text
    B.plot(df, str(tmp_path))
    assert os.path.getsize(tmp_path / "fig_startup_scaling.png") > 1000
