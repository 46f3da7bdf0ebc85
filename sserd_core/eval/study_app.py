"""User-study kit (the paper's Table 3): a small Gradio app and the vote report.

For each study item (one source clip + the target emotion's reference face) the app
shows the clips of several methods **shuffled and anonymised** (labelled A, B, C…;
the order is drawn per participant and item and stored, so a reload shows the same
letters) and asks three questions — which clip is the most **realistic**, whose
**emotion** is most similar to the reference, whose **mouth shape** is most similar to
the source. Votes go to SQLite with one vote per participant, item and question (voting
again replaces the earlier vote); a participant who comes back with the same ID
continues where they stopped. ``sserd eval study-report`` turns the votes into the
per-emotion percentage table: rows method × question, columns the 7 emotions + All
(the share of that question's votes that went to the method; All = its share of all of
that question's votes, as the paper's "all" column), followed by the paper's own Table 3
rows for reference (:func:`sserd_core.metrics.paper.study_rows`).

The manifest is the ``study.json`` written by ``sserd eval`` (or your own)::

    {"items": [{"id": "...", "emotion": "happy", "source": "src.mp4", "reference": "ref.png",
                "clips": {"landmark": "a.mp4", "naive": "b.mp4", "NED": "c.mp4"}}, ...]}

Programmatic use (``gradio_client``): ``/next_item`` (participant) → the next item's id,
emotion and letters; ``/submit_vote`` (participant, item_id, realism, emotion, mouth) →
records the three letters' methods and returns the next item.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import random
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Optional, Union

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError

QUESTIONS = {
    "realism": "Which clip looks the most realistic?",
    "emotion": "Which clip's expression is the most similar to the reference face's emotion?",
    "mouth": "Which clip's mouth shapes are the most similar to the source clip's?",
}
LETTERS = "ABCDEFGH"
MAX_CLIPS = len(LETTERS)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assignments (
    participant TEXT NOT NULL, item_id TEXT NOT NULL, letter TEXT NOT NULL, method TEXT NOT NULL,
    PRIMARY KEY (participant, item_id, letter));
CREATE TABLE IF NOT EXISTS votes (
    participant TEXT NOT NULL, item_id TEXT NOT NULL, question TEXT NOT NULL, emotion TEXT NOT NULL,
    letter TEXT NOT NULL, method TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (participant, item_id, question));
CREATE TABLE IF NOT EXISTS methods (method TEXT PRIMARY KEY);
"""


def load_manifest(path: Union[str, Path]) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SSERDError(f"Cannot read the study manifest {path}: {exc}") from None
    items = data.get("items", data) if isinstance(data, dict) else data
    out = []
    for it in items:
        clips = it.get("clips", {})
        if len(clips) < 2:
            continue
        if len(clips) > MAX_CLIPS:
            raise SSERDError(f"Study item {it.get('id')}: at most {MAX_CLIPS} methods per item.")
        out.append({"id": str(it["id"]), "emotion": canonical_label(it["emotion"]), "source": it.get("source"),
                    "reference": it.get("reference"), "clips": dict(clips)})
    if not out:
        raise SSERDError(f"The study manifest {path} has no item with at least two clips.")
    return out


class StudyDB:
    """Votes and anonymised assignments in one SQLite file (safe to share between app restarts)."""

    def __init__(self, path: Union[str, Path], items: Optional[list[dict]] = None):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.items = {it["id"]: it for it in (items or [])}
        self.order = [it["id"] for it in (items or [])]
        with self._conn() as c:
            c.executescript(_SCHEMA)
            c.executemany("INSERT OR IGNORE INTO methods VALUES (?)",
                          [(m,) for it in self.items.values() for m in it["clips"]])

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    @staticmethod
    def _check_participant(participant: str) -> str:
        p = str(participant or "").strip()
        if not p or len(p) > 64:
            raise SSERDError("Enter a participant ID (1-64 characters) to start.")
        return p

    def letters(self, participant: str, item_id: str) -> dict:
        """``{letter: method}`` for this participant and item (drawn once, then stored)."""
        participant = self._check_participant(participant)
        with self._conn() as c:
            rows = c.execute("SELECT letter, method FROM assignments WHERE participant=? AND item_id=?",
                             (participant, item_id)).fetchall()
            if rows:
                return dict(sorted(rows))
            methods = sorted(self.items[item_id]["clips"])
            seed = int.from_bytes(hashlib.sha256(f"{participant}\0{item_id}".encode()).digest()[:8], "big")
            random.Random(seed).shuffle(methods)
            mapping = dict(zip(LETTERS, methods))
            c.executemany("INSERT OR IGNORE INTO assignments VALUES (?,?,?,?)",
                          [(participant, item_id, k, v) for k, v in mapping.items()])
            return mapping

    def participant_order(self, participant: str) -> list[str]:
        seed = int.from_bytes(hashlib.sha256(f"order\0{participant}".encode()).digest()[:8], "big")
        order = list(self.order)
        random.Random(seed).shuffle(order)
        return order

    def answered(self, participant: str) -> dict:
        with self._conn() as c:
            rows = c.execute("SELECT item_id, COUNT(*) FROM votes WHERE participant=? GROUP BY item_id",
                             (participant,)).fetchall()
        return dict(rows)

    def next_item(self, participant: str) -> Optional[str]:
        """The first item (in this participant's shuffled order) not yet answered on all questions."""
        participant = self._check_participant(participant)
        done = self.answered(participant)
        return next((i for i in self.participant_order(participant) if done.get(i, 0) < len(QUESTIONS)), None)

    def vote(self, participant: str, item_id: str, answers: dict) -> int:
        """Record ``{question: letter}``; returns how many votes were written (replacing earlier ones)."""
        participant = self._check_participant(participant)
        if item_id not in self.items:
            raise SSERDError(f"Unknown study item '{item_id}'.")
        mapping = self.letters(participant, item_id)
        rows = []
        for q, letter in answers.items():
            if q not in QUESTIONS:
                raise SSERDError(f"Unknown question '{q}'; questions: {', '.join(QUESTIONS)}.")
            if letter in (None, ""):
                continue
            letter = str(letter).strip().upper()
            if letter not in mapping:
                raise SSERDError(f"Clip '{letter}' is not shown for this item (choose one of {', '.join(mapping)}).")
            rows.append((participant, item_id, q, self.items[item_id]["emotion"], letter, mapping[letter], time.time()))
        with self._conn() as c:
            c.executemany("INSERT OR REPLACE INTO votes VALUES (?,?,?,?,?,?,?)", rows)
        return len(rows)


