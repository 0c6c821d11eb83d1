r"""The leaderboard: every finished job's metrics.csv under some results folders, aggregated
over seeds into one table per dataset x model x scenario, methods ranked by avg_gap.

    unlearnbench-leaderboard results/sweeps/digits_all results/sweeps/fashion_all \
        -o results/leaderboard

writes ``LEADERBOARD.md``, ``leaderboard.csv`` (tidy: one row per table row and metric),
``leaderboard.html`` and ``plots/*.png`` (radar chart per method, avg_gap vs speedup). Jobs of
``unlearnbench-privacy`` under the same folders (their ``privacy.csv``) make a "Privacy"
section (``report/privacy.py``) and ``privacy.csv`` (tidy).
Jobs without a ``done`` marker are ignored and counted; failed jobs are shown as failed.
A finished job whose files are unreadable (not UTF-8, not CSV, missing columns, a seed or
metric that is not a number, bad YAML) is skipped with a one-line warning naming the file.
Files are read as plain data: YAML without tags or interpolation (a `${oc.env:...}` stays text),
and everything from them is escaped before it goes into LEADERBOARD.md or the HTML page.
No torch import: it reads files only.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import shlex
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import UserError
from ..schema import (
    AVG_GAP,
    COST,
    DONE,
    EXTRA_SCORES,
    GAP_METRICS,
    GAPS,
    GEN_GAPS,
    GEN_SHOWN_METRICS,
    NON_SEMANTIC_KEYS,
    ORIGINAL_LABEL,
    RANKED_BY,
    SCENARIO_SCORES,
    SCORES,
    SUMMARY,
    TAMPER,
    gap_metrics,
    ranking_value,
)
from . import privacy
from .configs import BadJob, differing, job_config, label, method_variant, read_yaml
from .tables import Table, ci95

TABLE_KEYS = ["dataset", "model", "scenario"]
# a column only where some row has it
# (task=inpainting's tables: its judge-space metrics and `summary`, what they are ranked by)
GEN_METRICS = [c for c in GEN_SHOWN_METRICS if c not in (*COST, SUMMARY)]
SHOWN = [*SCORES, *SCENARIO_SCORES, *EXTRA_SCORES, *GEN_METRICS, AVG_GAP, SUMMARY, *COST,
         *TAMPER]
METRICS = SHOWN + GAPS + GEN_GAPS
HEADERS = {"RTE_s": "RTE (s)", "avg_gap": "avg_gap ↓", "summary": "summary ↓"}
# Config keys that never make two jobs different results (where things go, how they print).
IGNORED = {"seed", "device", *NON_SEMANTIC_KEYS}
NO_SPARSITY = ("", "none", "dense")
REFERENCE, ORIGINAL = "retrain", ORIGINAL_LABEL
TUNED = "method.runner.tuned."  # where a job's config records the tuned file it used
MIN_SEEDS = 5  # fewer seeds than this: the table says so
TEXT_COLUMNS = ["dataset", "model", "scenario", "method", "role", "status"]
PROG = "unlearnbench-leaderboard"


def _one_line(text: object) -> str:
    """Control characters (a newline in a hostile folder name or reason) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)


def _short(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)  # str: numpy scalars plainly
    return text if len(text) <= 40 else text[:37] + "..."


