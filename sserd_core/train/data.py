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


class StoredArray:
    """One array of an uncompressed ``.npz`` clip file, read row by row from disk (``os.pread``), never whole.

    ``np.savez`` stores each member as a plain ``.npy`` inside a zip without compression, so a row is a
    fixed-size byte range of the file: its offset comes from the zip's local header and the ``.npy`` header.
    """

    def __init__(self, path, member: str):
        import zipfile

        self.path = str(path)
        with zipfile.ZipFile(self.path) as z:
            info = z.getinfo(member + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise SSERDError(f"{self.path} is compressed; training streams frames from uncompressed clip files "
                             "(rerun `sserd preprocess` into a new cache folder).")
        with open(self.path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(fh))
            self.offset = fh.tell()
        if fortran and len(shape) > 1:
            raise SSERDError(f"{self.path}: {member} is stored in Fortran order; rerun `sserd preprocess`.")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, idx) -> np.ndarray:
        """Rows ``idx`` (sorted or not), one read per run of consecutive rows."""
        import os

        idx = np.asarray(idx, np.int64).reshape(-1)
        out = np.empty((len(idx),) + self.row_shape, self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for k, i in enumerate(idx):
                buf = os.pread(fd, self.row_bytes, self.offset + int(i) * self.row_bytes)
                out[k] = np.frombuffer(buf, self.dtype).reshape(self.row_shape)
        finally:
            os.close(fd)
        return out


class FrameView:
    """``cache.images`` / ``cache.masks`` / ``cache.landmarks``: indexable like an array (``[i]``, ``[idx]``,
    ``.shape``), each access read from the clip files."""

    def __init__(self, cache: "FrameCache", member: str):
        self.cache, self.member = cache, member
        first = cache.stored(0, member)
        self.dtype = first.dtype
        self.shape = (len(cache),) + first.row_shape

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx):
        if isinstance(idx, tuple):  # frames first, then within the frames: view[:, 32, 32]
            first, rest = idx[0], idx[1:]
            out = self[first]
            return out[(slice(None),) + rest] if not isinstance(first, (int, np.integer)) else out[rest]
        if isinstance(idx, (int, np.integer)):
            return self.cache.read(self.member, [int(idx)])[0]
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        return self.cache.read(self.member, idx)

    def __array__(self, dtype=None, copy=None):
        out = self.cache.read(self.member, np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)


