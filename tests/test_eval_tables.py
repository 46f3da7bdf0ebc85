"""Table layout like the paper's, set-level Fréchet pooling, and the paper-network loaders' errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from sserd_core.emotion import EMOTIONS
from sserd_core.errors import SSERDError
from sserd_core.eval.tables import CSV_HEADER, build_table, load_records, markdown, write_reports
from sserd_core.metrics import networks
from sserd_core.metrics.frechet import frechet_distance_features


def _write_clip(out, protocol, method, emotion, idx, metrics, gen, real, real_path):
    base = out / "clips" / protocol / method / f"{protocol}_a{idx}_{emotion}"
    base.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(base.with_suffix(".npz"), real_path=np.array(real_path), gen_dlib=gen, real_dlib=real)
    rec = {"item": {"id": base.name}, "method": method, "status": "ok", "target": emotion, "metrics": metrics}
    base.with_suffix(".json").write_text(json.dumps(rec))


@pytest.fixture()
def fake_run(tmp_path):
    rng = np.random.default_rng(0)
    data = {}
    for method in ("landmark", "source"):
        for emotion in ("happy", "sad"):
            for idx in range(2):
                gen = rng.normal(size=(6, 4))
                real = rng.normal(size=(6, 4)) + 1
                mlmd = {"landmark": 0.02, "source": 0.0}[method] + 0.01 * idx
                _write_clip(tmp_path, "intra", method, emotion, idx,
                            {"M-LMD": mlmd, "ID-FD (dlib)": 1.0, "EmoAcc (landmark)": None}, gen, real,
                            f"/real/{emotion}_{idx}.mp4")
                data[(method, emotion, idx)] = (gen, real)
    return tmp_path, data


def test_table_cells_layout_and_pooling(fake_run):
    out, data = fake_run
    recs = load_records(out, "intra")
    table = build_table(recs, ["landmark", "source"])
    row = table["landmark"]["M-LMD"]
    assert len(row) == 8
    h, s = EMOTIONS.index("happy"), EMOTIONS.index("sad")
    assert row[h] == pytest.approx(0.025) and row[s] == pytest.approx(0.025)
    assert row[-1] == pytest.approx(0.025)  # Avg. over the emotions that have values
    assert [row[i] for i in range(7) if i not in (h, s)] == [None] * 5
    # ID-FD is pooled over all frames of the cell, not the mean of per-clip values (1.0)
    gens = np.concatenate([data[("landmark", "happy", i)][0] for i in range(2)])
    reals = np.concatenate([data[("landmark", "happy", i)][1] for i in range(2)])
    assert table["landmark"]["ID-FD (dlib)"][h] == pytest.approx(frechet_distance_features(reals, gens))
    assert "EmoAcc (landmark)" not in table["landmark"]  # no values → no row

    md = markdown(table, "MEAD · intra-ID", paper={"X": {"FAD": [0.5] * 8, "LSE-D": [8.0] * 8, "CSIM": [0.9] * 8}})
    header = "| Method | Metric | neutral | angry | disgusted | fear | happy | sad | surprised | Avg. |"
    assert md.count(header) == 2  # paper-metric table + proxy table, same columns
    assert "| X (paper) | FAD ↓ | " + " | ".join(["0.500"] * 8) + " |" in md
    assert "| landmark | M-LMD ↓ | n/a | n/a | n/a | n/a | 0.025 | 0.025 | n/a | 0.025 |" in md
    proxy_part = md.split("Offline proxies")[1]
    assert "(paper)" not in proxy_part and "| FAD" not in proxy_part


def test_write_reports_files(fake_run):
    out, _ = fake_run
    summary = write_reports(out, "MEAD", ["intra"], ["landmark", "source"])
    with open(summary["files"]["csv"]) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == CSV_HEADER
    paper_rows = [r for r in rows if r[2] == "paper"]  # values: tests/test_paper_reference.py
    assert {r[3] for r in paper_rows} == {"ICface", "DSM", "NED", "SSERD"} and all(all(r[5:]) for r in paper_rows)
    assert any(r[2] == "measured" and r[3] == "source" and r[4] == "M-LMD" for r in rows)
    charts = summary["files"]["charts"]
    assert any(c.endswith("intra_M-LMD.png") for c in charts)
    with open(charts[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    res = json.loads((out / "results.json").read_text())
    assert len(res["settings"]["intra"]["clips"]) == 8


def test_network_loaders_need_weights(tmp_path):
    with pytest.raises(SSERDError, match="--syncnet"):
        networks.SyncNetScorer(None)
    with pytest.raises(SSERDError, match="--arcface"):
        networks.ArcFaceEmbedder("")
    with pytest.raises(SSERDError, match="no such file"):
        networks.EmotionFeatureNet(str(tmp_path / "missing.onnx"))
    with pytest.raises(SSERDError, match="no weights file"):
        networks.ArcFaceEmbedder(str(tmp_path))
    bad = tmp_path / "bad.model"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(SSERDError, match="not a SyncNet state dict"):
        networks.SyncNetScorer(str(bad))


def test_syncnet_state_dict_loads_and_scores(tmp_path):
    """A state dict with the official key layout loads strictly; LSE-D search returns an offset within ±vshift."""
    torch.manual_seed(0)
    model = networks._syncnet_module()
    path = tmp_path / "syncnet_v2.model"
    torch.save(model.state_dict(), path)
    scorer = networks.SyncNetScorer(str(tmp_path), vshift=3, batch=8)  # a folder holding syncnet_v2.model
    assert scorer.path == path
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (16, 224, 224, 3), dtype=np.uint8)
    audio = rng.normal(0, 3000, 16000 * 16 // 25)
    res = scorer.score(crops, audio)
    assert np.isfinite(res["LSE-D"]) and res["LSE-D"] > 0 and -3 <= res["offset"] <= 3
    assert networks.mfcc(np.zeros(16000) + 1.0).shape == (99, 13)


def test_arcface_torchscript_embeds_aligned_faces(tmp_path):
    class Tiny(torch.nn.Module):
        def forward(self, x):  # [B, 3, 112, 112] in -1..1 → [B, 3]: mean colour
            return x.mean(dim=(2, 3))

    path = tmp_path / "arcface.pt"
    torch.jit.script(Tiny()).save(str(path))
    emb = networks.ArcFaceEmbedder(str(path))
    from sserd_core import expression

    lm = expression.population_neutral() * 60 + [100, 90]
    rgb = np.zeros((200, 200, 3), np.uint8)
    rgb[..., 0] = 255
    out = emb([rgb, rgb], [lm, lm])
    assert out.shape == (2, 3)
    assert np.allclose(out[:, 0], 1.0, atol=1e-3) and np.allclose(out[:, 1:], -1.0, atol=1e-3)
    # the 5-point alignment maps the landmarks onto the ArcFace template
    m = networks.similarity_transform(networks.five_points(lm), networks.ARCFACE_TEMPLATE)
    mapped = networks.five_points(lm) @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - networks.ARCFACE_TEMPLATE).max() < 6