def _read_metrics(csv: Path) -> pd.DataFrame:
    """A job's metrics.csv, checked: the schema's key columns, integer seeds, numeric metrics,
    one row per role."""
    if not csv.is_file():
        raise BadJob(f"{csv}: not a regular file")
    try:
        df = pd.read_csv(csv, encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        why = "empty file" if isinstance(exc, pd.errors.EmptyDataError) else \
            f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        raise BadJob(f"{csv}: unreadable ({why})") from None
    missing = [c for c in [*TEXT_COLUMNS, "seed"] if c not in df.columns]
    if missing:
        raise BadJob(f"{csv}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise BadJob(f"{csv}: no rows")
    for c in TEXT_COLUMNS:
        if df[c].isna().any():
            raise BadJob(f"{csv}: empty {c} in row {int(df[c].isna().idxmax()) + 1}")
        df[c] = df[c].astype(str)
    seeds = pd.to_numeric(df["seed"], errors="coerce")
    bad = seeds.isna() | (seeds != seeds.round())
    if bad.any():
        i = int(bad.idxmax())
        raise BadJob(f"{csv}: seed {_short(df['seed'].iat[i])} in row {i + 1} is not an integer")
    df["seed"] = seeds.astype("int64")
    for m in [m for m in METRICS if m in df.columns]:
        values = pd.to_numeric(df[m], errors="coerce")
        bad = values.isna() & df[m].notna()
        if bad.any():
            i = int(bad.idxmax())
            raise BadJob(f"{csv}: {m} {_short(df[m].iat[i])} in row {i + 1} is not a number")
        df[m] = values
    if df["role"].duplicated().any():
        role = df["role"][df["role"].duplicated()].iat[0]
        raise BadJob(f"{csv}: more than one row for role {_short(role)}")
    df["reason"] = df["reason"].fillna("").astype(str) if "reason" in df else ""
    return df


def _sparsity(cfg: dict[str, str]) -> str:
    """`omp 0.5` for a job on a pruned model, `dense` otherwise (or with no sparsity group)."""
    name = cfg.get("sparsity.name", "")
    if name.lower() in NO_SPARSITY:
        return "dense"
    rate = cfg.get("sparsity.rate")
    return f"{name} {rate}" if rate is not None else name


def _tuning(cfg: dict[str, str]) -> str:
    """The tuning budget a job's hyperparameters came from, in words ('' if never tuned)."""
    if f"{TUNED}trials" not in cfg:
        return ""
    seeds = int(cfg.get(TUNED + "seeds") or 1)  # absent: tuned before trials had seeds
    per_trial = (f" × {seeds} seeds (objective averaged over seeds 0-{seeds - 1})"
                 if seeds > 1 else ", one seed each (seed 0)")
    budget = (f"{cfg[TUNED + 'trials']} trials ({cfg.get(TUNED + 'sampler', 'TPE')})"
              f"{per_trial}, "
              f"validation split {cfg.get(TUNED + 'validation')}"
              f"{' of D_r' if cfg.get(TUNED + 'validation_from') == 'retain' else ''}, "
              f"max_cost {cfg.get(TUNED + 'max_cost')} × retrain time")
    if f"{TUNED}trial" not in cfg:  # no feasible trial: the plain defaults ran
        budget += "; no trial within max_cost, so plain defaults"
    return budget


@dataclass
class Jobs:
    """The rows of every finished job, each tagged with its table and row identity."""

    rows: pd.DataFrame
    finished: int = 0
    unfinished: int = 0
    commands: list[str] = field(default_factory=list)
    skipped: int = 0


def _sweep_command(multirun_yaml: Path) -> str | None:
    """The `unlearnbench -m ...` line that produced a sweep folder, from Hydra's record, with
    the overrides as typed (never resolved)."""
    try:
        overrides = read_yaml(multirun_yaml)["hydra"]["overrides"]
        task, extra = overrides["task"] or [], overrides.get("hydra") or []
        if not all(isinstance(o, str | int | float) for o in [*task, *extra]):
            raise TypeError("overrides are not a list of strings")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, LookupError, TypeError,
            AttributeError) as exc:
        _warn(f"ignoring {multirun_yaml}: not a Hydra multirun record ({type(exc).__name__}: "
              f"{exc})")
        return None
    extra = [o for o in map(str, extra) if not o.startswith("hydra.mode=")]
    return "unlearnbench -m " + " ".join(shlex.quote(str(o)) for o in [*task, *extra])


def load(dirs: Sequence[Path]) -> Jobs:
    """Read every finished job below ``dirs``; tag rows with table, context and variant."""
    frames, configs, unfinished, commands, skipped = [], [], 0, [], 0
    for root in dirs:
        for record in sorted(root.rglob("multirun.yaml")):
            command = _sweep_command(record)
            if command and command not in commands:
                commands.append(command)
        for csv in sorted(root.rglob("metrics.csv")):
            if not (csv.parent / DONE).exists():
                unfinished += 1
                continue
            try:
                df, cfg = _read_metrics(csv), job_config(csv.parent)
            except BadJob as exc:
                _warn(f"skipping {exc}")
                skipped += 1
                continue
            df["job"] = str(csv.parent)
            frames.append(df)
            configs.append(cfg)
    if not frames:
        return Jobs(pd.DataFrame(), 0, unfinished, commands, skipped)
    for df, cfg in zip(frames, configs, strict=True):
        df["sparsity"] = _sparsity(cfg)
        df["tuning"] = _tuning(cfg)
    jobs = pd.concat(frames, ignore_index=True)
    by_job = dict(zip((df["job"].iat[0] for df in frames), configs, strict=True))
    jobs["context"], jobs["variant"] = "", ""
    # Jobs of one table that differ in more than method and sparsity (another recipe, another
    # forget fraction) are not comparable: they get their own table, named by the difference.
    for _, table in jobs.groupby(TABLE_KEYS, sort=False):
        names = list(dict.fromkeys(table.job))
        cfgs = [by_job[n] for n in names]
        ctx_keys = differing(cfgs, lambda k: k.split(".")[0] not in IGNORED | {"method",
                                                                                "sparsity"})
        for name, cfg in zip(names, cfgs, strict=True):
            jobs.loc[jobs.job == name, "context"] = label(cfg, ctx_keys)
    # Runs of one method with different hyperparameters are separate rows, named likewise.
    for _, group in jobs.groupby([*TABLE_KEYS, "context", "method", "sparsity"], sort=False):
        names = list(dict.fromkeys(group.job))
        cfgs = [by_job[n] for n in names]
        var_keys = differing(cfgs, method_variant)
        for name, cfg in zip(names, cfgs, strict=True):
            jobs.loc[jobs.job == name, "variant"] = label(cfg, var_keys)
    return Jobs(jobs, len(frames), unfinished, commands, skipped)


def _row_label(method: str, sparsity: str, variant: str) -> str:
    parts = [method] + ([sparsity] if sparsity != "dense" else []) + ([variant] if variant else [])
    return " · ".join(parts)


def _aggregate(rows: pd.DataFrame) -> dict[str, Any]:
    """Mean, std and seed count over the ok rows; count and reasons of the failed ones."""
    ok = rows[rows.status == "ok"]
    failed = rows[rows.status != "ok"]
    out: dict[str, Any] = {"n": len(ok), "n_failed": len(failed),
                           "failures": [f"seed {int(r.seed)}: {r.get('reason', '')}"
                                        for _, r in failed.iterrows()]}  # seeds checked on read
    for m in METRICS:
        values = pd.to_numeric(ok[m], errors="coerce") if m in ok else pd.Series(dtype=float)
        values = values.dropna()
        out[m] = (float(values.mean()) if len(values) else math.nan,
                  float(values.std(ddof=1)) if len(values) > 1 else math.nan)
    return out


def _original_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The original model once per seed, with its gaps to the same seed's retrain."""
    out = []
    for _, job in table.groupby("job", sort=False):
        roles = job.set_index("role")
        if not {"original", "retrain"} <= set(roles.index):
            continue
        orig, ref = roles.loc["original"].copy(), roles.loc["retrain"]
        if not all(m in orig.index for m in GAP_METRICS):  # another task's job (inpainting):
            out.append(orig)                                # its own gaps, as written
            continue
        for column, value in gap_metrics(orig, ref, GAP_METRICS).items():
            orig[column] = value
        out.append(orig)
    return pd.DataFrame(out).drop_duplicates(subset=["seed"]) if out else pd.DataFrame()


def build_tables(jobs: Jobs) -> list[Table]:
    """Group, aggregate over seeds, rank by avg_gap (tables without it, task=inpainting: by
    summary); retrain first, the original (do nothing) ranked among the methods."""
    tables = []
    keys = [*TABLE_KEYS, "context"]
    for key, table in jobs.rows.groupby(keys, sort=True):
        unlearned = table[table.role == "unlearned"]
        rows = []
        for (method, sparsity, variant), group in unlearned.groupby(
                ["method", "sparsity", "variant"], sort=True):
            kind = "reference" if method == REFERENCE else "method"
            rows.append({"label": _row_label(method, sparsity, variant), "method": method,
                         "sparsity": sparsity, "variant": variant, "kind": kind,
                         "tuning": next((t for t in group.tuning if t), ""),
                         **_aggregate(group.drop_duplicates(subset=["seed"]))})
        if not any(r["kind"] == "reference" for r in rows):  # no retrain job: its reference rows
            refs = table[table.role == "retrain"].drop_duplicates(subset=["seed"])
            rows.append({"label": f"{REFERENCE} (reference)", "method": REFERENCE,
                         "sparsity": "dense", "variant": "", "kind": "reference", "tuning": "",
                         **_aggregate(refs)})
        originals = _original_rows(table)
        if not originals.empty:
            rows.append({"label": ORIGINAL, "method": "original", "sparsity": "dense",
                         "variant": "", "kind": "original", "tuning": "",
                         **_aggregate(originals)})

        def order(r: dict[str, Any]) -> tuple[int, float, str]:
            gap = ranking_value({c: r[c][0] for c in RANKED_BY})  # the means
            kind = 0 if r["kind"] == "reference" else 1
            if r["kind"] != "reference" and r["n"] == 0:
                kind = 2  # every seed failed: after the ranked rows
            return kind, (math.inf if math.isnan(gap) else gap), r["label"]

        rows.sort(key=order)
        rank = 0
        for r in rows:  # the original (do nothing) is ranked like a method
            if r["kind"] != "reference" and r["n"] > 0:
                rank += 1
                r["rank"] = str(rank)
            else:
                r["rank"] = {"reference": "ref"}.get(r["kind"], "–")
        tables.append(Table(*key, rows))
    return tables


def _decimals(metric: str, mean: float) -> int:
    """Percentages with 2 decimals; seconds and speedups with 3 significant digits (min 2)."""
    if metric not in ("RTE_s", "speedup") or mean == 0 or not math.isfinite(mean):
        return 2
    return min(4, max(2, 2 - math.floor(math.log10(abs(mean)))))


def cell(mean: float, half_width: float, metric: str = "UA") -> str:
    """`mean ± half-width of the 95% CI` (plain numbers float() can parse), the mean alone
    for one seed, `—` for none."""
    if math.isnan(mean):
        return "—"
    d = _decimals(metric, mean)
    return f"{mean:.{d}f}" if math.isnan(half_width) else f"{mean:.{d}f} ± {half_width:.{d}f}"


def frame(table: Table) -> pd.DataFrame:
    """The table as shown: rank, method, seeds, then mean ± 95% CI of each metric."""
    shown = [m for m in SHOWN if any(not math.isnan(r[m][0]) for r in table.rows)]
    out = []
    for r in table.rows:
        seeds = str(r["n"]) + (f" ({r['n_failed']} failed)" if r["n_failed"] else "")
        out.append({"rank": r["rank"], "method": r["label"], "seeds": seeds,
                    **{HEADERS.get(m, m): cell(r[m][0], ci95(r[m][1], r["n"]), m)
                       for m in shown}})
    return pd.DataFrame(out)


def tuning_note(table: Table) -> str:
    """Which rows use tuned hyperparameters and the budget read from their tuned files, which
    use plain defaults; and a warning under MIN_SEEDS seeds."""
    methods = [r for r in table.rows if r["kind"] == "method"]
    budgets: dict[str, list[str]] = {}
    for r in methods:
        if r["tuning"]:
            budgets.setdefault(r["tuning"], []).append(r["label"])
    plain = [r["label"] for r in methods if not r["tuning"]]
    parts = [f"Tuned ({budget}): {', '.join(labels)}."
             for budget, labels in budgets.items()]
    if plain:
        parts.append(f"Plain defaults (never tuned for this setting): {', '.join(plain)}.")
    fewest = min((r["n"] for r in table.rows if r["n"] > 0), default=0)
    if 0 < fewest < MIN_SEEDS:
        parts.append(f"Only {fewest} seed(s) in some rows: fewer than {MIN_SEEDS}, the "
                     "intervals are wide or missing.")
    return " ".join(parts)


def tidy(tables: list[Table]) -> pd.DataFrame:
    """One row per table row and metric: for pandas."""
    out = []
    for t in tables:
        for r in t.rows:
            for m in METRICS:
                out.append({"dataset": t.dataset, "model": t.model, "scenario": t.scenario,
                            "context": t.context, "sparsity": r["sparsity"],
                            "method": r["method"], "variant": r["variant"], "label": r["label"],
                            "kind": r["kind"], "rank": r["rank"], "metric": m,
                            "mean": r[m][0], "std": r[m][1], "ci95": ci95(r[m][1], r["n"]),
                            "n_seeds": r["n"], "n_failed": r["n_failed"],
                            "tuning": r["tuning"]})
    return pd.DataFrame(out)


LEGEND = ("Cells are mean ± half-width of the 95% confidence interval over seeds (Student t, "
          "n − 1 degrees of freedom; `seeds` = how many finished ok; failed ones are counted "
          "and listed). Rows are ranked by avg_gap, the mean of |UA|, |RA|, |TA| and |MIA| gaps "
          "to the retrained model (lower is closer to retraining). `retrain` is the reference "
          "(gaps 0; its RTE is its training time); `original (do nothing)` is the model before "
          "unlearning, ranked like a method: a method below it is worse than doing nothing. "
          "RTE = wall-clock seconds of the unlearning step; speedup = retrain seconds / RTE. "
          "UA, RA, TA, FTA, MIA, MI_success in percent. relearn_FA = forget accuracy after the "
          "retain-only relearn attack (a short fine-tune on D_r, no forget sample; class-wise: "
          "on the forgotten classes' test samples, random: on D_f); gap_relearn = its "
          "|difference| to the retrain's, not part of avg_gap. Class-wise jobs also show AIN "
          "(relearn steps on D_f ÷ the retrain's; AIN_censored = share of seeds where it is a "
          "bound because a relearn hit its cap) and ZRF (1 − JS to a random model on D_f). "
          "Inpainting tables (task=inpainting) are ranked by summary instead: the mean of 100 × "
          "the gaps of retain_cos, forget_cos and forget_recognised to the retrain's; FD, IS "
          "and cos are measured in the judge classifier's feature space on held-out retain and "
          "forget images (README \"Image-to-image generative unlearning\").")


def _commands(jobs: Jobs, argv: Sequence[str]) -> list[str]:
    return [*jobs.commands, "unlearnbench-leaderboard " + " ".join(shlex.quote(a) for a in argv)]


def _stats(jobs: Jobs) -> str:
    failed = 0 if jobs.rows.empty else int(((jobs.rows.role == "unlearned")
                                             & (jobs.rows.status != "ok")).sum())
    skipped = f"; {jobs.skipped} unreadable job(s) skipped" if jobs.skipped else ""
    return (f"{jobs.finished} finished job(s), {failed} failed; "
            f"{jobs.unfinished} unfinished job(s) ignored{skipped}.")


_MD_SYNTAX = re.compile(r"([\\`*\[\]|])")


def md(text: object) -> str:
    """Text from result files made inert in markdown, on one line: raw HTML escaped, and the
    backslash, code, emphasis, link and table-cell characters backslash-escaped."""
    flat = " ".join(str(text).splitlines())
    return html.escape(_MD_SYNTAX.sub(r"\\\1", flat), quote=False)


def _code_block(lines: list[str]) -> str:
    """An indented code block: every markdown dialect shows it verbatim (never as HTML), and
    with every line indented, nothing in it can end it."""
    return textwrap.indent("\n".join(lines), "    ", predicate=lambda line: True)


def write_markdown(path: Path, tables: list[Table], jobs: Jobs, argv: Sequence[str],
                   plots: dict[str, list[str]],
                   private: list[privacy.PrivacyTable] | None = None) -> None:
    # Commands stay verbatim (copy-pasteable) in a code block, which is never parsed as HTML;
    # everything else from the files goes through md().
    lines = ["# unlearnbench leaderboard", "", "Regenerate (from the repository root):", "",
             _code_block(_commands(jobs, argv)), ""]
    if tables:
        lines += [md(_stats(jobs)), "", LEGEND, ""]
    for t in tables:
        shown = frame(t)
        shown["method"] = shown["method"].map(md)
        lines += [f"## {md(t.title)}", "", shown.to_markdown(index=False, disable_numparse=True),
                  "", md(tuning_note(t)), ""]
        failures = [f"- {md(r['label'])}, {md(f)}" for r in t.rows for f in r["failures"]]
        if failures:
            lines += ["Failed:", "", *failures, ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots.get(t.slug, [])] + [""]
    if private:
        lines += ["# Privacy: per-example scores on model ensembles", "", privacy.LEGEND, ""]
        for pt in private:
            shown = privacy.frame(pt)
            shown[""] = shown[""].map(md)
            lines += [f"## {md(pt.title)}", "", shown.to_markdown(index=False,
                                                                  disable_numparse=True), ""]
            failures = [f"- {md(r['label'])}, {md(f)}" for r in pt.rows for f in r["failed"]]
            lines += ["Failed:", "", *failures, ""] if failures else []
    path.write_text("\n".join(lines))


def write_html(path: Path, tables: list[Table], jobs: Jobs, argv: Sequence[str],
               plots: dict[str, list[str]],
               private: list[privacy.PrivacyTable] | None = None) -> None:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>unlearnbench leaderboard"
             "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:nth-child(2){text-align:left}img{max-width:48%;margin:4px}</style></head><body>",
             "<h1>unlearnbench leaderboard</h1>",
             "<pre>" + esc("\n".join(_commands(jobs, argv))) + "</pre>"]
    if tables:
        parts.append(f"<p>{esc(_stats(jobs))}</p><p>{esc(LEGEND)}</p>")
    for t in tables:
        parts += [f"<h2>{esc(t.title)}</h2>", frame(t).to_html(index=False, escape=True),
                  f"<p>{esc(tuning_note(t))}</p>"]
        failures = [f"{r['label']}, {f}" for r in t.rows for f in r["failures"]]
        if failures:
            parts.append("<p>Failed:</p><ul>" + "".join(f"<li>{esc(f)}</li>" for f in failures)
                         + "</ul>")
        parts += [f"<img src='{esc(p)}' alt='{esc(Path(p).stem)}'>" for p in plots.get(t.slug, [])]
    if private:
        parts += ["<h1>Privacy: per-example scores on model ensembles</h1>",
                  f"<p>{esc(privacy.LEGEND)}</p>"]
        for pt in private:
            parts += [f"<h2>{esc(pt.title)}</h2>",
                      privacy.frame(pt).to_html(index=False, escape=True)]
            failures = [f"{r['label']}, {f}" for r in pt.rows for f in r["failed"]]
            if failures:
                parts.append("<p>Failed:</p><ul>" + "".join(f"<li>{esc(f)}</li>"
                                                            for f in failures) + "</ul>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))


def build(dirs: Sequence[Path], out: Path, argv: Sequence[str]) -> list[Table]:
    """Read, aggregate and write every output; returns the tables."""
    from .plots import draw  # matplotlib only when writing

    jobs = load(dirs)
    private_rows, _ = privacy.load(dirs)
    if jobs.rows.empty and private_rows.empty:
        skipped = f" ({jobs.skipped} unreadable, skipped)" if jobs.skipped else ""
        raise UserError(f"no usable finished job (metrics.csv or {privacy.FILE} with a "
                        f"`{DONE}` marker){skipped} under " + ", ".join(map(str, dirs)))
    tables = build_tables(jobs) if not jobs.rows.empty else []
    private = privacy.tables(private_rows)
    out.mkdir(parents=True, exist_ok=True)
    plots = {t.slug: draw(t, out / "plots") for t in tables}
    plots = {k: [p.relative_to(out).as_posix() for p in v] for k, v in plots.items()}
    tidy(tables).to_csv(out / "leaderboard.csv", index=False)
    if private:
        privacy.tidy(private).to_csv(out / privacy.FILE, index=False)
    write_markdown(out / "LEADERBOARD.md", tables, jobs, argv, plots, private)
    write_html(out / "leaderboard.html", tables, jobs, argv, plots, private)
    extra = f", {len(private)} privacy table(s) (privacy.csv)" if private else ""
    print(f"{len(tables)} table(s) from {_stats(jobs)}{extra} -> {out / 'LEADERBOARD.md'}, "
          f"leaderboard.csv, leaderboard.html, plots/")
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point `unlearnbench-leaderboard DIR... [-o OUT]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="unlearnbench-leaderboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", type=Path, default=[Path("results/sweeps")],
                        help="folders searched for job results (default: results/sweeps)")
    parser.add_argument("-o", "--out", type=Path, default=Path("results/leaderboard"),
                        help="output folder (default: results/leaderboard)")
    args = parser.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    try:
        if missing:
            raise UserError(f"no such folder: {', '.join(missing)}")
        build(args.dirs, args.out, argv)
    except (UserError, OSError) as exc:  # no usable job; an output folder we cannot write
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
