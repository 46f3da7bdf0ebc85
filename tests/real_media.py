"""The real-footage clips in ``assets/real/`` (real people the project did not film).

Provenance and licences: ``assets/README.md`` ("Real footage"); how they were cut:
``scripts/make_real_clips.py``. The clips are committed, so nothing here downloads or skips.

``REAL_CLIPS`` maps a short name to a :class:`RealClip` with the facts a test can check
without running any project code (frame count, frame rate, size, audio).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

REAL_DIR = Path(__file__).resolve().parents[1] / "assets" / "real"


@dataclass(frozen=True)
class RealClip:
    name: str
    path: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    audio_rate: int
    speech: bool  #: the audio track carries speech (else it is silent)
    shows: str

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps)


def _clip(name, frames, fps, size, audio_rate, speech, shows):
    return RealClip(name, REAL_DIR / f"real_{name}.mp4", frames, Fraction(fps), size[0], size[1],
                    audio_rate, speech, shows)


#: name -> clip. ``smile``: a broad toothy laugh; ``sad``: crying; ``occluded``: sad, fingers over
#: half the mouth; ``speaker``: a man, neutral then smiling, with speech audio (espeak-ng, added);
#: ``glasses_metal``: a woman in thin metal-frame glasses speaking, silent (rims traced in
#: ``assets/real/annotations/real_glasses_metal.json``).
REAL_CLIPS: dict[str, RealClip] = {
    c.name: c for c in (
        _clip("smile", 108, "24000/1001", (640, 360), 48000, False,
              "a woman laughing: a broad smile with teeth"),
        _clip("sad", 60, "24000/1001", (640, 360), 48000, False,
              "the same woman crying"),
        _clip("occluded", 74, "24000/1001", (640, 360), 48000, False,
              "the same woman, sad, fingers covering the image-left half of her mouth"),
        _clip("speaker", 72, "30", (960, 540), 22050, True,
              "a man, neutral then starting to smile; synthetic speech audio"),
        _clip("glasses_metal", 120, "30", (528, 528), 48000, False,
              "a woman in thin round metal-frame glasses speaking (no sound); a drawn hand moves below her eyes"),
    )
}

#: the clip on which "neutral" must remove a smile
SMILING = "smile"
#: the clip with a hand over part of the mouth
OCCLUDED = "occluded"


def real_clip_paths() -> dict[str, Path]:
    return {name: c.path for name, c in REAL_CLIPS.items()}


def decode(file, frames=None, step=None) -> list:
    """The RGB frames of ``file`` (a path relative to the repository, or absolute) decoded with PyAV alone (no
    project code): all, or those whose index is in ``frames`` and/or a multiple of ``step``."""
    import av

    want = set(frames) if frames is not None else None
    with av.open(str(REAL_DIR.parents[1] / file)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0))
                if (want is None or i in want) and (step is None or i % step == 0)]
