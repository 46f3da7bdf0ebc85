"""The SSERD paper's published numbers, as reference rows for the evaluation tables and the user study.

Source: the paper's supplementary material — Table 1 (MEAD) and Table 2 (RAVDESS): FAD↓ /
LSE-D↓ / CSIM↑ per emotion (the 7 of :data:`sserd_core.emotion.EMOTIONS`) and average, for
ICface, DSM, NED, EAT (cross-ID only) and SSERD ("Ours" in the paper), intra- and cross-ID;
Table 3: the user study's vote percentages per emotion and overall. The numbers live in
``sserd_core/data/sserd_paper_tables.json``, a verbatim copy of the project's shared
transcription (``shared/paper/sserd_paper_tables.json``; its ``source`` field names the
tables). Nothing is typed in this module: ``tests/test_paper_reference.py`` compares the
shipped copy, the rows built here and the printed tables with the shared file.

The paper's "Ours" prints as ``SSERD``. Its Avg. column is the paper's own printed average
(in a few rows it is not the mean of the printed emotion cells; it is shown as published).
These rows are only printed next to the paper's own metrics (FAD / LSE-D / CSIM computed
with the paper's networks); the offline proxies (ID-FD (dlib), M-LMD, …) are different
quantities and are never placed on the same row or compared with them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..emotion import EMOTIONS
from ..errors import SSERDError

#: the shipped copy of the paper's tables
PAPER_TABLES_FILE = Path(__file__).resolve().parents[1] / "data" / "sserd_paper_tables.json"
#: column order of every metric table: the 7 emotions then the average
COLUMNS = tuple(EMOTIONS) + ("Avg.",)
#: column order of the user-study table: the 7 emotions then the share of all votes
STUDY_COLUMNS = tuple(EMOTIONS) + ("All",)
PAPER_METRICS = ("FAD", "LSE-D", "CSIM")
DATASETS = ("MEAD", "RAVDESS")
PROTOCOLS = ("intra", "cross")
#: the paper's method names → the names printed here
METHOD_NAMES = {"Ours": "SSERD"}
#: user-study question (``sserd_core.eval.study_app.QUESTIONS``) → the paper's criterion
STUDY_CRITERIA = {"realism": "realism", "emotion": "emotion_similarity", "mouth": "mouth_shape_similarity"}


@lru_cache(maxsize=1)
def paper_data() -> dict:
    """The shipped tables as parsed JSON (``source``, ``metrics``, ``tables``, ``user_study``)."""
    return json.loads(PAPER_TABLES_FILE.read_text(encoding="utf-8"))


def source_note() -> str:
    """One line naming where the printed paper rows come from."""
    return (f"Paper rows: {paper_data()['source']} Shipped as sserd_core/data/{PAPER_TABLES_FILE.name}; "
            "every cell as published.")


def method_name(paper_name: str) -> str:
    return METHOD_NAMES.get(paper_name, paper_name)


def _dataset(name: str) -> str:
    for d in DATASETS:
        if str(name).strip().lower() == d.lower():
            return d
    raise SSERDError(f"Unknown dataset '{name}' for the paper's reference rows; choose MEAD or RAVDESS.")


def _protocol(name: str) -> str:
    key = str(name).strip().lower().replace("-id", "").replace("_id", "")
    if key not in PROTOCOLS:
        raise SSERDError(f"Unknown protocol '{name}'; choose intra or cross.")
    return key


def _cells(record: dict, columns) -> list[float]:
    return [float(record[c]) for c in columns]


def reference_rows(dataset: str, protocol: str) -> dict:
    """``{method: {metric: [8 values]}}`` for one setting, in the paper's row order (columns = :data:`COLUMNS`).

    Only the methods the paper reports for that setting appear (EAT has no intra-ID rows), so
    every printed cell has a value.
    """
    ds, proto = _dataset(dataset), _protocol(protocol)
    rows: dict = {}
    for rec in paper_data()["tables"]:
        if rec["dataset"] == ds and rec["setting"] == proto:
            cells = _cells(rec, EMOTIONS) + [float(rec["avg"])]
            rows.setdefault(method_name(rec["method"]), {})[rec["metric"]] = cells
    return rows


def study_rows() -> dict:
    """``{method: {question: [8 percentages]}}`` of the paper's user study (columns = :data:`STUDY_COLUMNS`;
    questions as in :data:`STUDY_CRITERIA`; "All" = the paper's share over all emotions)."""
    criterion_to_question = {v: k for k, v in STUDY_CRITERIA.items()}
    by: dict = {}
    for rec in paper_data()["user_study"]:
        key = (method_name(rec["method"]), criterion_to_question[rec["criterion"]])
        by.setdefault(key, {})[rec["emotion"]] = float(rec["percent"])
    rows: dict = {}
    for (method, question), cells in by.items():
        rows.setdefault(method, {})[question] = [cells[e] for e in EMOTIONS] + [cells["all"]]
    return rows
