"""Run the bad-input corpus (tests/bad_input_corpus.py) against two checkouts and count what
went wrong in each: tracebacks, messages that do not name the bad key, runs that leave files
behind or change the user's files, wrong exit statuses, more than one error line.

    git worktree add /tmp/old 52a6244
    OMP_NUM_THREADS=1 python scripts/bad_input_report.py --old /tmp/old --new . \
        --cache results/bad_input_report.json

Every command runs through the checkout's own console entry point (tests/forked_cli.py: one
import, then a forked process per command). Cases with no counterpart in the old version
(keys it did not have) are left out of the comparison; cases whose keys were renamed run
with the old names (``Case.old``). Results are kept in ``--cache`` per checkout and case, so
a rerun only runs what is new. Old runs that do not refuse their input train for real (the
old code checked little before training), so the old column takes a while.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bad_input_corpus import SAME, Case, SetupUnavailable, corpus, run_case  # noqa: E402
from tests.forked_cli import ForkedCli  # noqa: E402

COUNTS = ("accepted: ran as if valid (exit 0)", "traceback",
          "refused, but not in exactly one line", "refused, exit status not 2",
          "refused, line does not name the key", "files left behind or user files changed",
          "  of which by refused runs", "allowed values not in our wording")


def _revision(repo: Path) -> str:
    out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or str(repo)


def _run(repo: Path, cases: list[tuple[Case, tuple[str, ...], str]], cache: dict,
         timeout: float) -> dict[str, dict]:
    """Each case's outcome in ``repo`` (from the cache where it is there)."""
    rev = _revision(repo)
    mine = cache.setdefault(rev, {})
    todo = [c for c in cases if c[0].id not in mine]
    if todo:
        cli = ForkedCli(repo)
        try:
            for n, (case, args, key) in enumerate(todo, 1):
                with tempfile.TemporaryDirectory() as tmp:
                    probe = Case(args, key, case.allowed, case.setup, status=case.status)
                    try:
                        o = run_case(cli, probe, Path(tmp) / "case", args, timeout=timeout)
                    except SetupUnavailable as exc:
                        print(f"  skipped {case.id}: {exc}", file=sys.stderr)
                        continue
                mine[case.id] = {"status": o.status, "lines": o.lines[-3:],
                                 "traceback": o.traceback, "names_key": o.names_key,
                                 "names_allowed": o.names_allowed, "changed": o.changed[:5]}
                print(f"  [{rev}] {n}/{len(todo)} {case.id}: status {o.status}",
                      file=sys.stderr, flush=True)
        finally:
            cli.close()
    return {c[0].id: mine[c[0].id] for c in cases if c[0].id in mine}


def _tally(results: dict[str, dict]) -> dict[str, int]:
    runs = list(results.values())
    refused = [r for r in runs if r["status"] != 0]
    return {
        COUNTS[0]: len(runs) - len(refused),
        COUNTS[1]: sum(r["traceback"] for r in runs),
        COUNTS[2]: sum(len(r["lines"]) != 1 for r in refused),
        COUNTS[3]: sum(r["status"] != 2 for r in refused),
        COUNTS[4]: sum(not r["names_key"] for r in refused),
        COUNTS[5]: sum(bool(r["changed"]) for r in runs),
        COUNTS[6]: sum(bool(r["changed"]) for r in refused),
        COUNTS[7]: sum(not r["names_allowed"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="the older checkout (e.g. a git worktree)")
    parser.add_argument("--new", type=Path, default=ROOT)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}

    cases = corpus()
    new_cases = [(c, c.args, c.key) for c in cases]
    both = [c for c in cases if c.old is not None]
    try:
        new = _run(args.new, new_cases, cache, args.timeout)
        old = _run(args.old, [(c, c.args if c.old is SAME else tuple(c.old),
                               c.key if c.old is SAME else c.old_key) for c in both],
                   cache, args.timeout) if args.old else None
    finally:
        if args.cache:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            args.cache.write_text(json.dumps(cache, indent=1))

    in_both = {c.id for c in both}
    print(f"corpus: {len(cases)} cases; {len(both)} exist in both versions (compared)\n")
    columns = [("new, whole corpus", _tally(new))]
    if old is not None:
        columns = [(f"old {_revision(args.old)}", _tally(old)),
                   (f"new {_revision(args.new)}",
                    _tally({k: v for k, v in new.items() if k in in_both})), *columns]
    width = max(len(c) for c in COUNTS)
    print(f"{'cases with':<{width}} | " + " | ".join(name for name, _ in columns))
    print("-" * width + "-|-" + "-|-".join("-" * len(name) for name, _ in columns))
    for count in COUNTS:
        print(f"{count:<{width}} | " + " | ".join(f"{t[count]:>{len(name)}}"
                                                 for name, t in columns))
    failing = [k for k, r in new.items() if r["traceback"] or len(r["lines"]) != 1
               or r["status"] != 2 or not r["names_key"] or r["changed"]
               or not r["names_allowed"]]
    print(f"\nnew version, cases still failing: {len(failing)}")
    for k in failing:
        print(f"  {k}: {new[k]['lines']}")


if __name__ == "__main__":
    main()
