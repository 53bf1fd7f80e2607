#!/usr/bin/env bash
# Mutation testing of the pure core (issue 14) with mutmut 3.
#
# Usage: scripts/mutation.sh [--max-children N] [--keep] [FILE.py ...]
#
#   (no FILE)         every module of the scope ([mutmut] only_mutate in
#                     setup.cfg): the controller/ modules that import neither
#                     os_ken nor libvirt, experiments/analysis.py,
#                     testbed/scenario.py, testbed/topology.py; the report
#                     goes to results/mutation/ (report.md, summary.json,
#                     survivors.txt)
#   FILE.py ...       only the mutants of these modules (e.g.
#                     controller/trust.py); the report goes to
#                     mutants/report.md and results/ is left alone
#   --max-children N  worker processes (default: the number of cores)
#   --keep            reuse mutants/ and its cached results (mutmut retests
#                     only what changed); by default mutants/ is removed
#                     first, so every mutant is tested against the current
#                     tests
#
# Only tests/unit runs against the mutants (no root needed, no emulation
# started); as root on a fresh clone it first runs scripts/setup.sh to
# create the venv. Surviving mutants that cannot be killed because they are
# equivalent are listed, one reason each, in results/mutation/equivalent.md;
# the report counts them and lists every survivor that is not there.
set -euo pipefail
cd "$(dirname "$0")/.."

children=$(nproc)
keep=0
files=()
while [ $# -gt 0 ]; do
    case "$1" in
        --max-children) children="$2"; shift 2 ;;
        --max-children=*) children="${1#*=}"; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) files+=("$1"); shift ;;
    esac
done

py=.venv/bin/python
if [ ! -x "$py" ]; then
    if [ "$(id -u)" -eq 0 ]; then bash scripts/setup.sh
    else echo "no .venv: run 'sudo scripts/setup.sh' first (or this script with sudo)" >&2; exit 1
    fi
fi

# FILE.py -> the glob of its mutants' names (controller/trust.py -> controller.trust.*)
globs=()
for f in "${files[@]}"; do
    grep -qxF "    $f" setup.cfg || { echo "$f is not in [mutmut] only_mutate of setup.cfg" >&2; exit 2; }
    m="${f%.py}"; globs+=("${m//\//.}.*")
done

if [ "$keep" -eq 0 ]; then rm -rf mutants; fi
start=$(date +%s)
status=0
"$py" -m mutmut run --max-children "$children" "${globs[@]}" || status=$?
wall=$(( $(date +%s) - start ))
echo "mutmut run exited with $status after ${wall} s"

if [ ${#files[@]} -eq 0 ]; then out=results/mutation; else out=mutants; fi
cmd="scripts/mutation.sh --max-children $children${files[*]:+ ${files[*]}}"
"$py" scripts/mutation_report.py --out "$out" --wall "$wall" --command "$cmd" \
    --children "$children" "${files[@]}"
exit "$status"
