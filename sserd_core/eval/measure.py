"""Measure one clip: track its face, then everything the metrics need, in one streamed pass.

A clip is measured independently of how it was made (the landmark backend, a neural
checkpoint, or another tool's output folder): its own face is detected and tracked, so
outputs with another crop or size are measured the same way. Emotion vectors are
measured relative to the *source actor's* neutral face (from the source clip's content
track), which lives in canonical face space and so transfers across crops.

``crops``: what the identity, emotion and sync networks see. ``"aligned"`` (default, the official
evaluation): each frame's face cut as the network's input crop — SSERD's template alignment at 256 px
(:func:`sserd_core.neural.align_face`, the official template + resize-320 / centre-crop-256) — with
everything outside the face mask set to 0, as the official ``scripts/get_masked_imgs.py`` does before
the metrics. ``"frame"``: the full frame as rendered (pasted back), the networks aligning the face
themselves. Landmark metrics are taken in canonical face space either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import media
from .. import expression
from ..face import FaceTracker, face_embedding
from ..metrics import mouth as mouth_metrics


@dataclass
class ClipMeasure:
    """Per-frame measurements of one clip (``N`` frames; NaN where no face).

    ``landmarks`` ``[N, 68, 2]`` px; ``embedding`` ``[N, 128]`` dlib (every ``embed_every``-th
    frame); ``emotion`` ``[N, 7]``; ``opening`` ``[N]`` inner-lip opening (IOD units);
    ``exact`` holds the paper networks' outputs when they were given
    (``"arcface"`` ``[N, D]``, ``"emotion_net"`` ``[N, D]``, ``"sync"`` dict).
    """

    path: str
    fps: float
    landmarks: np.ndarray
    embedding: np.ndarray
    emotion: np.ndarray
    opening: np.ndarray
    exact: dict = field(default_factory=dict)

    @property
    def n_faces(self) -> int:
        return int(np.isfinite(self.landmarks[:, 0, 0]).sum())


@dataclass
class Networks:
    """The paper's metric networks, when the user gave them (see :mod:`sserd_core.metrics.networks`)."""

    arcface: object = None
    syncnet: object = None
    emotion_net: object = None

    @property
    def any(self) -> bool:
        return any(x is not None for x in (self.arcface, self.syncnet, self.emotion_net))


CROPS = ("aligned", "frame")
OFFICIAL_CROP_SIZE = 256


def official_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int = OFFICIAL_CROP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(masked crop uint8 [size, size, 3], landmarks in the crop [68, 2])``: the face as the official evaluation
    measures it — the aligned network-input crop with the pixels outside the face mask set to 0."""
    from ..neural import align_face, face_mask
    from ..neural.align import apply_affine

    crop, m = align_face(rgb, landmarks, size, "sserd-template")
    lm = apply_affine(m, landmarks).astype(np.float32)
    inside = face_mask(lm, size) >= 0.5
    return np.ascontiguousarray(crop * inside[..., None].astype(np.uint8)), lm


def measure_clip(path: str, neutral_features: Optional[np.ndarray] = None, embed_every: int = 1,
                 networks: Optional[Networks] = None, audio_path: Optional[str] = None,
                 max_frames: Optional[int] = None, crops: str = "aligned") -> ClipMeasure:
    """Track the largest face of ``path`` and measure every frame (streamed; only per-frame numbers are kept).

    ``crops``: ``"aligned"`` (official masked aligned crops) or ``"frame"`` (see the module doc)."""
    if crops not in CROPS:
        from ..errors import SSERDError

        raise SSERDError(f"Unknown crops '{crops}' (use aligned or frame).")
    info = media.probe_video(path, max_frames=max_frames)
    n = info.n_frames
    tracker = FaceTracker(info.fps_float, 0)
    lms = np.full((n, 68, 2), np.nan, np.float32)
    emb = np.full((n, 128), np.nan, np.float32)
    emo = np.full((n, 7), np.nan, np.float32)
    nets = networks or Networks()
    feats = {"arcface": [], "emotion_net": []}
    sync_crops, sync_times = [], []
    count = 0
    for fr in media.iter_frames(info):
        if fr.index >= n:
            break
        count = fr.index + 1
        lm = tracker.update(fr.rgb)
        if lm is None:
            continue
        lms[fr.index] = lm
        emo[fr.index] = expression.measure_landmarks(lm, neutral_features, dead_zone=0.0)
        image, lm_img = official_crop(fr.rgb, lm) if crops == "aligned" else (fr.rgb, lm)
        if fr.index % max(1, embed_every) == 0:
            emb[fr.index] = face_embedding(image, lm_img)
        for key in ("arcface", "emotion_net"):
            net = getattr(nets, key)
            if net is not None:
                feats[key].append((fr.index, net([image], [lm_img])[0]))
        if nets.syncnet is not None:
            from ..metrics.networks import syncnet_crops

            sync_crops.append(syncnet_crops([image], [lm_img])[0])
            sync_times.append(fr.time)
    lms, emb, emo = lms[:count], emb[:count], emo[:count]
    opening = mouth_metrics.mouth_opening(lms)
    m = ClipMeasure(str(path), info.fps_float, lms, emb, emo, opening)
    for key, rows in feats.items():
        if rows:
            arr = np.full((count, len(rows[0][1])), np.nan, np.float32)
            for i, v in rows:
                arr[i] = v
            m.exact[key] = arr
    if nets.syncnet is not None and len(sync_crops) >= 6:
        m.exact["sync"] = _lse(nets.syncnet, np.stack(sync_crops), np.array(sync_times), audio_path or path)
    return m


def _lse(scorer, crops: np.ndarray, times: np.ndarray, audio_path: str) -> Optional[dict]:
    """SyncNet scores on 25 fps (nearest-frame resampled) face crops and the clip's 16 kHz audio."""
    from scipy.signal import resample_poly

    audio = media.read_audio(audio_path)
    if audio is None or audio.waveform.shape[1] == 0:
        return None
    wave = audio.waveform.mean(0)
    if audio.sample_rate != 16000:
        g = np.gcd(int(audio.sample_rate), 16000)
        wave = resample_poly(wave, 16000 // g, int(audio.sample_rate) // g)
    t25 = np.arange(0, times[-1] + 1e-6, 1 / 25.0)
    idx = np.clip(np.searchsorted(times, t25), 0, len(times) - 1)
    return scorer.score(crops[idx], wave * 32767.0)
