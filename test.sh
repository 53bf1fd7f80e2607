#!/usr/bin/env bash
# Quick start, command 2 of 2: set up (first use only) and run the test suite
# (unit tests, then the root-only integration tests on Mininet/OVS).
# Usage: sudo ./test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
# As root the integration tests must run, never skip silently.
if [ "$(id -u)" -eq 0 ]; then export OVCT_REQUIRE_INTEGRATION=1; fi
# --cov: line and branch coverage of the pure core ([coverage:run] in setup.cfg)
exec .venv/bin/python -m pytest tests --cov --cov-report=term "$@"
