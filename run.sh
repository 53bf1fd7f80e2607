#!/usr/bin/env bash
# Quick start, command 1 of 2: set up (first use only) and run the main job.
# Usage: sudo ./run.sh [options of experiments/run_all.py]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/python experiments/run_all.py "$@"
