"""The paper's tables as reference rows: the shipped copy, the rows and what `sserd eval` / `study-report` print
all equal the project's shared transcription of the paper (no number is typed in the package or here).

The shared file: ``$SSERD_PAPER_TABLES`` or ``<repo>/../shared/paper/sserd_paper_tables.json``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from sserd_core.emotion import EMOTIONS
from sserd_core.eval.study_app import QUESTIONS, StudyDB, write_study_report
from sserd_core.eval.tables import write_reports
from sserd_core.metrics import paper

SHARED = Path(os.environ.get("SSERD_PAPER_TABLES",
                             Path(__file__).resolve().parents[2] / "shared" / "paper" / "sserd_paper_tables.json"))
if not SHARED.is_file():  # pragma: no cover - outside the project's workspace
    pytest.skip(f"the shared paper tables are not at {SHARED} (set SSERD_PAPER_TABLES)", allow_module_level=True)


@pytest.fixture(scope="module")
def shared():
    return json.loads(SHARED.read_text(encoding="utf-8"))


def _name(method: str) -> str:
    return "SSERD" if method == "Ours" else method


def test_shipped_copy_is_the_shared_file(shared):
    assert json.loads(paper.PAPER_TABLES_FILE.read_text(encoding="utf-8")) == shared
    assert shared["source"] in paper.source_note()


def test_reference_rows_equal_the_shared_tables(shared):
    seen = 0
    for ds in ("MEAD", "RAVDESS"):
        for proto in ("intra", "cross"):
            rows = paper.reference_rows(ds, proto)
            recs = [r for r in shared["tables"] if r["dataset"] == ds and r["setting"] == proto]
            assert set(rows) == {_name(r["method"]) for r in recs}  # EAT: cross-ID only, never an empty row
            for r in recs:
                assert rows[_name(r["method"])][r["metric"]] == [r[e] for e in EMOTIONS] + [r["avg"]]
                seen += 1
    assert seen == len(shared["tables"])


def test_study_rows_equal_the_shared_table(shared):
    rows = paper.study_rows()
    for r in shared["user_study"]:
        q = {v: k for k, v in paper.STUDY_CRITERIA.items()}[r["criterion"]]
        col = paper.STUDY_COLUMNS.index("All") if r["emotion"] == "all" else EMOTIONS.index(r["emotion"])
        assert rows[_name(r["method"])][q][col] == r["percent"]
    assert set(paper.STUDY_CRITERIA) == set(QUESTIONS)


@pytest.mark.parametrize("dataset", ["MEAD", "RAVDESS"])
def test_eval_tables_print_every_published_cell(shared, tmp_path, dataset):
    summary = write_reports(tmp_path, dataset, ["intra", "cross"], ["landmark"])
    md = Path(summary["files"]["markdown"]).read_text()
    arrows = {"FAD": "↓", "LSE-D": "↓", "CSIM": "↑"}
    for r in shared["tables"]:
        if r["dataset"] != dataset:
            continue
        section = md.split(f"## {dataset} · {r['setting']}-ID")[1].split("\n## ")[0]
        cells = " | ".join(f"{r[c]:.3f}" for c in list(EMOTIONS) + ["avg"])
        assert f"| {_name(r['method'])} (paper) | {r['metric']} {arrows[r['metric']]} | {cells} |" in section
    paper_lines = [line for line in md.splitlines() if "(paper)" in line]
    assert paper_lines and not any("n/a" in line for line in paper_lines)
    with open(summary["files"]["csv"]) as fh:
        csv_paper = [row for row in csv.reader(fh) if row[2] == "paper"]
    expected = [[dataset, r["setting"], "paper", _name(r["method"]), r["metric"]] + [r[c] for c in list(EMOTIONS) + ["avg"]]
                for r in shared["tables"] if r["dataset"] == dataset]
    assert sorted(row[:5] + [float(x) for x in row[5:]] for row in csv_paper) == sorted(expected)


def test_study_report_prints_the_published_table(shared, tmp_path):
    items = [{"id": "i0", "emotion": "happy", "source": "s.mp4", "reference": "r.png",
              "clips": {"landmark": "a.mp4", "naive": "b.mp4"}}]
    db = StudyDB(tmp_path / "votes.sqlite", items)
    inv = {m: k for k, m in db.letters("p", "i0").items()}
    db.vote("p", "i0", {"realism": inv["landmark"], "emotion": inv["naive"], "mouth": inv["landmark"]})
    text = write_study_report(tmp_path / "votes.sqlite", tmp_path / "report").read_text()
    published = text.split("The paper's user study")[1]
    for r in shared["user_study"]:
        q = {v: k for k, v in paper.STUDY_CRITERIA.items()}[r["criterion"]]
        line = next(x for x in published.splitlines() if x.startswith(f"| {_name(r['method'])} (paper) | {q} |"))
        cells = [c.strip() for c in line.strip("|").split("|")][2:]
        col = 7 if r["emotion"] == "all" else EMOTIONS.index(r["emotion"])
        assert cells[col] == f"{r['percent']:g}%"
    assert "n/a" not in published
