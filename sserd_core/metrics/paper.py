"""The SSERD paper's published numbers, as reference rows for the evaluation tables.

Tables in the paper: per emotion (the 7 of :data:`sserd_core.emotion.EMOTIONS`) + Avg.,
metrics FAD↓ / LSE-D↓ / CSIM↑, for MEAD and RAVDESS, in the intra-ID and cross-ID
protocols, methods SSERD (ours in the paper), NED, DSM, EAT and ICface.

What is sourced here, and what is not — read before quoting:

- The **Avg.** cells of the **SSERD** rows (all four settings) come from the project's
  design document (``DESIGN.md``, "Targets to beat"), which took them from the paper.
- **Every per-emotion cell, and every NED / DSM / EAT / ICface cell, is unknown** to
  this package: the paper's per-emotion tables were not reachable from the offline
  development environment (the official repository ``ZH-Xu410/SSERD`` README carries no
  numbers). Unknown cells are ``None`` and print as ``n/a``; they are never estimated.
- A user who has the paper can supply the missing cells with a JSON file
  (``sserd eval --paper-reference FILE``, format: :func:`load_reference_file`); those
  cells are then marked as user-supplied in the table notes.

These rows are only ever printed next to the paper's own metrics (FAD / LSE-D / CSIM
computed with the paper's networks); the offline proxies (ID-FD (dlib), M-LMD, …) are
different quantities and are never placed on the same row or compared with them.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Union

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError

#: column order of every table: the 7 emotions then the average
COLUMNS = tuple(EMOTIONS) + ("Avg.",)
PAPER_METRICS = ("FAD", "LSE-D", "CSIM")
PAPER_METHODS = ("SSERD", "NED", "DSM", "EAT", "ICface")
DATASETS = ("MEAD", "RAVDESS")
PROTOCOLS = ("intra", "cross")

#: (dataset, protocol) → SSERD Avg. (FAD, LSE-D, CSIM) — from DESIGN.md "Targets to beat"
_SSERD_AVG = {
    ("MEAD", "intra"): (0.740, 9.126, 0.904),
    ("MEAD", "cross"): (2.453, 9.200, 0.848),
    ("RAVDESS", "intra"): (1.399, 7.441, 0.894),
    ("RAVDESS", "cross"): (3.360, 7.621, 0.790),
}

SOURCE_NOTE = (
    "Paper rows: SSERD Avg. from the paper as recorded in the project's DESIGN.md; per-emotion cells and "
    "the NED / DSM / EAT / ICface rows were not available offline and are n/a (never estimated)."
)


def _empty() -> list:
    return [None] * len(COLUMNS)


def reference_rows(dataset: str, protocol: str) -> dict:
    """``{method: {metric: [8 values or None]}}`` for one setting (columns = :data:`COLUMNS`)."""
    key = (_dataset(dataset), _protocol(protocol))
    rows = {m: {k: _empty() for k in PAPER_METRICS} for m in PAPER_METHODS}
    for metric, value in zip(PAPER_METRICS, _SSERD_AVG[key]):
        rows["SSERD"][metric][-1] = value
    return rows


def known_cells(dataset: str, protocol: str) -> int:
    """How many cells of the reference rows are known (for messages and tests)."""
    return sum(v is not None for m in reference_rows(dataset, protocol).values() for vals in m.values() for v in vals)


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


def load_reference_file(path: Union[str, os.PathLike], dataset: str, protocol: str,
                        base: Optional[dict] = None) -> tuple[dict, int]:
    """Merge user-supplied paper cells into the reference rows.

    File format (JSON)::

        {"MEAD": {"intra": {"NED": {"FAD": {"happy": 1.23, "Avg.": 1.5}, ...}, ...}, ...}}

    Returns ``(rows, n_cells_supplied)``. Cells the file does not mention stay as they are.
    """
    rows = base if base is not None else reference_rows(dataset, protocol)
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise SSERDError(f"Cannot read the paper reference file {path}: {exc}") from None
    ds = next((v for k, v in data.items() if k.lower() == _dataset(dataset).lower()), {})
    block = next((v for k, v in ds.items() if _protocol(k) == _protocol(protocol)), {})
    n = 0
    for method, metrics in block.items():
        for metric, cells in metrics.items():
            if metric not in PAPER_METRICS:
                raise SSERDError(f"{path}: metric '{metric}' is not one of the paper's ({', '.join(PAPER_METRICS)}).")
            row = rows.setdefault(method, {k: _empty() for k in PAPER_METRICS})[metric]
            for col, value in cells.items():
                idx = len(COLUMNS) - 1 if col.lower() in ("avg", "avg.", "average") else EMOTIONS.index(canonical_label(col))
                row[idx] = float(value)
                n += 1
    return rows, n
