"""The mutation report of scripts/mutation.sh, from mutmut's results in mutants/.

Writes OUT/report.md (per-module counts, the overall score, how it was run),
OUT/summary.json (the same numbers) and OUT/survivors.md (every surviving
mutant with its diff, marked when results/mutation/equivalent.md explains it).

Score: (killed + timeout) / all mutants of the module -- a mutant that makes
the tests hang is detected. Survivors listed as equivalent stay in the
denominator of the score; the "without equivalents" figure leaves them out.
A module with mutants not checked yet (its run stopped, or never ran) is
left out of every figure; its row shows what was checked.
"""
import argparse
import configparser
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from collections import Counter

from mutmut.stats import status_by_exit_code

#: scripts/mutation.sh --head runs in a copy of HEAD: the list and the commit
#: are then the checkout's
EQUIVALENT = os.environ.get("MUTATION_EQUIVALENT") or os.path.join("results", "mutation",
                                                                    "equivalent.md")
MUTANT_NAME = re.compile(r"`([^`\s]+__mutmut_\d+)`")
COLUMNS = ("killed", "timeout", "survived", "no tests", "other")


def scope():
    cfg = configparser.ConfigParser()
    cfg.read("setup.cfg")
    return [p for p in cfg.get("mutmut", "only_mutate").split() if p]


def results(path):
    meta = os.path.join("mutants", path + ".meta")
    if not os.path.exists(meta):
        return {}
    with open(meta, encoding="utf-8") as f:
        return json.load(f)["exit_code_by_key"]


def status(code):
    s = status_by_exit_code[code]
    if s == "not checked":
        return s
    return s if s in COLUMNS else "other"


def equivalents():
    """{mutant name: reason} from equivalent.md ('- `name`: reason' lines)."""
    if not os.path.exists(EQUIVALENT):
        return {}
    found = {}
    with open(EQUIVALENT, encoding="utf-8") as f:
        for line in f:
            m = MUTANT_NAME.search(line)
            if m:
                found[m.group(1)] = line[m.end():].strip(" :-—\n")
    return found


def score(c, leave_out=0):
    total = sum(c[k] for k in COLUMNS) - leave_out
    return 100.0 * (c["killed"] + c["timeout"]) / total if total else float("nan")


