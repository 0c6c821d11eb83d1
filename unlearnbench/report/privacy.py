"""The privacy section of the leaderboard and the summary of a privacy sweep: every finished
`unlearnbench-privacy` job's ``privacy.csv``, one table per dataset x model x scenario x
n_models, cells mean ± std over seeds. Torch-free: it reads files only.

Rows: the ceiling (retrain vs retrain), each method, the original (no unlearning); columns:
the scores with N/2 models a side (the ceiling's size, so the rows compare), and F with all
N a side. A job whose method failed shows as failed, with its reason.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import DONE
from .configs import BadJob, differing, job_config, label, method_variant

FILE = "privacy.csv"
REQUIRED = ["dataset", "model", "scenario", "seed", "method", "n_models", "comparison",
            "models_per_side", "score", "split", "value", "status"]
# (score, split) -> column header, at N/2 models a side
SHOWN = {("forget_score_F", "forget"): "F ↑", ("final_score", "all"): "final ↑",
         ("epsilon_median", "forget"): "median ε ↓", ("ulira_acc", "forget"): "U-LiRA (0.5 ideal)",
         ("klom", "forget"): "KLoM D_f ↓", ("klom", "retain"): "KLoM D_r ↓",
         ("klom", "test"): "KLoM test ↓"}
FULL_F = "F, N vs N"
CEILING_LABEL, ORIGINAL_LABEL = "ceiling (retrain vs retrain)", "original (no unlearning)"
LEGEND = ("Per-example scores of N unlearned models (N originals, each unlearned) against N "
          "retrained ones (unlearnbench-privacy). Columns at N/2 models a side, the size of the "
          "ceiling: the retrain ensemble's first half scored against its second half, what "
          "perfect unlearning scores with this many models. F = the NeurIPS 2023 challenge's "
          "forgetting score (1 would be indistinguishable at every threshold), final = F · "
          "RA_U/RA_R · TA_U/TA_R, median ε = the median per-example ε, U-LiRA = accuracy of a "
          "per-example likelihood-ratio attack (0.5 ideal), KLoM = binned KL divergence of the "
          "margins (0 ideal). Cells: mean ± std over seeds (forget sets).")


@dataclass
class PrivacyTable:
    dataset: str
    model: str
    scenario: str
    n_models: int
    rows: list[dict[str, Any]]

    @property
    def title(self) -> str:
        return (f"{self.dataset} · {self.model} · {self.scenario} · N = {self.n_models} "
                "per side")


def _warn(message: str) -> None:
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    print(f"unlearnbench-leaderboard: warning: {text}", file=sys.stderr)


def _read(csv: Path) -> pd.DataFrame | None:
    """A job's privacy.csv, checked (columns, numbers); None with a warning if unusable."""
    try:
        df = pd.read_csv(csv, encoding="utf-8")
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)}")
        if df.empty:
            raise ValueError("no rows")
        for c in ("seed", "n_models", "models_per_side"):
            values = pd.to_numeric(df[c], errors="coerce")
            if values.isna().any() or (values != values.round()).any():
                raise ValueError(f"{c} is not an integer in every row")
            df[c] = values.astype("int64")
        values = pd.to_numeric(df["value"], errors="coerce")
        if (values.isna() & df["value"].notna()).any():
            raise ValueError("a value that is not a number")
        df["value"] = values
        cfg = job_config(csv.parent)
    except BadJob as exc:
        _warn(f"skipping {exc}")
        return None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        _warn(f"skipping {csv}: unreadable ({' '.join(str(exc).split())})")
        return None
    df["method_config"] = [cfg] * len(df)
    df["reason"] = (df["reason"].astype(object).where(df["reason"].notna(), "").astype(str)
                    if "reason" in df else "")
    for c in ("dataset", "model", "scenario", "method", "comparison", "score", "split",
              "status"):
        df[c] = df[c].astype(str)
    df["job"] = str(csv.parent)
    return df


def load(dirs: Sequence[Path]) -> tuple[pd.DataFrame, int]:
    """Every finished privacy job's rows under ``dirs``; and the unfinished jobs' count."""
    frames, unfinished = [], 0
    for root in dirs:
        for csv in sorted(root.rglob(FILE)):
            if not (csv.parent / DONE).exists():
                unfinished += 1
                continue
            df = _read(csv)
            if df is not None:
                frames.append(df)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), unfinished


