"""The documented command sequence, official ``.pt`` + a MEAD folder → the paper's Table 1 rows, every step run:
``sserd convert`` → the model card's own ``sserd edit`` command → ``sserd eval`` with the checkpoint.

A tiny random checkpoint in the official format and a tiny MEAD-layout folder cut from the project's sample
clips (real faces; the emotion folders hold other moments of the same clips, enough to run the protocols)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from models_helpers import official_tiny_checkpoint
from sserd_core.cli import main
from sserd_core.eval.mini import ACTORS, _segment

pytestmark = pytest.mark.skipif(not all(p.is_file() for p in ACTORS.values()),
                                reason="assets/sample.mp4 / sample_hopper.mp4 not generated yet")


def make_tiny_mead(root: Path, seconds: float = 0.2, size: int = 192) -> Path:
    """``root/<actor>/video/front/<emotion>/level_<k>/001.mp4`` for actors M003 (astronaut) and W015 (Hopper)."""
    for actor, src in (("M003", ACTORS["astronaut"]), ("W015", ACTORS["hopper"])):
        for k, (emotion, level) in enumerate((("neutral", 1), ("happy", 3))):
            out = root / actor / "video" / "front" / emotion / f"level_{level}" / "001.mp4"
            out.parent.mkdir(parents=True, exist_ok=True)
            _segment(src, out, 0.6 + 0.5 * k, seconds, size)
    return root


def test_official_checkpoint_to_table_1_rows(tmp_path, capsys):
    pt = tmp_path / "sserd_official.pt"
    torch.save(official_tiny_checkpoint(), pt)
    mead = make_tiny_mead(tmp_path / "MEAD")

    # 1. convert
    assert main(["convert", str(pt), str(tmp_path / "sserd-mead")]) == 0
    card = (tmp_path / "sserd-mead" / "README.md").read_text()

    # 2. the command the model card prints runs as printed (placeholders filled in)
    line = re.search(r"`(sserd edit [^`]+)`", card).group(1)
    face = tmp_path / "face.png"
    from sserd_core import media

    import cv2
    cv2.imwrite(str(face), media.picture_of(str(ACTORS["hopper"]))[..., ::-1])
    argv = [a.replace("INPUT.mp4", str(mead / "M003/video/front/neutral/level_1/001.mp4"))
             .replace("OUTPUT.mp4", str(tmp_path / "edited.mp4")).replace("FACE.png", str(face))
            for a in shlex.split(line)[1:]]
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)  # the card names the folder relative to where it was written
    try:
        assert main(argv + ["-q"]) == 0, capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert media.probe_video(str(tmp_path / "edited.mp4")).n_frames == 5

    # 3. the paper's protocols with the converted model; the tables carry Table 1's published rows beside
    out = tmp_path / "results"
    assert main(["eval", "--data", str(mead), "--out", str(out), "--checkpoint", f"SSERD={tmp_path / 'sserd-mead'}",
                 "--methods", "source", "--emotions", "neutral,happy", "--embed-every", "5", "--no-progress",
                 "--dtype", "fp32", "--batch-size", "3", "--noise-mode", "random", "--max-face-size", "128"]) == 0
    md = (out / "tables" / "results.md").read_text()
    assert "MEAD · intra-ID" in md and "MEAD · cross-ID" in md
    res = json.loads((out / "results.json").read_text())
    for protocol in ("intra", "cross"):
        clips = [c for c in res["settings"][protocol]["clips"] if c["method"] == "SSERD"]
        assert len(clips) == 4 and all(c["status"] == "ok" and c["crops"] == "aligned" for c in clips)
        assert "SSERD" in res["settings"][protocol]["table"] and res["settings"][protocol]["paper"]
    cross = {c["item"]["actor"]: c["item"]["reference"]["actor"]
             for c in res["settings"]["cross"]["clips"] if c["method"] == "SSERD"}
    assert cross == {"M003": "W015", "W015": "M003"}  # official map for M003; W015's partner M030 is absent
    assert "| Ours (paper)" in md or "(paper)" in md  # Table 1's published rows
