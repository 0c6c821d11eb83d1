"""The leaderboard on corrupt and hostile result folders: a bad job is skipped with one warning
naming its file, nothing from a file is resolved or rendered as HTML, and the rest is built.
Job folders are written with the product's own writer (results.write_job); no training."""

from __future__ import annotations

import re
from pathlib import Path

import markdown_it
import pandas as pd
import pytest
import yaml

from unlearnbench.report.leaderboard import main
from unlearnbench.results import DONE, tidy, write_job

SCORES = {"UA": 10.0, "RA": 99.0, "TA": 95.0, "FTA": 20.0, "MIA": 30.0}


def _rows(method: str, seed: int, ua: float = 10.0, reason: str | None = None) -> list[dict]:
    base = {"dataset": "digits", "model": "mlp", "scenario": "classwise", "seed": seed,
            "method": method, "config_hash": "c" * 64}
    ref = {**SCORES, "UA": 100.0, "FTA": 0.0, "MIA": 100.0}
    unlearned = {**base, "role": "unlearned", "status": "ok", **SCORES, "UA": ua, "RTE_s": 0.1,
                 "speedup": 5.0, **{f"gap_{m}": abs(SCORES[m] - ref[m]) for m in
                                    ("RA", "TA", "MIA")}, "gap_UA": abs(ua - 100.0)}
    unlearned["avg_gap"] = sum(unlearned[f"gap_{m}"] for m in ("UA", "RA", "TA", "MIA")) / 4
    if reason is not None:
        unlearned = {**base, "role": "unlearned", "status": "failed", "reason": reason}
    return [{**base, "role": "original", "status": "ok", **SCORES, "UA": 0.0},
            {**base, "role": "retrain", "status": "ok", **ref, "RTE_s": 0.5, "speedup": 1.0,
             "gap_UA": 0.0, "gap_RA": 0.0, "gap_TA": 0.0, "gap_MIA": 0.0, "avg_gap": 0.0},
            unlearned]


def _job(sweep: Path, name: str, method: str = "ft", seed: int = 0, config: dict | None = None,
         **kwargs) -> Path:
    job = sweep / name
    cfg = {"method": {"_target_": f"unlearnbench.methods.{method}.unlearn", "lr": 0.01},
           "seed": seed, **(config or {})}
    write_job(job, tidy(_rows(method, seed, **kwargs)), None,
              {"config.yaml": yaml.safe_dump(cfg)})
    return job


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    """A sweep of two good jobs (ft and ga, seed 0)."""
    folder = tmp_path / "sweep"
    _job(folder, "0_ft", "ft")
    _job(folder, "1_ga", "ga", ua=50.0)
    return folder


def _board(tmp_path: Path, *dirs: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, Path]:
    out = tmp_path / "board"
    rc = main([*map(str, dirs), "-o", str(out)])
    return rc, capsys.readouterr().err, out


def _methods(out: Path) -> set[str]:
    lb = pd.read_csv(out / "leaderboard.csv")
    return set(lb[lb.kind == "method"].method)


def _valid_csv(job: Path) -> pd.DataFrame:
    return pd.read_csv(job / "metrics.csv")


