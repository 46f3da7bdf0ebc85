"""The rim-displacement measure (``bench/rim_displacement.py``) reads what a glasses frame did.

It is a measuring tool for the benchmark, so it is checked against moves whose size is known:
the source itself (0), a plain re-encode with the product writer's settings (codec noise only:
about 0.001 IOD), and the whole frame shifted by 3 px (3 px / IOD on every keyframe), on the
hand-traced rims of every annotated clip (``assets/real/annotations/*.json``): the thick plastic
frame of ``assets/sample_hopper.mp4`` and the thin metal frame of ``assets/real/real_glasses_metal.mp4``.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HOPPER = ROOT / "assets" / "sample_hopper.mp4"
ANNOTATION_FILES = sorted((ROOT / "assets" / "real" / "annotations").glob("*.json"))
#: the inter-ocular distance (px) each clip's faces have, roughly: a sanity range for the 3 px test
IOD_RANGE = {"sample_hopper": (70, 100), "real_glasses_metal": (60, 80)}


def _load():
    spec = importlib.util.spec_from_file_location("rim_displacement", ROOT / "bench" / "rim_displacement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rd = _load()


def _clip_of(ann_path: Path) -> Path:
    name = json.loads(ann_path.read_text())["clip"]
    found = [p for p in (ROOT / "assets" / name, ROOT / "assets" / "real" / name) if p.exists()]
    assert found, f"{ann_path.name}: its clip {name} is in neither assets/ nor assets/real/"
    return found[0]


def _frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module", params=ANNOTATION_FILES, ids=lambda p: p.stem)
def traced(request):
    """(annotation file stem, clip path, annotations, decoded keyframes) of each annotated clip."""
    clip = _clip_of(request.param)
    ann = rd.load_annotations(request.param)
    return request.param.stem, clip, ann, rd.decode_frames(clip, list(ann["keyframes"]))


def test_every_annotation_file_is_found_by_its_clip_name():
    assert {p.stem for p in ANNOTATION_FILES} >= {"sample_hopper", "real_glasses_metal"}
    for p in ANNOTATION_FILES:
        assert rd.annotations_for(_clip_of(p)) == p


def _ridge_contrast(grey: np.ndarray, polys: dict, width: int) -> tuple[float, float]:
    """Mean |LoG| (sigma 1) on the traced pixels, and the largest mean on the same polylines moved
    4 px in any of 8 directions (4.2 px diagonally): a thin wire traced along its middle reads higher than any offset copy."""
    import cv2

    log = np.abs(cv2.Laplacian(cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0), cv2.CV_32F))
    on = log[rd.rim_mask(polys, grey.shape, width)].mean()
    off = max(log[rd.rim_mask({k: (np.asarray(v) + d).tolist() for k, v in polys.items()}, grey.shape, width)].mean()
              for d in [(4, 0), (-4, 0), (0, 4), (0, -4), (3, 3), (-3, 3), (3, -3), (-3, -3)])
    return float(on), float(off)


def test_annotations_cover_the_clip_and_lie_on_the_frame(traced):
    name, clip, ann, frames = traced
    n_frames = _frame_count(clip)
    assert len(ann["keyframes"]) >= 6
    assert max(ann["keyframes"]) >= 0.9 * (n_frames - 1)  # spread over the clip, not bunched at its start
    assert max(ann["keyframes"]) < n_frames
    assert ann["line_width_px"] == 2
    assert "by eye" in ann["how"]
    kind = ann["frame_kind"]
    assert "plastic" in kind or "metal" in kind, kind
    ratios = []
    for n, polys in ann["keyframes"].items():
        assert {"left_rim", "right_rim", "bridge"} <= set(polys)
        grey = frames[n].mean(2)
        if "plastic" in kind:
            # the traced pixels include the dark upper rims: darker than the face around them
            mask = rd.rim_mask(polys, grey.shape, ann["line_width_px"])
            assert grey[mask].min() < 60, (name, n)
        else:
            # a thin light wire is not dark: the trace must follow the line itself, not run beside it
            on, off = _ridge_contrast(grey, polys, ann["line_width_px"])
            assert on > 1.03 * off, (name, n, on, off)
            ratios.append(on / off)
    if ratios:  # over all keyframes: the traces read ~1.15 against the best of their copies moved 4 px (4.2 diagonally)
        assert np.mean(ratios) > 1.08, (name, ratios)


def test_no_change_reads_zero_and_a_3px_shift_reads_3px(traced):
    name, _, ann, frames = traced
    assert rd.rim_displacement(frames, frames, ann)["p95_iod"] == 0.0
    r = rd.rim_displacement(frames, rd.shifted(frames, 3.0), ann)
    assert r["p95_px"] == pytest.approx(3.0, abs=0.15)
    for k in r["keyframes"].values():
        assert k["median_px"] == pytest.approx(3.0, abs=0.1)
        assert k["p95_iod"] == pytest.approx(3.0 / k["iod_px"], rel=0.06)
        lo, hi = IOD_RANGE[name]
        assert lo < k["iod_px"] < hi  # e.g. the portrait's eyes are ~85 px apart at 448 px


def test_a_plain_reencode_reads_codec_noise_only(traced, tmp_path):
    _, clip, ann, frames = traced
    out = tmp_path / "re.mp4"
    rd.reencode(clip, out)
    r = rd.rim_displacement(frames, rd.decode_frames(out, list(ann["keyframes"])), ann)
    assert 0.0 < r["p95_iod"] < 0.005


def test_a_move_of_the_frame_alone_is_seen_and_the_face_around_it_is_not(traced):
    """Shift only the pixels near the rims (the frame bends) vs only pixels away from them (the face
    moves behind a still frame): the measure sees the first and not the second."""
    import cv2

    _, _, ann, frames = traced
    near, far = {}, {}
    for n, f in frames.items():
        mask = rd.rim_mask(ann["keyframes"][n], f.shape[:2], 9)
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)[..., None]
        moved = rd.shifted({n: f}, 0.0, 3.0)[n].astype(np.float32)
        near[n] = (f * (1 - soft) + moved * soft).round().astype(np.uint8)
        away = 1 - cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(np.float32)
        away = cv2.GaussianBlur(away, (0, 0), 2.0)[..., None]
        far[n] = (f * (1 - away) + moved * away).round().astype(np.uint8)
    assert rd.rim_displacement(frames, near, ann)["p95_px"] > 2.0
    assert rd.rim_displacement(frames, far, ann)["p95_px"] < 0.5


def test_cli_names_a_missing_annotation_file(tmp_path):
    import subprocess
    import sys

    clip = tmp_path / "someone.mp4"
    clip.write_bytes(HOPPER.read_bytes())
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "rim_displacement.py"), str(clip), str(clip)],
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "no rim annotations for someone.mp4" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
