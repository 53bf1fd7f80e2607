#!/usr/bin/env bash
# Mutation testing of the pure core (issue 14) with mutmut 3.
#
# Usage: scripts/mutation.sh [--max-children N] [--head [--tree-tests]] [--keep [--retest]] [FILE.py ...]
#
#   (no FILE)         every module of the scope ([mutmut] only_mutate in
#                     setup.cfg): the controller/ modules that import neither
#                     os_ken nor libvirt, experiments/analysis.py,
#                     testbed/scenario.py, testbed/topology.py; the report
#                     goes to results/mutation/ (report.md, summary.json,
#                     survivors.md)
#   FILE.py ...       only the mutants of these modules (e.g.
#                     controller/trust.py); the report goes to
#                     mutants/report.md and results/ is left alone
#   --max-children N  worker processes (default: the number of cores)
#   --head            test HEAD as committed (a `git archive` copy in
#                     $MUTATION_DIR, default /tmp/ovct-mutation-$UID), not the
#                     working tree: uncommitted changes of a shared checkout
#                     then change nothing, and the report names its commit
#                     (the tooling, this script, scripts/mutation_report.py
#                     and setup.cfg's [mutmut], is the checkout's)
#   --keep            reuse mutants/ and its results: mutmut tests again only
#                     the mutants of functions that changed (and runs the
#                     stats for new tests); with FILE.py, only the mutants
#                     of these modules not checked yet (a stopped run goes
#                     on); by default mutants/ is removed first and every
#                     mutant is tested
#   --retest          with --keep: also test again every mutant that has not
#                     been killed (after tests were added)
#   --tree-tests      with --head: HEAD's code and tests, but the
#                     mutant-killing tests (tests/unit/test_mut_*.py) as
#                     they are in the working tree: new ones, before they
#                     are committed, against the committed modules; the
#                     report says so next to the commit
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
retest=0
head=0
tree_tests=0
files=()
while [ $# -gt 0 ]; do
    case "$1" in
        --max-children) children="$2"; shift 2 ;;
        --max-children=*) children="${1#*=}"; shift ;;
        --keep) keep=1; shift ;;
        --retest) retest=1; shift ;;
        --head) head=1; shift ;;
        --tree-tests) tree_tests=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) files+=("$1"); shift ;;
    esac
done
if [ "$tree_tests" -eq 1 ] && [ "$head" -eq 0 ]; then
    echo "--tree-tests needs --head (without it the working tree is tested anyway)" >&2; exit 2
fi
if [ "$retest" -eq 1 ] && [ "$keep" -eq 0 ]; then
    echo "--retest needs --keep (without it every mutant is tested anyway)" >&2; exit 2
fi

py=.venv/bin/python
if [ ! -x "$py" ]; then
    if [ "$(id -u)" -eq 0 ]; then bash scripts/setup.sh
    else echo "no .venv: run 'sudo scripts/setup.sh' first (or this script with sudo)" >&2; exit 1
    fi
fi

opts=(--max-children "$children")
if [ "$keep" -eq 1 ]; then opts+=(--keep); fi
if [ "$retest" -eq 1 ]; then opts+=(--retest); fi