class FrameCache:
    """The aligned face crops of a preprocessed cache, indexed by actor and emotion, **streamed from disk**.

    Only the index is held in memory (a few bytes per frame: actor, emotion, clip, frame number, and the
    clip files' offsets); every crop, mask and landmark set is read from its clip file when a batch asks
    for it (``os.pread`` of its bytes), so memory does not grow with the dataset (the OS page cache keeps
    recently read files as it sees fit). Full front-view MEAD at 256 px (≈ 350k frames, ≈ 90 GB of crops)
    trains in the memory of a 6k-frame cache.

    - ``images`` (``uint8 [N, S, S, 3]``), ``masks`` (``uint8 [N, S, S]``), ``landmarks`` (``float32 [N, 68, 2]``,
      crop px): array-like views read from disk.
    - ``actor_of[i]``, ``emotion_of[i]`` (index into EMOTIONS), ``clip_of[i]`` (index into ``clip_keys``),
      ``frame_of[i]``; ``by[actor][emotion]`` = array of frame indices.

    ``actors`` restricts it to those actors (a split); ``max_frames_per_clip`` subsamples each clip evenly;
    ``max_frames_per_actor`` keeps a random sample of at most that many frames per actor (the official
    ``MEADDataset`` keeps ``random.sample(frames, 15000)`` per actor), drawn with ``seed``.
    """

    MEMBERS = ("images", "masks", "landmarks")

    def __init__(self, cache_dir, actors: Optional[Sequence[str]] = None, max_frames_per_clip: Optional[int] = None,
                 max_frames_per_actor: Optional[int] = None, seed: int = 0):
        index = read_index(cache_dir)
        self.size = int(index["size"])
        self.cache_dir = Path(cache_dir)
        wanted = set(actors) if actors is not None else None
        self.clip_keys: list[str] = []
        actor_of, emo_of, clip_of, frame_of, row_of = [], [], [], [], []
        for entry in index["clips"]:
            if entry.get("frames", 0) == 0 or (wanted is not None and entry["actor"] not in wanted):
                continue
            with np.load(clip_file(cache_dir, entry["key"])) as z:
                frames = z["frame_index"]
            sel = np.arange(len(frames))
            if max_frames_per_clip and len(sel) > max_frames_per_clip:
                sel = np.linspace(0, len(sel) - 1, max_frames_per_clip).round().astype(int)
            c = len(self.clip_keys)
            self.clip_keys.append(entry["key"])
            n = len(sel)
            actor_of += [entry["actor"]] * n
            emo_of.append(np.full(n, EMOTIONS.index(entry["emotion"]), np.int8))
            clip_of.append(np.full(n, c, np.int32))
            frame_of.append(frames[sel].astype(np.int32))
            row_of.append(sel.astype(np.int32))
        if not self.clip_keys:
            raise SSERDError(f"The cache {cache_dir} holds no frames for actors {sorted(wanted or [])}.")
        actor_of = np.asarray(actor_of)
        keep = np.arange(len(actor_of))
        if max_frames_per_actor:
            rng = np.random.default_rng(seed)
            parts = []
            for a in sorted(set(actor_of.tolist())):
                idx = np.flatnonzero(actor_of == a)
                parts.append(np.sort(rng.choice(idx, max_frames_per_actor, replace=False))
                             if len(idx) > max_frames_per_actor else idx)
            keep = np.sort(np.concatenate(parts))
        self.actor_of = actor_of[keep]
        self.emotion_of = np.concatenate(emo_of).astype(np.int64)[keep]
        self.clip_of = np.concatenate(clip_of)[keep]
        self.frame_of = np.concatenate(frame_of)[keep]
        self.row_of = np.concatenate(row_of)[keep]
        self.actors = sorted(set(self.actor_of.tolist()))
        self.by: dict[str, dict[int, np.ndarray]] = {}
        for a in self.actors:
            self.by[a] = {}
            for e in range(len(EMOTIONS)):
                idx = np.flatnonzero((self.actor_of == a) & (self.emotion_of == e))
                if len(idx):
                    self.by[a][e] = idx
        self._stored: dict = {}
        self.images, self.masks = FrameView(self, "images"), FrameView(self, "masks")
        self.landmarks = FrameView(self, "landmarks")

    def __len__(self) -> int:
        return len(self.actor_of)

    def emotions_of(self, actor: str) -> list[int]:
        return sorted(self.by[actor])

    def stored(self, clip: int, member: str) -> StoredArray:
        """The on-disk array ``member`` of clip ``clip`` (offsets cached; a few hundred bytes per clip)."""
        key = (int(clip), member)
        if key not in self._stored:
            self._stored[key] = StoredArray(clip_file(self.cache_dir, self.clip_keys[int(clip)]), member)
        return self._stored[key]

    def read(self, member: str, idx) -> np.ndarray:
        """Frames ``idx`` of ``member`` (images / masks / landmarks) read from disk, in the order given."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        if not len(idx):
            first = self.stored(0, member)
            return np.zeros((0,) + first.row_shape, first.dtype)
        parts = [None] * len(idx)
        clips = self.clip_of[idx]
        for c in np.unique(clips):
            pos = np.flatnonzero(clips == c)
            rows = self.stored(int(c), member).rows(self.row_of[idx[pos]])
            for p, r in zip(pos, rows):
                parts[p] = r
        return np.stack(parts)

    def tensor(self, idx):
        """Crops ``idx`` as a float tensor ``[B, 3, S, S]`` in −1…1."""
        import torch

        x = torch.from_numpy(self.read("images", idx)).permute(0, 3, 1, 2).float().contiguous()
        return x / 127.5 - 1.0


def clip_record(clip: Clip, frames: int, status: str) -> dict:
    return dict(asdict(clip), frames=int(frames), status=status)