BAD_METRICS = {  # how the metrics.csv of a finished job is damaged -> what the warning says
    "garbage_bytes": (lambda job: (job / "metrics.csv").write_bytes(
        bytes(range(256)) * 4), "unreadable"),
    "not_utf8": (lambda job: (job / "metrics.csv").write_bytes(
        (job / "metrics.csv").read_bytes().replace(b",ga,", b",g\xe9,")),
        r"unreadable \(UnicodeDecodeError"),
    "zero_bytes": (lambda job: (job / "metrics.csv").write_bytes(b""),
                   r"unreadable \(empty file\)"),
    "header_only": (lambda job: (job / "metrics.csv").write_text(
        (job / "metrics.csv").read_text().splitlines()[0] + "\n"), "no rows"),
    "missing_columns": (lambda job: _valid_csv(job).drop(columns=["seed", "role"]).to_csv(
        job / "metrics.csv", index=False), r"missing column\(s\) role, seed"),
    "nan_seed_in_failed_row": (lambda job: tidy(
        [{**r, "seed": float("nan")} for r in _rows("ga", 0, reason="crashed")][2:]).to_csv(
        job / "metrics.csv", index=False), "seed nan in row 1 is not an integer"),
    "text_seed": (lambda job: _valid_csv(job).assign(seed="abc").to_csv(
        job / "metrics.csv", index=False), "seed 'abc' in row 1 is not an integer"),
    "fractional_seed": (lambda job: _valid_csv(job).assign(seed=1.5).to_csv(
        job / "metrics.csv", index=False), "seed 1.5 in row 1"),
    "text_metric": (lambda job: _valid_csv(job).assign(UA=["1", "2", "lots"]).to_csv(
        job / "metrics.csv", index=False), "UA 'lots' in row 3 is not a number"),
    "empty_method": (lambda job: _valid_csv(job).assign(method=None).to_csv(
        job / "metrics.csv", index=False), "empty method in row 1"),
    "duplicate_role": (lambda job: pd.concat([_valid_csv(job)] * 2).to_csv(
        job / "metrics.csv", index=False), "more than one row for role 'original'"),
    "a_folder": (lambda job: ((job / "metrics.csv").unlink(), (job / "metrics.csv").mkdir()),
                 "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_corrupt_metrics_csv_skips_that_job_with_one_warning(tmp_path: Path, sweep: Path,
                                                             case: str, capsys) -> None:
    damage, why = BAD_METRICS[case]
    damage(sweep / "1_ga")
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    assert rc == 0, err
    lines = err.splitlines()
    assert len(lines) == 1 and re.match(
        rf"^unlearnbench-leaderboard: warning: skipping {sweep / '1_ga' / 'metrics.csv'}: "
        rf".*{why}", lines[0]), lines
    assert _methods(out) == {"ft"}
    assert "1 unreadable job(s) skipped" in (out / "LEADERBOARD.md").read_text()


@pytest.mark.parametrize(("text", "why"), [
    (b"method: [unclosed\n", "unreadable YAML .ParserError"),
    (b"\xff\xfe\x00garbage", "unreadable YAML .UnicodeDecodeError"),
    (b"- a list\n- not a mapping\n", "not a mapping of config keys"),
    (b"!!python/object/apply:os.system ['echo pwned']\n", "unreadable YAML .ConstructorError"),
])
def test_corrupt_config_yaml_skips_that_job(tmp_path: Path, sweep: Path, text: bytes, why: str,
                                            capsys) -> None:
    (sweep / "1_ga" / "config.yaml").write_bytes(text)
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    assert rc == 0 and _methods(out) == {"ft"}
    assert re.match(rf"^unlearnbench-leaderboard: warning: skipping "
                    rf"{sweep / '1_ga' / 'config.yaml'}: {why}", err) and err.count("\n") == 1


def test_nothing_usable_is_one_error_after_the_warnings(tmp_path: Path, sweep: Path,
                                                       capsys) -> None:
    for job in ("0_ft", "1_ga"):
        (sweep / job / "metrics.csv").write_bytes(b"")
    (sweep / "2_unfinished").mkdir()
    (sweep / "2_unfinished" / "metrics.csv").write_bytes(b"\x00")  # no done marker: not read
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 3 and not out.exists()
    assert all(line.startswith("unlearnbench-leaderboard: warning: skipping") for line in
               lines[:2])
    assert lines[2] == (f"unlearnbench-leaderboard: error: no usable finished job (metrics.csv "
                        f"or privacy.csv with a `{DONE}` marker) (2 unreadable, skipped) "
                        f"under {sweep}")


def _multirun(sweep: Path, task: list[str]) -> None:
    record = {"hydra": {"overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task}},
              "seed": 0}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(record))


def test_interpolations_in_saved_files_are_never_resolved(tmp_path: Path, sweep: Path, capsys,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("UNLEARNBENCH_SECRET", "hunter2")
    _multirun(sweep, ["method=ft,ga", "+note=${oc.env:UNLEARNBENCH_SECRET}"])
    _job(sweep, "2_ga", "ga", seed=1, config={"method": {"lr": "${oc.env:UNLEARNBENCH_SECRET}"}})
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    assert rc == 0, err
    for name in ("LEADERBOARD.md", "leaderboard.html", "leaderboard.csv"):
        assert "hunter2" not in (out / name).read_text(), name
    text = (out / "LEADERBOARD.md").read_text()
    assert "unlearnbench -m method=ft,ga '+note=${oc.env:UNLEARNBENCH_SECRET}'" in text
    assert "method.lr=${oc.env:UNLEARNBENCH_SECRET}" in text  # the variant label, literally


def test_corrupt_multirun_record_is_a_warning(tmp_path: Path, sweep: Path, capsys) -> None:
    (sweep / "multirun.yaml").write_bytes(b"hydra: {overrides: 3}\n")
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    assert rc == 0 and _methods(out) == {"ft", "ga"}
    assert re.match(rf"^unlearnbench-leaderboard: warning: ignoring {sweep / 'multirun.yaml'}: "
                    r"not a Hydra multirun record", err) and err.count("\n") == 1


HOSTILE = "<script>alert(1)</script>|x`y*[z](javascript:alert(2))$\\"


def _render(markdown: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)


def _only_our_tags(page: str) -> None:
    """Every tag is one the leaderboard writes itself, with no event handler, and images are
    the plots."""
    tags = re.findall(r"<(/?[A-Za-z][\w-]*)([^>]*)>", page)
    names = {name.lstrip("/").lower() for name, _ in tags}
    assert names <= {"h1", "h2", "p", "pre", "code", "table", "thead", "tbody", "tr", "th",
                     "td", "ul", "li", "img", "html", "head", "meta", "title", "style", "body",
                     "!doctype"}, names
    for name, attrs in tags:
        assert not re.search(r"\bon\w+\s*=", attrs), (name, attrs)
        if name.lower() == "img":
            assert re.match(r"""\s*src=["']plots/[\w.]+["']""", attrs), attrs


def test_html_from_files_is_escaped(tmp_path: Path, sweep: Path, capsys) -> None:
    """A crafted method name, failure reason, context and sweep command: the markdown renders
    them as text (CommonMark with raw HTML allowed), tables keep their columns, the HTML page
    escapes them, and the plots draw them as plain text."""
    _multirun(sweep, ["method=<script>x</script>", "+a=```\n<img src=x onerror=alert(3)>"])
    _job(sweep, "2_hostile", HOSTILE, seed=0)
    _job(sweep, "3_hostile", HOSTILE, seed=1, reason="<img src=x onerror=alert(4)>\nsecond")
    _job(sweep, "4_ctx", "ft", seed=0,
         config={"scenario": {"fraction": "<b onmouseover=alert(5)>"}})
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    assert rc == 0, err
    markdown = (out / "LEADERBOARD.md").read_text()
    rendered = _render(markdown)
    _only_our_tags(rendered)
    assert "javascript:" not in re.findall(r'href="([^"]*)"', rendered)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "onerror=alert(4)&gt; second" in rendered  # the reason, on one line
    for table in re.findall(r"^## .+\n\n((?:\|.*\n)+)", markdown, flags=re.M):
        header, *rows = [re.split(r"(?<!\\)\|", line.strip())[1:-1]
                         for line in table.splitlines()]
        assert all(len(row) == len(header) for row in rows), table
    page = (out / "leaderboard.html").read_text()
    _only_our_tags(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert len(list((out / "plots").glob("*.png"))) >= 2


def test_non_finite_metrics_do_not_break_the_plots(tmp_path: Path, sweep: Path,
                                                   capsys) -> None:
    job = sweep / "1_ga"
    _valid_csv(job).assign(speedup=["", "inf", "inf"], MIA=["", "nan", "-inf"]).to_csv(
        job / "metrics.csv", index=False)
    rc, err, out = _board(tmp_path, sweep, capsys=capsys)
    assert rc == 0 and not err and _methods(out) == {"ft", "ga"}