def _cell(values: pd.Series) -> tuple[float, float]:
    values = values.dropna()
    return (float(values.mean()) if len(values) else math.nan,
            float(values.std(ddof=1)) if len(values) > 1 else math.nan)


def _row(label: str, rows: pd.DataFrame, half: int, n: int) -> dict[str, Any]:
    """One table row from one comparison's rows of several jobs (one per seed)."""
    ok = rows[rows.status == "ok"]
    out: dict[str, Any] = {"label": label, "seeds": ok.seed.nunique(),
                           "failed": sorted({f"seed {s}: {r}" for s, r in zip(
                               rows[rows.status != "ok"].seed,
                               rows[rows.status != "ok"].reason, strict=True)})}
    at_half = ok[ok.models_per_side == half]
    for (score, split), header in SHOWN.items():
        pick = at_half[(at_half.score == score) & (at_half.split == split)]
        out[header] = _cell(pick.drop_duplicates("seed").value)
    full = ok[(ok.models_per_side == n) & (ok.score == "forget_score_F")]
    out[FULL_F] = _cell(full.drop_duplicates("seed").value)
    return out


def tables(df: pd.DataFrame) -> list[PrivacyTable]:
    out = []
    if df.empty:
        return out
    for (dataset, model, scenario, n), group in df.groupby(
            ["dataset", "model", "scenario", "n_models"], sort=True):
        half = int(n) // 2
        rows = [_row(CEILING_LABEL, group[group.comparison == "ceiling"], half, int(n))]
        methods = []
        for method, mrows in group[group.comparison == "unlearned"].groupby("method"):
            # runs of one method with other hyperparameters are rows of their own
            by_job = {job: rows.method_config.iat[0] for job, rows in mrows.groupby("job")}
            keys = differing(list(by_job.values()), method_variant)
            variants = {job: label(cfg, keys) for job, cfg in by_job.items()}
            for variant in sorted(set(variants.values())):
                jobs = [job for job, v in variants.items() if v == variant]
                name = f"{method} · {variant}" if variant else str(method)
                methods.append(_row(name, mrows[mrows.job.isin(jobs)], half, int(n)))
        methods.sort(key=lambda r: (-r["F ↑"][0] if not math.isnan(r["F ↑"][0]) else math.inf,
                                    r["label"]))
        rows += methods
        rows.append(_row(ORIGINAL_LABEL, group[group.comparison == "original"], half, int(n)))
        out.append(PrivacyTable(str(dataset), str(model), str(scenario), int(n), rows))
    return out


def _fmt(cell: tuple[float, float]) -> str:
    mean, std = cell
    if math.isnan(mean):
        return "—"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def frame(table: PrivacyTable) -> pd.DataFrame:
    shown = [*SHOWN.values(), FULL_F]
    return pd.DataFrame([{"": r["label"], "seeds": str(r["seeds"]) + (
        f" ({len(r['failed'])} failed)" if r["failed"] else ""),
        **{h: _fmt(r[h]) for h in shown}} for r in table.rows])


def tidy(tables_: list[PrivacyTable]) -> pd.DataFrame:
    out = []
    for t in tables_:
        for r in t.rows:
            for header in [*SHOWN.values(), FULL_F]:
                out.append({"dataset": t.dataset, "model": t.model, "scenario": t.scenario,
                            "n_models": t.n_models, "row": r["label"], "score": header,
                            "mean": r[header][0], "std": r[header][1], "n_seeds": r["seeds"]})
    return pd.DataFrame(out)


def summarise_privacy(sweep_dir: Path) -> list[PrivacyTable]:
    """The privacy tables of one sweep folder: printed, and written to summary.md there."""
    rows, unfinished = load([sweep_dir])
    found = tables(rows)
    if not found:
        print(f"privacy sweep {sweep_dir}: no finished job")
        return found
    text = [LEGEND, ""]
    for t in found:
        text += [f"## {t.title}", "", frame(t).to_markdown(index=False, disable_numparse=True),
                 ""]
    if unfinished:
        text.append(f"({unfinished} unfinished job(s) ignored)")
    (sweep_dir / "summary.md").write_text("\n".join(text))
    print("\n".join(text[2:]) + f"\n-> {sweep_dir / 'summary.md'}")
    return found
