"""The user-study app: votes through gradio_client land in SQLite, one per participant+question, and the report counts them."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from fractions import Fraction

from sserd_core import media
from sserd_core.errors import SSERDError
from sserd_core.eval.study_app import QUESTIONS, StudyDB, build_app, study_table, write_study_report


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    clips = {}
    for name, colour in (("landmark", 40), ("naive", 120), ("source", 200)):
        p = d / f"{name}.mp4"
        with media.VideoWriter(str(p), 64, 64, Fraction(25)) as vw:
            for i in range(5):
                vw.write(np.full((64, 64, 3), colour + i, np.uint8), i / 25)
        clips[name] = str(p)
    ref = d / "ref.png"
    media.write_image(ref, np.full((32, 32, 3), 128, np.uint8))
    items = [{"id": f"item{k}", "emotion": emo, "source": clips["source"], "reference": str(ref), "clips": clips}
             for k, emo in enumerate(["happy", "sad", "happy"])]
    path = d / "study.json"
    path.write_text(json.dumps({"items": items}))
    return path


def test_votes_through_gradio_client(manifest, tmp_path):
    from gradio_client import Client

    db_path = tmp_path / "votes.sqlite"
    app = build_app(manifest, db_path)
    app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
               allowed_paths=app.study_allowed_paths)
    try:
        client = Client(app.local_url, verbose=False)
        first = client.predict("alice", api_name="/next_item")
        assert first["item_id"] in {"item0", "item1", "item2"} and sorted(first["letters"]) == ["A", "B", "C"]
        mapping = app.study_db.letters("alice", first["item_id"])
        inv = {m: k for k, m in mapping.items()}
        # alice prefers "landmark" for realism and mouth, "naive" for emotion
        res = client.predict("alice", first["item_id"], inv["landmark"], inv["naive"], inv["landmark"],
                             api_name="/submit_vote")
        assert res["recorded"] == 3 and res["next"]["item_id"] != first["item_id"]
        # voting again on the same item replaces the earlier votes (one vote per participant + question)
        client.predict("alice", first["item_id"], inv["landmark"], inv["landmark"], inv["landmark"],
                       api_name="/submit_vote")
        with sqlite3.connect(db_path) as c:
            rows = c.execute("SELECT question, method FROM votes WHERE participant='alice'").fetchall()
        assert sorted(rows) == [("emotion", "landmark"), ("mouth", "landmark"), ("realism", "landmark")]
        # a bad letter is refused with a readable error, nothing recorded
        with pytest.raises(Exception, match="not shown"):
            client.predict("alice", first["item_id"], "Z", "A", "A", api_name="/submit_vote")
        # bob answers everything; his letters are drawn independently but stay stable
        assert app.study_db.letters("bob", "item1") == app.study_db.letters("bob", "item1")
        nxt = client.predict("bob", api_name="/next_item")
        seen = []
        while nxt["item_id"] is not None:
            seen.append(nxt["item_id"])
            inv = {m: k for k, m in app.study_db.letters("bob", nxt["item_id"]).items()}
            nxt = client.predict("bob", nxt["item_id"], inv["source"], inv["naive"], inv["landmark"],
                                 api_name="/submit_vote")["next"]
        assert sorted(seen) == ["item0", "item1", "item2"]
    finally:
        app.close()

    # resumable: a new app on the same DB continues where alice stopped (not the item she answered)
    db = StudyDB(db_path, json.loads(manifest.read_text())["items"])
    assert db.next_item("alice") not in (None, first["item_id"])
    assert db.next_item("bob") is None

    table, totals = study_table(db_path)
    h = 4  # EMOTIONS index of "happy"
    # happy items: alice 1 (item0 or item2 if hers was happy) + bob 2; check totals against the DB
    with sqlite3.connect(db_path) as c:
        n_happy_realism = c.execute("SELECT COUNT(*) FROM votes WHERE question='realism' AND emotion='happy'").fetchone()[0]
        n_happy_landmark = c.execute("SELECT COUNT(*) FROM votes WHERE question='realism' AND emotion='happy' "
                                     "AND method='landmark'").fetchone()[0]
    assert totals["realism"]["happy"] == n_happy_realism
    assert table["landmark"]["realism"][h] == pytest.approx(100 * n_happy_landmark / n_happy_realism)
    for q in QUESTIONS:
        col = [table[m][q][h] for m in table]
        assert sum(col) == pytest.approx(100.0)
    # bob voted "naive" for emotion on all items, alice "landmark" on one
    assert table["naive"]["emotion"][-1] > 50
    md = write_study_report(db_path, tmp_path / "report")
    text = md.read_text()
    assert text.count("| Method | Question | neutral | angry | disgusted | fear | happy | sad | surprised | All |") == 2
    # All = the share of all the question's votes (the paper's "all" column), not a mean of the emotion cells
    with sqlite3.connect(db_path) as c:
        n_emotion = c.execute("SELECT COUNT(*) FROM votes WHERE question='emotion'").fetchone()[0]
        n_naive = c.execute("SELECT COUNT(*) FROM votes WHERE question='emotion' AND method='naive'").fetchone()[0]
    assert table["naive"]["emotion"][-1] == pytest.approx(100 * n_naive / n_emotion)
    assert (tmp_path / "report" / "study_report.csv").is_file()


def test_study_db_rules(manifest, tmp_path):
    items = json.loads(manifest.read_text())["items"]
    db = StudyDB(tmp_path / "v.sqlite", items)
    with pytest.raises(SSERDError):
        db.next_item("  ")
    with pytest.raises(SSERDError):
        db.vote("carol", "nope", {"realism": "A"})
    with pytest.raises(SSERDError):
        db.vote("carol", "item0", {"beauty": "A"})
    # different participants get independently shuffled letters (anonymised), each a permutation
    maps = [db.letters(f"p{i}", "item0") for i in range(12)]
    assert all(sorted(m.values()) == ["landmark", "naive", "source"] for m in maps)
    assert len({tuple(m.values()) for m in maps}) > 1
