"""Tables laid out like the paper's: rows method × metric, columns the 7 emotions + Avg.

A cell of a per-clip metric is the mean over that emotion's clips; a cell of a set
metric (FAD, ID-FD (dlib)) is the Fréchet distance between *all* real and *all*
generated frames of that emotion (as FID/FAD are defined on sets). Avg. is the mean of
the emotion cells that have a value. Written as Markdown and CSV, plus one bar chart per
metric and protocol, and ``results.json`` with every per-clip record and every cell.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..emotion import EMOTIONS
from ..metrics import METRICS, PAPER_ORDER, PROXY_ORDER
from ..metrics.frechet import frechet_distance_features
from ..metrics.paper import COLUMNS, DATASETS, reference_rows, source_note
from ..errors import SSERDError

PROTOCOL_TITLE = {"intra": "intra-ID", "cross": "cross-ID", "intra-neutral": "intra-ID (neutral source; not the paper's)",
                  "cross-next": "cross-ID (next actor; not the paper's)"}
BASELINE_NOTES = {"source": "`source` = the unedited source clip (no edit)",
                  "naive": "`naive` = the same warp, but the mouth is moved too (lips closed on the neutral mouth, "
                           "not following the speech)"}


def load_records(out_dir: Path, protocol: str, methods: Optional[Sequence[str]] = None) -> list[dict]:
    base = Path(out_dir) / "clips" / protocol
    recs = []
    for p in sorted(base.glob("*/*.json")):
        r = json.loads(p.read_text())
        if methods is None or r["method"] in methods:
            r["_npz"] = str(p.with_suffix(".npz"))
            recs.append(r)
    return recs


def _pooled(records: list[dict], gen_key: str, real_key: str) -> Optional[float]:
    gens, reals, seen = [], [], set()
    for r in records:
        p = Path(r["_npz"])
        if not p.is_file():
            continue
        with np.load(p) as z:
            if gen_key not in z or real_key not in z:
                continue
            gens.append(z[gen_key])
            real_path = str(z["real_path"])
            if real_path not in seen:
                seen.add(real_path)
                reals.append(z[real_key])
    if not gens or not reals:
        return None
    try:
        return frechet_distance_features(np.concatenate(reals), np.concatenate(gens))
    except SSERDError:
        return None


def build_table(records: list[dict], methods: Sequence[str]) -> dict:
    """``{method: {metric: [8 cells]}}`` (None where no value) from per-clip records."""
    by = defaultdict(list)
    for r in records:
        if r.get("status") == "ok":
            by[(r["method"], r["target"])].append(r)
    table = {}
    for method in methods:
        rows = {}
        for metric in PAPER_ORDER + PROXY_ORDER:
            info = METRICS[metric]
            cells = []
            for emo in EMOTIONS:
                recs = by.get((method, emo), [])
                if info.pooled:
                    key = "arcface" if metric == "FAD" else "dlib"
                    val = _pooled(recs, f"gen_{key}", f"real_{key}") if recs and any(
                        r["metrics"].get(metric) is not None for r in recs) else None
                else:
                    vals = [r["metrics"].get(metric) for r in recs]
                    vals = [v for v in vals if v is not None and math.isfinite(v)]
                    val = float(np.mean(vals)) if vals else None
                cells.append(val)
            known = [c for c in cells if c is not None]
            cells.append(float(np.mean(known)) if known else None)
            if known:
                rows[metric] = cells
        table[method] = rows
    return table


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def markdown(table: dict, title: str, paper: Optional[dict] = None, counts: Optional[dict] = None) -> str:
    """One setting's tables as Markdown: the paper-metric table (with published rows) and the proxy table."""
    head = "| Method | Metric | " + " | ".join(COLUMNS) + " |\n|---|---|" + "---:|" * len(COLUMNS) + "\n"
    out = [f"## {title}\n"]
    paper_rows = [(m, k, v) for m, rows in table.items() for k, v in rows.items() if METRICS[k].paper]
    if paper_rows or paper:
        out.append("### Paper metrics (FAD / LSE-D / CSIM, computed with the paper's networks)\n")
        lines = [f"| {m} | {k} {METRICS[k].arrow} | " + " | ".join(_fmt(x) for x in v) + " |" for m, k, v in paper_rows]
        for m, rows in (paper or {}).items():
            for k in PAPER_ORDER:
                lines.append(f"| {m} (paper) | {k} {METRICS[k].arrow} | " + " | ".join(_fmt(x) for x in rows[k]) + " |")
        out.append(head + "\n".join(lines) + "\n")
        if paper:
            out.append(f"\n{source_note()}\n")
        if not paper_rows:
            out.append("\nThis run computed no paper metric (give --arcface / --syncnet / --emotion-net weights); "
                       "the published rows are shown for reference only.\n")
    out.append("\n### Offline proxies (not the paper's metrics — never compare them with the paper's numbers)\n")
    lines = [f"| {m} | {k} {METRICS[k].arrow} | " + " | ".join(_fmt(x) for x in v) + " |"
             for m, rows in table.items() for k, v in rows.items() if not METRICS[k].paper]
    out.append(head + "\n".join(lines) + "\n")
    notes = [text for name, text in BASELINE_NOTES.items() if name in table]
    if notes:
        out.append("\nBaselines: " + "; ".join(notes) + ".\n")
    if counts:
        out.append("\nClips per emotion: " + ", ".join(f"{e} {counts.get(e, 0)}" for e in EMOTIONS) + ".\n")
    return "".join(out)


