"""Target emotions: a label + intensity, a reference face, or a keyframed curve over time.

An *emotion vector* is ``float32 [7]`` in the order of :data:`EMOTIONS`. Entries 1..6
are intensities in 0..1 (how strongly the face shows that emotion); entry 0 (neutral)
is ``max(0, 1 - sum(others))`` so the vector reads like a distribution. The zero-
intensity vector ``[1, 0, 0, 0, 0, 0, 0]`` is a neutral face.
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .controls import controls_at, describe_controls, format_controls, parse_controls
from .errors import SSERDError

EMOTIONS = ("neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised")
#: how a driving clip's frames are matched to the source's: ``"time"`` (the clip at the same time, looping),
#: ``"index"`` (clip frame i mod N) or ``"stretch"`` (the whole clip spread over the whole source:
#: clip frame floor(i * N / source frames), the official test set's mapping); the first is the default
SYNC_MODES = ("time", "index", "stretch")
#: how strongly a label is shown when no intensity is given: the full emotion
DEFAULT_INTENSITY = 1.0


def check_sync(sync) -> str:
    """``sync`` if it is one of :data:`SYNC_MODES`, else one readable error."""
    if sync not in SYNC_MODES:
        raise SSERDError(f"sync must be one of {', '.join(repr(s) for s in SYNC_MODES)}, got {sync!r}.")
    return sync
_ALIASES = {
    "anger": "angry", "mad": "angry", "disgust": "disgusted", "fearful": "fear", "afraid": "fear",
    "scared": "fear", "joy": "happy", "happiness": "happy", "sadness": "sad", "surprise": "surprised",
    "calm": "neutral", "none": "neutral",
}


def canonical_label(label: str) -> str:
    """Normalise an emotion name (``"Joy"`` → ``"happy"``); raise a readable error for unknown names."""
    key = str(label).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in EMOTIONS:
        raise SSERDError(f"Unknown emotion '{label}'. Choose one of: {', '.join(EMOTIONS)}.")
    return key


def emotion_vector(label: str, intensity: float = 1.0) -> np.ndarray:
    """The emotion vector of ``label`` at ``intensity`` (0..1)."""
    label = canonical_label(label)
    if not 0.0 <= float(intensity) <= 1.0:
        raise SSERDError(f"Intensity must be between 0 and 1, got {intensity}.")
    v = np.zeros(len(EMOTIONS), np.float32)
    if label != "neutral":
        v[EMOTIONS.index(label)] = float(intensity)
    return normalise(v)


def normalise(v: np.ndarray) -> np.ndarray:
    """Set the neutral entry to ``max(0, 1 - sum(intensities))``; clip intensities to 0..1."""
    v = np.asarray(v, np.float32).copy()
    v[1:] = np.clip(v[1:], 0.0, 1.0)
    v[0] = max(0.0, 1.0 - float(v[1:].sum()))
    return v


def describe(v: np.ndarray) -> str:
    """``"happy 0.80"`` or ``"happy 0.50 + sad 0.20"`` or ``"neutral"``."""
    parts = [f"{EMOTIONS[i]} {v[i]:.2f}" for i in np.argsort(-v[1:]) + 1 if v[i] >= 0.05]
    return " + ".join(parts) if parts else "neutral"


@dataclass
class EmotionSpec:
    """What the edited face should show, as a function of time.

    ``keyframes``: list of ``(time_seconds, emotion_vector)`` sorted by time; between
    keyframes the vector is interpolated linearly, before the first / after the last it
    is held. ``reference_rgb`` (``uint8 [H, W, 3]``) is kept when the target came from a
    reference face so a neural backend can encode it; ``measured`` is the emotion vector
    measured on that reference (for display). ``source`` says how the spec was made.

    A **driving clip** (the paper's cross-ID protocol: every source frame takes its emotion from
    a frame of another clip) sets ``driving_path`` (the clip, for a neural backend to encode
    frame by frame), ``frame_vectors`` ``[N, 7]`` (the emotion measured on each of its frames,
    for the landmark backend) and ``sync``: ``"time"`` — source time *t* shows the clip at
    *t* (looping with period ``loop`` seconds when the clip is shorter) —, ``"index"`` —
    source frame *i* shows clip frame *i* mod *N* — or ``"stretch"`` — the whole clip over the
    whole source, frame *i* of *M* showing clip frame ⌊*i*·*N*/*M*⌋. ``driving_start`` / ``driving_end`` (seconds) are the
    range of the clip that was measured (the whole clip: 0 and None), which a neural backend encodes.

    **Expression controls** (:mod:`sserd_core.controls`): ``controls`` are keyframes ``(time_seconds,
    float32 [N_CONTROLS])``, −1…+1 each, on top of the emotion (:meth:`control_targets`). With
    ``keep_source`` the emotion part is the source's own expression, frame by frame (controls alone:
    0 = the source), and :meth:`targets` are only a placeholder the render stage replaces.
    """

    keyframes: list = field(default_factory=list)
    reference_rgb: Optional[np.ndarray] = None
    measured: Optional[np.ndarray] = None
    source: str = "label"
    driving_path: Optional[str] = None
    frame_vectors: Optional[np.ndarray] = None
    sync: str = "time"
    loop: Optional[float] = None
    driving_start: float = 0.0
    driving_end: Optional[float] = None
    controls: list = field(default_factory=list)
    keep_source: bool = False

    @property
    def has_controls(self) -> bool:
        """Whether any control is ever away from 0."""
        return any(np.any(v) for _, v in self.controls)

    def control_targets(self, times) -> np.ndarray:
        """Control values ``[N, N_CONTROLS]`` for frames shown at ``times`` (zeros without controls)."""
        return controls_at(self.controls, times)

    def with_controls(self, controls) -> "EmotionSpec":
        """A copy with ``controls`` (text, a mapping ``{name: value}`` or keyframes; :func:`parse_controls`)."""
        import dataclasses

        return dataclasses.replace(self, controls=parse_controls(controls))

    def controls_text(self) -> str:
        """The controls as text :func:`parse_controls` reads back (``""`` without controls)."""
        return format_controls(self.controls)

    def driving_range(self) -> dict:
        """The driving clip's measured range as keyword arguments (``start``, ``end``, ``max_frames``): the
        frames :attr:`frame_vectors` were measured on."""
        n = len(self.frame_vectors) if self.frame_vectors is not None else None
        return dict(start=self.driving_start or None, end=self.driving_end, max_frames=n or None)

    def targets(self, times) -> np.ndarray:
        """Target vectors ``[N, 7]`` for frames shown at ``times`` (seconds from the range start)."""
        times = np.asarray(times, np.float64)
        if len(times) == 0:
            return np.zeros((0, 7), np.float32)
        if self.sync in ("index", "stretch") and self.frame_vectors is not None and len(self.frame_vectors):
            n = len(self.frame_vectors)
            i = np.arange(len(times))
            k = i % n if self.sync == "index" else np.minimum(i * n // len(times), n - 1)
            return np.asarray(self.frame_vectors, np.float32)[k]
        if self.loop:
            times = np.mod(times, self.loop)
        return np.stack([self.at(float(t)) for t in times]).astype(np.float32)

    def at(self, t: float) -> np.ndarray:
        """Emotion vector ``[7]`` at time ``t`` seconds (from the start of the edited range)."""
        if not self.keyframes:
            return emotion_vector("neutral")
        times = [k[0] for k in self.keyframes]
        if t <= times[0]:
            return self.keyframes[0][1].copy()
        if t >= times[-1]:
            return self.keyframes[-1][1].copy()
        j = int(np.searchsorted(times, t, side="right"))
        (t0, v0), (t1, v1) = self.keyframes[j - 1], self.keyframes[j]
        a = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return normalise((1 - a) * v0 + a * v1)

    def describe(self) -> str:
        base = "the source's own expression" if self.keep_source else self._describe_emotion()
        if not self.has_controls:
            return base
        if len(self.controls) == 1:
            return f"{base}; controls: {describe_controls(self.controls[0][1])}"
        keys = "; ".join(f"{t:g}s: {describe_controls(v) or 'all 0'}" for t, v in self.controls)
        return f"{base}; controls over time: {keys}"

    def _describe_emotion(self) -> str:
        if self.driving_path is not None:
            n = len(self.frame_vectors) if self.frame_vectors is not None else 0
            return (f"driving clip {os.path.basename(self.driving_path)} ({n} frames, {self.sync}-synchronised; "
                    f"mean {describe(self.measured)})")
        if len(self.keyframes) == 1:
            return describe(self.keyframes[0][1])
        return ", ".join(f"{t:g}s: {describe(v)}" for t, v in self.keyframes)

    @classmethod
    def from_label(cls, label: str, intensity: float = 1.0) -> "EmotionSpec":
        return cls([(0.0, emotion_vector(label, intensity))], source="label")

    @classmethod
    def from_vector(cls, v: np.ndarray, reference_rgb: Optional[np.ndarray] = None, source: str = "reference") -> "EmotionSpec":
        v = normalise(v)
        return cls([(0.0, v)], reference_rgb=reference_rgb, measured=v, source=source)

    @classmethod
    def from_driving_clip(cls, path: str, times: np.ndarray, vectors: np.ndarray, duration: float,
                          sync: str = "time", reference_rgb: Optional[np.ndarray] = None, start: float = 0.0,
                          end: Optional[float] = None) -> "EmotionSpec":
        """Per-frame emotion of a driving clip (``vectors`` ``[N, 7]`` measured at ``times`` over its range
        [``start``, ``end``) seconds), looping."""
        check_sync(sync)
        vectors = np.asarray(vectors, np.float32)
        frames = [(float(t), normalise(v)) for t, v in zip(times, vectors)]
        return cls(frames, reference_rgb=reference_rgb, measured=normalise(vectors.mean(0)), source="driving clip",
                   driving_path=str(path), frame_vectors=np.stack([v for _, v in frames]), sync=sync,
                   loop=float(duration), driving_start=float(start or 0.0), driving_end=end)

    @classmethod
    def from_controls(cls, controls) -> "EmotionSpec":
        """Controls alone: the source's own expression with the controls on top (0 = the source)."""
        return cls([(0.0, emotion_vector("neutral"))], source="controls", controls=parse_controls(controls),
                   keep_source=True)

    @classmethod
    def from_curve(cls, text: str) -> "EmotionSpec":
        return cls(parse_curve(text), source="curve")


def parse_curve(text: str) -> list:
    """Parse ``"0:neutral,2:happy@0.9,4.5:sad@0.6"`` into keyframes.

    Each comma-separated item is ``TIME:EMOTION[@INTENSITY]`` with ``TIME`` in seconds
    from the start of the edited range and ``INTENSITY`` 0..1 (default 1).
    """
    if not text or not str(text).strip():
        raise SSERDError("The emotion curve is empty. Example: --curve \"0:neutral,2:happy@0.9\".")
    frames = []
    for item in str(text).replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if ":" not in item:
            raise SSERDError(f"Curve item '{item}' must look like TIME:EMOTION[@INTENSITY], e.g. 2:happy@0.9.")
        t_s, rest = item.split(":", 1)
        label, _, inten = rest.partition("@")
        try:
            t = float(t_s)
            intensity = float(inten) if inten.strip() else 1.0
        except ValueError:
            raise SSERDError(f"Curve item '{item}': time and intensity must be numbers, e.g. 2:happy@0.9.") from None
        if t < 0:
            raise SSERDError(f"Curve item '{item}': time must be >= 0 seconds.")
        frames.append((t, emotion_vector(label, intensity)))
    frames.sort(key=lambda k: k[0])
    times = [k[0] for k in frames]
    if len(set(times)) != len(times):
        raise SSERDError("Two curve keyframes have the same time; give each keyframe its own time.")
    return frames