def diff(name, path):
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        return get_diff_for_mutant(name, path=path)
    except Exception as e:  # a diff is a help for the reader, not the result
        return f"(no diff: {e!r})"


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--not-killed", action="store_true",
                    help="only print the names of the mutants not killed (scripts/mutation.sh --retest)")
    ap.add_argument("--unchecked", action="store_true",
                    help="only print the names of the mutants not checked yet, or a module's "
                         "glob if it has no results at all (scripts/mutation.sh --keep FILE...)")
    ap.add_argument("--wall", type=int, default=None, help="wall time of the run, s")
    ap.add_argument("--command", default="scripts/mutation.sh")
    ap.add_argument("--children", default="?")
    ap.add_argument("files", nargs="*", help="only these modules (default: the whole scope)")
    a = ap.parse_args(argv)

    files = a.files or scope()
    if a.unchecked:
        for path in files:
            codes = results(path)
            if not codes:
                print(path[:-len(".py")].replace("/", ".") + ".*")
            for name, code in sorted(codes.items()):
                if code is None:
                    print(name)
        return 0
    if a.not_killed:
        for path in files:
            for name, code in sorted(results(path).items()):
                if status(code) not in ("killed", "timeout"):
                    print(name)
        return 0
    if not a.out:
        ap.error("--out is needed")
    eq = equivalents()
    rows, survivors, no_tests = [], [], []
    total = Counter()
    incomplete = []
    for path in files:
        codes = results(path)
        c = Counter({k: 0 for k in COLUMNS + ("not checked",)})
        mine, none = [], []
        for name, code in sorted(codes.items()):
            s = status(code)
            c[s] += 1
            if s == "survived":
                mine.append((name, path))
            elif s in ("no tests", "other"):
                none.append((name, path, status_by_exit_code[code]))
        n_eq = sum(1 for name, _p in mine if name in eq)
        rows.append((path, c, n_eq))
        if c["not checked"] or not os.path.exists(os.path.join("mutants", path + ".meta")):
            # a module whose run did not end (or never ran) counts nowhere
            incomplete.append(path)
            total["not checked"] += c["not checked"]
            continue
        survivors += mine
        no_tests += none
        total += c
        total["equivalent"] += n_eq
    n_eq = total["equivalent"]
    unexplained = [(n, p) for n, p in survivors if n not in eq]
    commit = os.environ.get("MUTATION_COMMIT") or git("rev-parse", "HEAD")
    dirty = "" if os.environ.get("MUTATION_COMMIT") else git("status", "--porcelain",
                                                             "--untracked-files=no")
    import mutmut
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": a.command,
        "git_commit": commit + (" (with uncommitted changes)" if dirty not in ("", "?") else ""),
        "mutmut": mutmut.__version__,
        "python": platform.python_version(),
        "max_children": a.children,
        "wall_s": a.wall,
        "score_percent": round(score(total), 2),
        "score_without_equivalents_percent": round(score(total, n_eq), 2),
        "totals": {k: total[k] for k in COLUMNS} | {"mutants": sum(total[k] for k in COLUMNS),
                                                     "equivalent": n_eq,
                                                     "unexplained_survivors": len(unexplained),
                                                     "not_checked": total["not checked"]},
        "incomplete_modules": incomplete,
        "modules": {p: {k: c[k] for k in COLUMNS} | {"equivalent": e, "score_percent": round(score(c), 2),
                                                     "not_checked": c["not checked"]}
                    for p, c, e in rows},
    }

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    lines = [
        "# Mutation testing of the pure core",
        "",
        "Written by `scripts/mutation_report.py` at the end of `scripts/mutation.sh`",
        "(issue 14). Score = (killed + timeout) / all mutants; equivalent",
        "survivors (`equivalent.md`) count as not killed, and are left out of the",
        "second figure. Only `tests/unit` runs against the mutants.",
        "",
        f"- command: `{a.command}`",
        f"- date: {summary['date']}",
        f"- git commit: {summary['git_commit']}",
        f"- mutmut {summary['mutmut']}, Python {summary['python']}, {a.children} worker(s)",
        f"- wall time: {a.wall} s" if a.wall is not None else "- wall time: ?",
        f"- **score: {summary['score_percent']:.1f} %** "
        f"({total['killed'] + total['timeout']} of {summary['totals']['mutants']} mutants killed); "
        f"without the {n_eq} equivalent mutants: {summary['score_without_equivalents_percent']:.1f} %",
        f"- survivors not explained as equivalent: {len(unexplained)}",
    ]
    if incomplete:
        lines += [f"- **not run to the end** (left out of every figure above and of the "
                  f"**all** row; their rows show what was checked): {', '.join(incomplete)}"]
    lines += [
        "",
        "| module | mutants | killed | timeout | survived | equivalent | no tests | other | score | not checked |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path, c, e in rows + [("**all**", total, n_eq)]:
        n = sum(c[k] for k in COLUMNS)
        sc = "not run to the end" if path in incomplete else f"{score(c):.1f} %"
        lines.append(f"| {path} | {n} | {c['killed']} | {c['timeout']} | {c['survived']} | {e} | "
                     f"{c['no tests']} | {c['other']} | {sc} | {c['not checked']} |")
    lines += ["", "`no tests`: no unit test runs the mutated function at all (mutmut does not",
              "run the suite for it); `other`: suspicious or segfault; `not checked`: not",
              "run yet (not counted in `mutants`, the scores or their denominators).", ""]
    if unexplained:
        lines += ["## Survivors without a test and not explained as equivalent", ""]
        lines += [f"- `{n}`" for n, _ in unexplained] + [""]
    if no_tests:
        lines += ["## Mutants no test reaches or with another outcome", ""]
        lines += [f"- `{n}` ({s})" for n, _, s in no_tests] + [""]
    with open(os.path.join(a.out, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))

    with open(os.path.join(a.out, "survivors.md"), "w", encoding="utf-8") as f:
        f.write("# Surviving mutants\n\nEach with its diff; `equivalent` when equivalent.md explains it.\n\n")
        for name, path in survivors:
            tag = f"equivalent: {eq[name]}" if name in eq else "NOT EXPLAINED"
            f.write(f"## `{name}` ({tag})\n\n```diff\n{diff(name, path)}\n```\n\n")

    print("\n".join(lines[7:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
