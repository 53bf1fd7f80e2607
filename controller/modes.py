"""OVCT's network-update modes (standard library only: the experiment
scripts read it before they have switched into the project's venv).

* ``fast`` -- make-before-break: the new path is staged while the VM
  migrates and switched the moment it resumes at the destination;
* ``paper`` -- the 2014 report's: after the migration completed, delete every
  flow for the VM's address, then install the new ones.
"""
FAST, PAPER = "fast", "paper"
UPDATE_MODES = (FAST, PAPER)
