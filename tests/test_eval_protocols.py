"""The evaluation's protocols and crops are the official ones (ZH-Xu410/SSERD scripts/test_intra.py,
scripts/test_cross.py, scripts/get_masked_imgs.py); the project's earlier variants stay under their own names."""

from __future__ import annotations

import numpy as np
import pytest

from sserd_core.emotion import EMOTIONS
from sserd_core.errors import SSERDError
from sserd_core.eval.datasets import Clip
from sserd_core.eval.measure import Networks, measure_clip, official_crop
from sserd_core.eval.protocols import OFFICIAL_CROSS_MAP, build_items, cross_partner, parse_protocols

MEAD_TEST = ("M003", "M009", "W029", "M012", "M030", "W015")


def _clips(actors, emotions=("neutral", "happy", "sad"), n=2):
    return [Clip(a, e, f"{k:03d}", f"/data/{a}/{e}/{k:03d}.mp4") for a in actors for e in emotions for k in range(n)]


def test_default_protocols_are_the_official_two():
    assert parse_protocols("both") == ["intra", "cross"]
    assert parse_protocols("") == ["intra", "cross"]
    assert parse_protocols("all") == ["intra", "cross", "intra-neutral", "cross-next"]
    with pytest.raises(SSERDError, match="Unknown protocol"):
        parse_protocols("sideways")


def test_intra_drives_every_emotional_clip_with_itself():
    items = build_items(_clips(MEAD_TEST), ["intra"], ["happy", "neutral"])
    assert len(items) == 6 * 2 * 2  # every clip of every actor and emotion, neutral included
    for it in items:
        assert it.source == it.reference == it.real  # official: net(S, S, None); real = S
        assert it.source.emotion == it.emotion and it.source.actor == it.actor


def test_cross_uses_the_official_actor_map():
    assert OFFICIAL_CROSS_MAP == {"M003": "W015", "M009": "M003", "W029": "M009", "M012": "W029",
                                  "M030": "M012", "W015": "M030"}
    items = build_items(_clips(MEAD_TEST), ["cross"], ["happy"])
    assert len(items) == 6 * 2
    for it in items:
        assert it.source.emotion == "neutral" and it.source.actor == it.actor
        assert it.reference.actor == OFFICIAL_CROSS_MAP[it.actor] and it.reference.emotion == "happy"
        assert it.real.actor == it.actor and it.real.emotion == "happy" and it.real.sentence == it.source.sentence
    # the earlier project pairing (next actor in sorted order) shares no pair with the official map
    nxt = {it.actor: it.reference.actor for it in build_items(_clips(MEAD_TEST), ["cross-next"], ["happy"])}
    assert not set(nxt.items()) & set(OFFICIAL_CROSS_MAP.items())


def test_cross_partner_outside_the_official_six_follows_the_maps_rule():
    actors = ["A", "B", "C"]
    assert [cross_partner(a, actors) for a in actors] == ["C", "A", "B"]  # the previous actor, cyclic
    assert [cross_partner(a, actors, official=False) for a in actors] == ["B", "C", "A"]
    # a partner without the emotion is skipped
    assert cross_partner("B", actors, has_emotion=lambda a: a != "A") == "C"
    # official actors keep their official partner even beside others
    assert cross_partner("M003", ["M003", "M009", "W015", "X001"]) == "W015"


def test_intra_neutral_keeps_the_former_protocol():
    items = build_items(_clips(["A", "B"]), ["intra-neutral"], ["happy"])
    assert all(it.source.emotion == "neutral" and it.reference.actor == it.actor and it.reference.emotion == "happy"
               for it in items) and len(items) == 4


def _portrait(size=256):
    """A real face: the first frame of the project's sample clip (assets/sample.mp4)."""
    from pathlib import Path

    from sserd_core import media

    path = Path(__file__).resolve().parents[1] / "assets" / "sample.mp4"
    if not path.is_file():
        pytest.skip("assets/sample.mp4 not generated yet")
    return path, media.picture_of(str(path))


def test_official_crop_is_the_aligned_masked_network_crop():
    from sserd_core.face import detect_landmarks
    from sserd_core.neural import align_face, face_mask
    from sserd_core.neural.align import template_in_crop

    _, rgb = _portrait()
    lm = detect_landmarks(rgb)[0]
    crop, lm_crop = official_crop(rgb, lm)
    aligned, _ = align_face(rgb, lm, 256, "sserd-template")
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    inside = face_mask(lm_crop, 256) >= 0.5
    assert np.array_equal(crop[inside], aligned[inside])  # the network-input crop where the face is
    assert not crop[~inside].any()  # zero outside the face mask (official get_masked_imgs.py)
    assert 0.2 < inside.mean() < 0.8
    # the crop is the best similarity fit of the face onto SSERD's template (official alignment): fitting the
    # crop's landmarks onto the template again gives the identity
    from sserd_core.neural.align import similarity_fit

    assert np.allclose(similarity_fit(lm_crop, template_in_crop(256)), [[1, 0, 0], [0, 1, 0]], atol=1e-3)


class _Recorder:
    """A stand-in metric network that records what it is given (a constant 4-d feature)."""

    def __init__(self):
        self.shapes = []

    def __call__(self, images, landmarks):
        self.shapes += [im.shape for im in images]
        return [np.ones(4, np.float32) for _ in images]


def test_metric_networks_see_official_crops_by_default():
    path, _ = _portrait()
    rec = _Recorder()
    measure_clip(str(path), embed_every=100, networks=Networks(arcface=rec), max_frames=3)
    assert rec.shapes and all(s == (256, 256, 3) for s in rec.shapes)
    rec2 = _Recorder()
    m = measure_clip(str(path), embed_every=100, networks=Networks(arcface=rec2), max_frames=3, crops="frame")
    assert rec2.shapes and all(s[:2] != (256, 256) for s in rec2.shapes) and m.n_faces == 3
    with pytest.raises(SSERDError, match="crops"):
        measure_clip(str(path), crops="square")
