"""The 2014 OVCT report's published numbers (``../shared/paper/SUMMARY.md``),
in one place: the summary, the figures and the notebook show them beside
ours -- never mixed into our data."""

#: Fig. 27/28: ping RTT thin client -> VM, mean of 20 pings (ms)
RTT_MEAN_MS = {
    ("tcl1", "vm1", "before"): 6.02, ("tcl1", "vm2", "before"): 5.59,
    ("tcl2", "vm1", "before"): 6.88, ("tcl2", "vm2", "before"): 6.55,
    ("tcl1", "vm1", "after"): 2.77, ("tcl1", "vm2", "after"): 2.75,
    ("tcl2", "vm1", "after"): 2.98, ("tcl2", "vm2", "after"): 2.83,
}
RTT_BEFORE_MEAN_MS = 6.26          # overall mean, before OVCT
RTT_AFTER_MEAN_MS = 2.84           # overall mean, after
RTT_CHANGE_MEAN_PCT = -55          # "about 55 % lower"

#: Fig. 29/30: packets relayed by all switches over 10 hours
REDUCTION_10H_PCT = 32             # "up to 32 % lower" at 10 h
BREAKEVEN_H = 8.5                  # the curves cross at about 8.5 h

#: Fig. 31: time per phase (s)
DECISION_S = 10                    # detection + placement (SSH checks)
MIGRATION_S = 210                  # live migration of a 1 GB VM
DOWNTIME_S = 15                    # service interruption

#: Fig. 31's phases as the figure script names its quantities
PHASE_S = {"detect_to_decision": DECISION_S, "migration": MIGRATION_S,
           "qemu_downtime": DOWNTIME_S}