if [ "$head" -eq 1 ]; then
    # the same script, in a copy of HEAD that keeps only its mutants/ between runs
    dir="${MUTATION_DIR:-/tmp/ovct-mutation-$(id -u)}"
    commit=$(git rev-parse HEAD)
    mkdir -p "$dir"
    find "$dir" -mindepth 1 -maxdepth 1 ! -name mutants -exec rm -rf {} +
    git archive HEAD | tar -x -C "$dir"
    ln -s "$PWD/.venv" "$dir/.venv"
    # the tooling is this checkout's: these scripts and setup.cfg (its
    # [mutmut] section); the code and the tests under test are HEAD's
    cp setup.cfg "$dir/"
    cp scripts/mutation.sh scripts/mutation_report.py "$dir/scripts/"
    label="$commit"
    if [ "$tree_tests" -eq 1 ]; then
        rm -f "$dir"/tests/unit/test_mut_*.py
        cp tests/unit/test_mut_*.py "$dir/tests/unit/"
        changed=$(git status --porcelain --untracked-files=all -- 'tests/unit/test_mut_*.py' | wc -l)
        label="$commit + tests/unit/test_mut_*.py from the working tree ($changed file(s) changed or new)"
    fi
    status=0
    MUTATION_COMMIT="$label" MUTATION_EQUIVALENT="$PWD/results/mutation/equivalent.md" \
        MUTATION_HEAD=1 MUTATION_TREE_TESTS=$tree_tests \
        bash "$dir/scripts/mutation.sh" "${opts[@]}" "${files[@]}" || status=$?
    if [ ${#files[@]} -eq 0 ]; then
        mkdir -p results/mutation
        cp "$dir"/results/mutation/{report.md,summary.json,survivors.md} results/mutation/
        echo "report: results/mutation/report.md (mutants in $dir/mutants)"
    else
        echo "report: $dir/mutants/report.md"
    fi
    exit "$status"
fi

# FILE.py -> the glob of its mutants' names (controller/trust.py -> controller.trust.*)
names=()
for f in "${files[@]}"; do
    grep -qxF "    $f" setup.cfg || { echo "$f is not in [mutmut] only_mutate of setup.cfg" >&2; exit 2; }
    m="${f%.py}"; names+=("${m//\//.}.*")
done
if [ "$keep" -eq 0 ]; then rm -rf mutants; fi
# mutmut copies tests/ into mutants/ over what is there: a test file gone
# since (or one of another checkout) would stay and run
rm -rf mutants/tests
# the tests run experiment scripts from mutants/ (tests/unit/
# test_run_all_also.py): there, experiments/bootstrap.py must find the
# project's venv, or as root it runs scripts/setup.sh (apt, the guest
# image, Open vSwitch) from the unit tier
mkdir -p mutants
ln -sfn "$(readlink -f .venv)" mutants/.venv
if [ "$retest" -eq 1 ]; then
    # mutmut keeps a result unless the mutant is named: name every one not killed
    mapfile -t names < <("$py" scripts/mutation_report.py --not-killed "${files[@]}")
    if [ ${#names[@]} -eq 0 ]; then echo "nothing to test again: every mutant is killed"; fi
elif [ "$keep" -eq 1 ] && [ ${#files[@]} -gt 0 ]; then
    # a named mutant is tested again even if it has a result: to go on with
    # a run that was stopped, name only those not checked yet
    mapfile -t names < <("$py" scripts/mutation_report.py --unchecked "${files[@]}")
    if [ ${#names[@]} -eq 0 ]; then echo "nothing to test: every mutant has a result"; fi
fi

start=$(date +%s)
status=0
if [ ${#names[@]} -gt 0 ] || { [ "$retest" -eq 0 ] && [ ${#files[@]} -eq 0 ]; }; then
    # mutmut runs the suite's stats and clean runs in its own process; a test
    # that leaves a non-daemon thread behind (os-ken's LLDP loops in
    # tests/unit/test_lldp.py) would keep it from exiting once done, so it
    # leaves with os._exit (every result is saved as it comes; mutmut's
    # fork-server isolation avoids this too, but is 9x slower here)
    "$py" -c 'import os, sys
from mutmut.__main__ import cli
code = 0
try:
    cli(sys.argv[1:])
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)' run --max-children "$children" "${names[@]}" || status=$?
fi
wall=$(( $(date +%s) - start ))
echo "mutmut run exited with $status after ${wall} s"

if [ ${#files[@]} -eq 0 ]; then out=results/mutation; else out=mutants; fi
tt=""; if [ "${MUTATION_TREE_TESTS:-0}" = 1 ]; then tt=" --tree-tests"; fi
cmd="scripts/mutation.sh ${opts[*]}${MUTATION_HEAD:+ --head}$tt${files[*]:+ ${files[*]}}"
"$py" scripts/mutation_report.py --out "$out" --wall "$wall" --command "$cmd" \
    --children "$children" "${files[@]}"
exit "$status"
