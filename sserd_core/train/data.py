"""Training data: the three folder layouts, actor splits, and the preprocessed-cache dataset.

Layouts (``layout=`` in the config / ``--layout`` on the command line):

- ``mead`` — MEAD as published: ``<ROOT>/<actor>/video/<view>/<emotion>/level_<k>/<nnn>.mp4``
  (e.g. ``M003/video/front/happy/level_3/001.mp4``). Only the ``front`` view is used by
  default (``views=``); ``contempt`` has no counterpart in SSERD's seven emotions and is skipped.
- ``ravdess`` — RAVDESS as published (``Video_Speech_Actor_NN.zip`` extracted):
  ``<ROOT>/Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4``. Field ``EE`` is the emotion
  (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised);
  ``calm`` is skipped, ``MM=03`` (audio-only) files are ignored.
- ``plain`` — your own data: ``<ROOT>/<actor>/<emotion>/<clip>.mp4`` (any video suffix);
  emotion folder names are SSERD's seven (``neutral angry disgusted fear happy sad surprised``)
  or their usual aliases (``anger``, ``joy``, …).

Everything is split **by actor** (no actor appears in two splits).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError

LAYOUTS = ("mead", "ravdess", "plain")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv")
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
                    "07": "disgusted", "08": "surprised"}
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@dataclass(frozen=True)
class Clip:
    """One source video: ``path`` (absolute), ``actor``, ``emotion`` (one of EMOTIONS), ``key`` (unique, path-safe)."""

    path: str
    actor: str
    emotion: str
    key: str


def _emotion_or_none(name: str) -> Optional[str]:
    try:
        return canonical_label(name)
    except SSERDError:
        return None


def _key(rel: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "__".join(rel.with_suffix("").parts))


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES


def discover_clips(root, layout: str, views: Sequence[str] = ("front",)) -> tuple[list[Clip], dict]:
    """All clips under ``root`` in ``layout``; returns ``(clips, skipped)`` with ``skipped`` = {reason: count}.

    Raises :class:`SSERDError` when ``root`` is missing or holds no clip of that layout.
    """
    root = Path(root).expanduser().resolve()
    if layout not in LAYOUTS:
        raise SSERDError(f"Unknown dataset layout '{layout}' (use one of: {', '.join(LAYOUTS)}).")
    if not root.is_dir():
        raise SSERDError(f"Dataset folder {root} does not exist.")
    clips, skipped = [], {}

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    for path in sorted(p for p in root.rglob("*") if _is_video(p)):
        rel = path.relative_to(root)
        parts = rel.parts
        if layout == "mead":
            # actor/video/view/emotion/level_k/nnn.mp4
            if len(parts) != 6 or parts[1] != "video" or not parts[4].startswith("level_"):
                skip("not in MEAD layout")
                continue
            if parts[2] not in views:
                skip(f"view {parts[2]}")
                continue
            actor, emo_name = parts[0], parts[3]
        elif layout == "ravdess":
            m = _RAVDESS_NAME.match(path.stem)
            if len(parts) != 2 or not m:
                skip("not in RAVDESS layout")
                continue
            if m.group(1) == "03":
                skip("audio-only")
                continue
            actor, emo_name = parts[0], RAVDESS_EMOTIONS.get(m.group(3), "?")
            if emo_name == "calm":
                skip("emotion calm")
                continue
        else:
            if len(parts) != 3:
                skip("not in actor/emotion/clip layout")
                continue
            actor, emo_name = parts[0], parts[1]
        emotion = _emotion_or_none(emo_name)
        if emotion is None:
            skip(f"emotion {emo_name}")
            continue
        clips.append(Clip(str(path), actor, emotion, _key(rel)))
    if not clips:
        raise SSERDError(f"No {layout} clips found under {root} (see docs/TRAINING.md for the expected layout).")
    return clips, skipped


def split_actors(actors: Sequence[str], val_actors: Sequence[str] = (), val_fraction: float = 0.0,
                 seed: int = 0) -> tuple[list[str], list[str]]:
    """``(train_actors, val_actors)``: the named ``val_actors`` if given, else a seeded ``val_fraction`` of them."""
    actors = sorted(set(actors))
    if val_actors:
        unknown = sorted(set(val_actors) - set(actors))
        if unknown:
            raise SSERDError(f"Validation actor(s) {', '.join(unknown)} are not in the dataset.")
        val = sorted(set(val_actors))
    else:
        n_val = int(round(val_fraction * len(actors)))
        if val_fraction > 0 and len(actors) > 1:
            n_val = min(max(n_val, 1), len(actors) - 1)
        rng = np.random.default_rng(seed)
        val = sorted(rng.choice(actors, size=n_val, replace=False).tolist()) if n_val else []
    return [a for a in actors if a not in val], val


# ---------------------------------------------------------------- the preprocessed cache
INDEX_FILE = "index.json"


def clip_file(cache_dir, key: str) -> Path:
    return Path(cache_dir) / "clips" / f"{key}.npz"


def read_index(cache_dir) -> dict:
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise SSERDError(f"{cache_dir} is not a preprocessed cache (no {INDEX_FILE}); run `sserd preprocess` first.")
    return json.loads(path.read_text())


def write_index(cache_dir, meta: dict, clips: Sequence[dict]) -> None:
    path = Path(cache_dir) / INDEX_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(meta, clips=list(clips)), indent=1))
    tmp.replace(path)


class FrameCache:
    """All aligned face crops of a preprocessed cache, in memory, indexed by actor and emotion.

    - ``images``: ``uint8 [N, S, S, 3]`` aligned crops; ``masks``: ``uint8 [N, S, S]`` face masks (0/255);
      ``landmarks``: ``float32 [N, 68, 2]`` in crop px.
    - ``actor_of[i]``, ``emotion_of[i]`` (index into EMOTIONS), ``clip_of[i]``, ``frame_of[i]``.
    - ``by[actor][emotion]`` = array of frame indices.

    ``actors`` restricts it to those actors (a split); ``max_frames_per_clip`` subsamples evenly.
    """

    def __init__(self, cache_dir, actors: Optional[Sequence[str]] = None, max_frames_per_clip: Optional[int] = None):
        index = read_index(cache_dir)
        self.size = int(index["size"])
        wanted = set(actors) if actors is not None else None
        images, masks, lms, actor_of, emo_of, clip_of, frame_of = [], [], [], [], [], [], []
        for entry in index["clips"]:
            if entry.get("frames", 0) == 0 or (wanted is not None and entry["actor"] not in wanted):
                continue
            with np.load(clip_file(cache_dir, entry["key"])) as z:
                sel = np.arange(len(z["images"]))
                if max_frames_per_clip and len(sel) > max_frames_per_clip:
                    sel = np.linspace(0, len(sel) - 1, max_frames_per_clip).round().astype(int)
                images.append(z["images"][sel])
                masks.append(z["masks"][sel])
                lms.append(z["landmarks"][sel])
                frame_of.append(z["frame_index"][sel])
            n = len(sel)
            actor_of += [entry["actor"]] * n
            emo_of += [EMOTIONS.index(entry["emotion"])] * n
            clip_of += [entry["key"]] * n
        if not images:
            raise SSERDError(f"The cache {cache_dir} holds no frames for actors {sorted(wanted or [])}.")
        self.images = np.concatenate(images)
        self.masks = np.concatenate(masks)
        self.landmarks = np.concatenate(lms).astype(np.float32)
        self.frame_of = np.concatenate(frame_of)
        self.actor_of = np.asarray(actor_of)
        self.emotion_of = np.asarray(emo_of, np.int64)
        self.clip_of = np.asarray(clip_of)
        self.actors = sorted(set(actor_of))
        self.by: dict[str, dict[int, np.ndarray]] = {}
        for a in self.actors:
            self.by[a] = {}
            for e in range(len(EMOTIONS)):
                idx = np.flatnonzero((self.actor_of == a) & (self.emotion_of == e))
                if len(idx):
                    self.by[a][e] = idx

    def __len__(self) -> int:
        return len(self.images)

    def emotions_of(self, actor: str) -> list[int]:
        return sorted(self.by[actor])

    def tensor(self, idx):
        """Crops ``idx`` as a float tensor ``[B, 3, S, S]`` in −1…1."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(self.images[np.asarray(idx)])).permute(0, 3, 1, 2).float().contiguous()
        return x / 127.5 - 1.0


def clip_record(clip: Clip, frames: int, status: str) -> dict:
    return dict(asdict(clip), frames=int(frames), status=status)
