"""OVCT testbed: topologies, network bring-up and measurement helpers."""
from controller.rundir import ROOT  # noqa: F401  (the repository, for everyone)
