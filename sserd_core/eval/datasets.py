"""Dataset layouts the evaluation reads: MEAD, RAVDESS, or a folder of clips + a CSV.

Each layout yields :class:`Clip` records (actor, emotion, sentence, path); the
protocols (:mod:`sserd_core.eval.protocols`) pair them into evaluation items.

- **MEAD** (Wang et al., ECCV 2020), as distributed: ``ROOT/<actor>/video/front/<emotion>/
  level_<k>/<nnn>.mp4`` (``<emotion>`` ∈ angry, contempt, disgusted, fear, happy,
  neutral, sad, surprised; ``contempt`` is not one of the paper's 7 and is skipped). If
  the video files carry no audio, ``ROOT/<actor>/audio/<emotion>/level_<k>/<nnn>.m4a``
  is used as the clip's audio. ``--level`` picks the intensity level (default: the
  highest present, as the paper uses; neutral has only level_1).
- **RAVDESS** (Livingstone & Russo 2018): ``ROOT/Actor_<nn>/<mod>-<chan>-<emo>-<int>-
  <stmt>-<rep>-<actor>.mp4``, speech channel (``chan`` 01) only, full-AV (01) or
  video-only (02) files; emotion codes 01 neutral, 03 happy, 04 sad, 05 angry,
  06 fearful, 07 disgust, 08 surprised (02 calm is skipped). Sentence = statement +
  repetition.
- **CSV**: ``ROOT/clips.csv`` (or ``--csv FILE``) with columns ``path,actor,emotion``
  and optionally ``sentence,audio``; relative paths are relative to the CSV's folder.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
LAYOUTS = ("mead", "ravdess", "csv")


@dataclass(frozen=True)
class Clip:
    """One talking-face clip of a dataset: who, which emotion, which sentence, where."""

    actor: str
    emotion: str
    sentence: str
    path: str
    audio: Optional[str] = None  # separate audio file (MEAD ships audio apart)

    @property
    def key(self) -> str:
        return f"{self.actor}_{self.emotion}_{self.sentence}"


def load_dataset(root: Union[str, os.PathLike], layout: str = "auto", csv_path: Optional[str] = None,
                 level: Optional[int] = None) -> tuple[str, list[Clip]]:
    """``(layout_name, clips)`` for a dataset folder; ``layout`` = mead | ravdess | csv | auto."""
    root = Path(root)
    if not root.exists():
        raise SSERDError(f"Dataset folder {root} does not exist.")
    layout = (layout or "auto").lower()
    if layout == "auto":
        layout = detect_layout(root, csv_path)
    if layout == "mead":
        clips = load_mead(root, level)
    elif layout == "ravdess":
        clips = load_ravdess(root)
    elif layout == "csv":
        clips = load_csv(Path(csv_path) if csv_path else root / "clips.csv")
    else:
        raise SSERDError(f"Unknown dataset layout '{layout}'; choose one of: auto, {', '.join(LAYOUTS)}.")
    if not clips:
        raise SSERDError(f"No clips found in {root} with the {layout} layout (see docs/EVALUATION.md for the layouts).")
    return layout, clips


def detect_layout(root: Path, csv_path: Optional[str] = None) -> str:
    if csv_path or (root / "clips.csv").is_file():
        return "csv"
    if any(root.glob("Actor_*")):
        return "ravdess"
    if any(root.glob("*/video/front")):
        return "mead"
    raise SSERDError(f"Cannot tell the layout of {root}: expected clips.csv (CSV), Actor_* folders (RAVDESS) "
                     "or <actor>/video/front/ (MEAD). Pass --layout.")


def load_mead(root: Path, level: Optional[int] = None) -> list[Clip]:
    clips = []
    for actor_dir in sorted(p for p in root.iterdir() if (p / "video" / "front").is_dir()):
        for emo_dir in sorted((actor_dir / "video" / "front").iterdir()):
            if not emo_dir.is_dir() or emo_dir.name.lower() == "contempt":
                continue
            emotion = canonical_label(emo_dir.name)
            levels = sorted((p for p in emo_dir.glob("level_*") if p.is_dir()), key=lambda p: int(p.name.split("_")[-1]))
            if not levels:
                continue
            chosen = [p for p in levels if level is not None and p.name == f"level_{level}"] or [levels[-1]]
            for f in sorted(chosen[0].iterdir()):
                if f.suffix.lower() in VIDEO_EXTS:
                    audio = actor_dir / "audio" / emo_dir.name / chosen[0].name / (f.stem + ".m4a")
                    clips.append(Clip(actor_dir.name, emotion, f.stem, str(f), str(audio) if audio.is_file() else None))
    return clips


_RAVDESS_EMOTION = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fear", "07": "disgusted",
                    "08": "surprised"}
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def load_ravdess(root: Path) -> list[Clip]:
    clips = []
    for f in sorted(root.glob("Actor_*/*")):
        m = _RAVDESS_NAME.match(f.stem)
        if not m or f.suffix.lower() not in VIDEO_EXTS:
            continue
        modality, channel, emo, intensity, statement, rep, actor = m.groups()
        if modality not in ("01", "02") or channel != "01" or emo not in _RAVDESS_EMOTION:
            continue
        clips.append(Clip(f"Actor_{actor}", _RAVDESS_EMOTION[emo], f"s{statement}r{rep}i{intensity}", str(f)))
    return clips


def load_csv(path: Path) -> list[Clip]:
    if not path.is_file():
        raise SSERDError(f"CSV file {path} not found (columns: path,actor,emotion[,sentence,audio]).")
    base = path.parent
    clips = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"path", "actor", "emotion"}
        if not reader.fieldnames or not need <= {c.strip().lower() for c in reader.fieldnames}:
            raise SSERDError(f"{path.name} needs the columns path, actor, emotion (optional: sentence, audio).")
        for i, row in enumerate(reader, 2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            p = Path(row["path"])
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                raise SSERDError(f"{path.name} line {i}: clip {row['path']} not found.")
            audio = row.get("audio") or None
            if audio and not Path(audio).is_absolute():
                audio = str(base / audio)
            clips.append(Clip(row["actor"], canonical_label(row["emotion"]), row.get("sentence") or p.stem, str(p), audio))
    return clips


def summary(clips: list[Clip]) -> str:
    actors = sorted({c.actor for c in clips})
    per = {e: sum(c.emotion == e for c in clips) for e in EMOTIONS}
    return f"{len(clips)} clips, {len(actors)} actors; " + ", ".join(f"{e} {n}" for e, n in per.items() if n)