# --------------------------------------------------------------------------- report

def study_table(db_path: Union[str, Path]) -> tuple[dict, dict]:
    """``({method: {question: [8 percentages or None]}}, {question: {emotion: n_votes}})`` from a study DB.

    Columns: the 7 emotions, then All (the method's share of all the question's votes)."""
    if not Path(db_path).is_file():
        raise SSERDError(f"Study database {db_path} not found.")
    with sqlite3.connect(str(db_path)) as c:
        try:
            votes = c.execute("SELECT question, emotion, method FROM votes").fetchall()
            methods = [m for (m,) in c.execute("SELECT method FROM methods ORDER BY method")]
        except sqlite3.OperationalError:
            raise SSERDError(f"{db_path} is not a study database.") from None
    counts = defaultdict(lambda: defaultdict(int))
    totals = defaultdict(lambda: defaultdict(int))
    for q, emo, m in votes:
        counts[(m, q)][emo] += 1
        totals[q][emo] += 1
    methods = sorted(set(methods) | {m for _, _, m in votes})
    table = {}
    for m in methods:
        table[m] = {}
        for q in QUESTIONS:
            cells = [100.0 * counts[(m, q)][e] / totals[q][e] if totals[q][e] else None for e in EMOTIONS]
            n_all = sum(totals[q].values())
            table[m][q] = cells + [100.0 * sum(counts[(m, q)].values()) / n_all if n_all else None]
    return table, {q: dict(v) for q, v in totals.items()}


