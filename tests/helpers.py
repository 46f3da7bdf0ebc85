"""Measurement helpers for the tests: an independent detection pass on output videos.

These never use the editor's internal targets: every landmark here comes from running
the face detector and the 68-point model afresh on the decoded output frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sserd_core import expression as E
from sserd_core.geometry import to_canonical
from sserd_core import media
from sserd_core.face import detect_landmarks

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "sample.mp4"            # astronaut (smiling, no glasses)
SAMPLE_HOPPER = ROOT / "assets" / "sample_hopper.mp4"  # Grace Hopper (neutral, glasses)
ASTRONAUT_FACE = ROOT / "assets" / "astronaut_face.png"


def frames(path, end=None, step=1):
    info = media.probe_video(path, end=end)
    return [f.rgb for f in media.iter_frames(info) if f.index % step == 0]


def redetect(path, end=None, step=1) -> np.ndarray:
    """Landmarks ``[N, 68, 2]`` of the largest face, detected independently on each decoded frame."""
    out = []
    for rgb in frames(path, end, step):
        lms = detect_landmarks(rgb)
        out.append(lms[0] if lms else np.full((68, 2), np.nan, np.float32))
    return np.stack(out)


def features(landmarks: np.ndarray) -> np.ndarray:
    """Emotion features ``[N, 9]`` (see sserd_core.expression.FEATURES) of landmark sets."""
    return np.stack([E.emotion_features(to_canonical(lm)) for lm in landmarks])


def feature(name: str, feats: np.ndarray) -> np.ndarray:
    return feats[:, E.FEATURES.index(name)]


def mouth_openings(landmarks: np.ndarray) -> np.ndarray:
    """The inner-lip gap of each frame's re-detected landmarks (canonical units), at least 0.

    Lips cannot cross, so a negative gap is the landmark fit crossing them on a closed mouth: it
    reads as closed. Without the floor, a fit that crosses the lips on two nearly closed frames of
    a 50-frame clip (hopper smiling: gap 0.02 in the source, -0.07 and -0.14 in one encode of the
    edit, 0.02 in encodes at a neighbouring CRF) decides a correlation (0.88 against 0.95)."""
    return np.maximum(np.array([E.mouth_opening(lm) for lm in landmarks]), 0.0)


def write_clip(path, frames_and_times, size, fps=25, audio=None):
    """Write a test clip: ``frames_and_times`` yields (rgb, seconds); ``audio`` an AudioData or a media path."""
    from fractions import Fraction

    path = Path(path)
    silent = path.with_name(path.stem + ".noaudio" + path.suffix)
    target = silent if audio is not None else path
    with media.VideoWriter(str(target), size[0], size[1], Fraction(fps)) as w:
        for rgb, t in frames_and_times:
            w.write(np.ascontiguousarray(rgb), t)
    if audio is not None:
        media.mux_audio(silent, audio, path)
        silent.unlink()
    return path


def sample_frames(path=None, end=1.0):
    info = media.probe_video(path or SAMPLE, end=end)
    return [(f.rgb, f.time) for f in media.iter_frames(info)]


def repo_files(folder: Path) -> Path:
    """Make ``folder`` look like a user's checkout: a link to every top-level file and folder git tracks, and
    nothing else (a doc's example may only name files that ship)."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for top in sorted({line.split("/", 1)[0] for line in tracked.splitlines() if line}):
        if (ROOT / top).exists() and not (folder / top).exists():
            (folder / top).symlink_to(ROOT / top)
    return folder


#: the two-face clip's layout: the large face (Grace Hopper, 448 px) on the left, the small one (the astronaut,
#: halved to 224 px) on the right, on a grey ground
TWO_FACE_SIZE = (672, 448)
SMALL_FACE_BOX = (448, 112, 672, 336)  # x0, y0, x1, y1


def two_face_clip(path, end=0.6, blank=(), audio=None):
    """Write the generated two-face clip (the first ``end`` s of both sample clips, see :data:`SMALL_FACE_BOX`);
    on the frames in ``blank`` the small face's box is grey (the face has left the frame)."""
    x0, y0, x1, y1 = SMALL_FACE_BOX
    frames = []
    for i, ((a, t), (b, _)) in enumerate(zip(sample_frames(SAMPLE_HOPPER, end=end), sample_frames(SAMPLE, end=end))):
        canvas = np.full((TWO_FACE_SIZE[1], TWO_FACE_SIZE[0], 3), 200, np.uint8)
        canvas[:, :448] = a
        if i not in blank:
            canvas[y0:y1, x0:x1] = b[::2, ::2][:224, :224]
        frames.append((canvas, t))
    return write_clip(path, frames, TWO_FACE_SIZE, audio=audio)


def landmarks_in(path, box, upscale=1, step=1) -> np.ndarray:
    """Landmarks ``[N, 68, 2]`` of the face inside ``box`` (x0, y0, x1, y1) of each decoded frame, detected afresh
    on that crop (scaled by ``upscale`` first, for a small face); NaN where none is found."""
    import cv2

    x0, y0, x1, y1 = box
    out = []
    for rgb in frames(path, step=step):
        crop = rgb[y0:y1, x0:x1]
        if upscale != 1:
            crop = cv2.resize(crop, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
        lms = detect_landmarks(np.ascontiguousarray(crop))
        out.append(lms[0] / upscale if lms else np.full((68, 2), np.nan, np.float32))
    return np.stack(out)