def csv_rows(table: dict, dataset: str, protocol: str, paper: Optional[dict] = None) -> list[list]:
    rows = []
    for m, metrics in table.items():
        for k, v in metrics.items():
            rows.append([dataset, protocol, "measured", m, k] + ["" if x is None else f"{x:.6g}" for x in v])
    for m, metrics in (paper or {}).items():
        for k in PAPER_ORDER:
            rows.append([dataset, protocol, "paper", m, k] + ["" if x is None else f"{x:.6g}" for x in metrics[k]])
    return rows


CSV_HEADER = ["dataset", "protocol", "source", "method", "metric"] + list(COLUMNS)


def bar_chart(table: dict, metric: str, title: str, path: Path) -> Optional[Path]:
    """Grouped bars: x = emotions + Avg., one bar per method; n/a cells are left empty."""
    methods = [m for m in table if metric in table[m]]
    if not methods:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(COLUMNS))
    w = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(9, 3.4), dpi=100)
    for i, m in enumerate(methods):
        vals = np.array([np.nan if v is None else v for v in table[m][metric]], float)
        ax.bar(x + (i - (len(methods) - 1) / 2) * w, vals, w, label=m)
    ax.set_xticks(x, COLUMNS)
    ax.set_ylabel(f"{metric} {METRICS[metric].arrow}")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=min(4, len(methods)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(out_dir: Path, dataset: str, protocols: Sequence[str], methods: Sequence[str]) -> dict:
    """Write tables (MD + CSV), charts and results.json for the finished run; returns a summary dict.

    For MEAD and RAVDESS the paper's published rows (:func:`sserd_core.metrics.paper.reference_rows`) are
    printed beside the measured paper metrics, every cell as published.
    """
    out_dir = Path(out_dir)
    md_parts, csv_all, summary = [f"# SSERD evaluation — {dataset}\n\n"], [], {"dataset": dataset, "settings": {}}
    charts = []
    for protocol in protocols:
        recs = load_records(out_dir, protocol, methods)
        table = build_table(recs, methods)
        # the paper's rows only beside the paper's own protocols
        paper = reference_rows(dataset, protocol) if dataset in DATASETS and protocol in ("intra", "cross") else None
        counts = defaultdict(int)
        for r in recs:
            if r["method"] == methods[0] and r.get("status") == "ok":
                counts[r["target"]] += 1
        title = f"{dataset} · {PROTOCOL_TITLE[protocol]}"
        md_parts.append(markdown(table, title, paper, counts) + "\n")
        csv_all += csv_rows(table, dataset, protocol, paper)
        for metric in PAPER_ORDER + PROXY_ORDER:
            safe = metric.split(" ")[0].replace("/", "-")
            p = bar_chart(table, metric, f"{title}: {metric}", out_dir / "charts" / f"{protocol}_{safe}.png")
            if p:
                charts.append(str(p))
        missing = [r["item"]["id"] + "/" + r["method"] for r in recs if r.get("status") != "ok"]
        summary["settings"][protocol] = {"table": table, "paper": paper, "counts": dict(counts), "missing": missing,
                                         "clips": [{k: v for k, v in r.items() if k != "_npz"} for r in recs]}
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    md_path = out_dir / "tables" / "results.md"
    md_path.write_text("".join(md_parts))
    csv_path = out_dir / "tables" / "results.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_HEADER)
        w.writerows(csv_all)
    summary["files"] = {"markdown": str(md_path), "csv": str(csv_path), "charts": charts,
                        "json": str(out_dir / "results.json")}
    (out_dir / "results.json").write_text(json.dumps(summary, indent=1))
    return summary