def write_study_report(db_path: Union[str, Path], out_dir: Optional[Union[str, Path]] = None) -> Path:
    """Write ``study_report.md`` and ``study_report.csv`` (percent of votes per method, then the paper's
    Table 3 as reference rows); returns the Markdown path. CSV columns: source (study|paper), method,
    question, the 7 emotions, All."""
    from ..metrics.paper import STUDY_COLUMNS, source_note, study_rows

    table, totals = study_table(db_path)
    out = Path(out_dir) if out_dir else Path(db_path).parent
    out.mkdir(parents=True, exist_ok=True)
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}%"  # noqa: E731
    head = ["| Method | Question | " + " | ".join(STUDY_COLUMNS) + " |", "|---|---|" + "---:|" * len(STUDY_COLUMNS)]
    lines = ["# User study: share of votes per method\n", *head]
    rows = []
    for m, qs in table.items():
        for q, cells in qs.items():
            lines.append(f"| {m} | {q} | " + " | ".join(fmt(v) for v in cells) + " |")
            rows.append(["study", m, q] + ["" if v is None else f"{v:.4g}" for v in cells])
    lines.append("\nVotes per question and emotion: " + "; ".join(
        f"{q}: " + ", ".join(f"{e} {n}" for e, n in sorted(v.items())) for q, v in totals.items()) + "\n")
    lines += ["## The paper's user study (Table 3), for reference\n", *head]
    for m, qs in study_rows().items():
        for q in QUESTIONS:
            lines.append(f"| {m} (paper) | {q} | " + " | ".join(f"{v:g}%" for v in qs[q]) + " |")
            rows.append(["paper", m, q] + [f"{v:g}" for v in qs[q]])
    lines.append(f"\n{source_note()}\n")
    md = out / "study_report.md"
    md.write_text("\n".join(lines))
    with open(out / "study_report.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "method", "question"] + list(STUDY_COLUMNS))
        w.writerows(rows)
    return md


# --------------------------------------------------------------------------- the app

def build_app(manifest: Union[str, Path], db_path: Union[str, Path]):
    """The Gradio Blocks app; ``app.launch(allowed_paths=app.study_allowed_paths)`` serves the clips."""
    import gradio as gr

    items = load_manifest(manifest)
    db = StudyDB(db_path, items)

    def _user_errors(fn):
        @functools.wraps(fn)
        def wrapped(*args):
            try:
                return fn(*args)
            except SSERDError as exc:  # shown to the participant / the API caller as is
                raise gr.Error(str(exc)) from None

        return wrapped

    def next_item(participant: str) -> dict:
        """The participant's next unanswered item: ``{"item_id", "emotion", "letters", "remaining"}`` (item_id None when done)."""
        item_id = db.next_item(participant)
        done = db.answered(participant.strip())
        remaining = sum(done.get(i, 0) < len(QUESTIONS) for i in db.order)
        if item_id is None:
            return {"item_id": None, "emotion": None, "letters": [], "remaining": 0}
        return {"item_id": item_id, "emotion": db.items[item_id]["emotion"],
                "letters": list(db.letters(participant, item_id)), "remaining": remaining}

    def submit_vote(participant: str, item_id: str, realism: str, emotion: str, mouth: str) -> dict:
        """Record the three answers (letters) for one item; returns ``{"recorded", "next"}``."""
        n = db.vote(participant, item_id, {"realism": realism, "emotion": emotion, "mouth": mouth})
        return {"recorded": n, "next": next_item(participant)}

    def show(participant):
        try:
            info = next_item(participant)
        except SSERDError as exc:
            raise gr.Error(str(exc))
        hidden = [gr.update(visible=False, value=None) for _ in range(MAX_CLIPS)]
        if info["item_id"] is None:
            return ("Thank you — you have answered every item.", "", None, None, *hidden,
                    *[gr.update(choices=[], value=None) for _ in QUESTIONS])
        it = db.items[info["item_id"]]
        mapping = db.letters(participant, info["item_id"])
        vids = [gr.update(visible=True, value=it["clips"][mapping[k]], label=f"Clip {k}") if k in mapping
                else gr.update(visible=False, value=None) for k in LETTERS[:MAX_CLIPS]]
        status = f"Item {len(db.order) - info['remaining'] + 1} of {len(db.order)} · target emotion: {it['emotion']}"
        ref = it["reference"]
        ref_img = ref if ref and Path(ref).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") else None
        if ref and ref_img is None:
            from .. import media

            ref_img = media.picture_of(ref)  # a driving clip: its middle frame
        return (status, info["item_id"], it["source"], ref_img, *vids,
                *[gr.update(choices=list(mapping), value=None) for _ in QUESTIONS])

    def vote_ui(participant, item_id, r, e, m):
        if not item_id:
            raise gr.Error("Press Start first.")
        if not (r and e and m):
            raise gr.Error("Answer all three questions.")
        try:
            db.vote(participant, item_id, {"realism": r, "emotion": e, "mouth": m})
        except SSERDError as exc:
            raise gr.Error(str(exc))
        return show(participant)

    with gr.Blocks(title="SSERD user study") as app:
        gr.Markdown("# Which edit is best?\nEnter your participant ID and press **Start**. For each item, compare "
                    "the anonymised clips with the source clip and the reference face, and answer the three "
                    "questions. You can stop at any time and continue later with the same ID.")
        with gr.Row():
            participant = gr.Textbox(label="Participant ID", scale=3)
            start = gr.Button("Start / continue", variant="primary", scale=1)
        status = gr.Markdown()
        item_box = gr.Textbox(visible=False)
        with gr.Row():
            source = gr.Video(label="Source clip (the speech to keep)", interactive=False)
            reference = gr.Image(label="Reference face (the emotion to show)", interactive=False)
        with gr.Row():
            videos = [gr.Video(label=f"Clip {k}", visible=False, interactive=False) for k in LETTERS[:MAX_CLIPS]]
        radios = [gr.Radio(choices=[], label=text) for text in QUESTIONS.values()]
        submit = gr.Button("Submit and next", variant="primary")
        outs = [status, item_box, source, reference, *videos, *radios]
        start.click(show, participant, outs, api_visibility="private")
        submit.click(vote_ui, [participant, item_box, *radios], outs, api_visibility="private")
        gr.api(_user_errors(next_item), api_name="next_item")
        gr.api(_user_errors(submit_vote), api_name="submit_vote")
    paths = {str(Path(p).resolve().parent) for it in items for p in list(it["clips"].values()) +
             [it["source"], it["reference"]] if p}
    app.study_allowed_paths = sorted(paths)
    app.study_db = db
    return app
