"""``sserd preprocess``: clips → aligned face crops, masks and landmarks in a resumable cache.

Per clip (one worker process per clip, ``workers`` at a time): decode frames (every
``stride``-th, at most ``max_frames``), find the face with :class:`sserd_core.face.FaceTracker`
(dlib detection + 68-point landmarks, tracked), cut the aligned crop exactly as inference does
(:func:`sserd_core.neural.align_face`, ``size`` px: SSERD's template with the official 1.25× zoom —
template-aligned 256 px, resized to 320, centre-cropped to 256 — or FFHQ), the feathered face
mask (:func:`sserd_core.neural.face_mask`) and the landmarks in crop pixels. Frames without a
face are dropped and counted.

Cache layout::

    CACHE/index.json            settings + one record per clip (actor, emotion, frames, status)
    CACHE/clips/<key>.npz       images uint8 [N,S,S,3], masks uint8 [N,S,S], landmarks float32 [N,68,2],
                                frame_index int32 [N]

Each clip file is written atomically (temporary name, then rename), so an interrupted run
leaves only complete files; rerunning skips them (``--overwrite`` redoes everything). A cache
built with other settings (size, alignment, crop geometry, stride, max_frames) is refused rather than
mixed — so is one cut with an earlier crop geometry (no ``crop_geometry`` in its index).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import SSERDError
from .data import Clip, clip_file, clip_record, discover_clips, write_index

SETTINGS = ("size", "alignment", "crop_geometry", "stride", "max_frames", "detector")


DETECTORS = ("dlib", "mtcnn")


def _mtcnn_boxes(info, stride: int, max_frames: Optional[int]) -> dict:
    """Pass 1 of the official detection: MTCNN on the kept frames, smoothed as ``detect.py`` does → {frame: box}."""
    from ..media import iter_frames
    from .mtcnn import MTCNN, official_boxes

    det, raw, idx = MTCNN(), [], []
    for frame in iter_frames(info):
        if frame.index % stride:
            continue
        b, _, _ = det.detect(frame.rgb)
        raw.append(b[0] if len(b) else None)
        idx.append(frame.index)
        if max_frames and len(idx) >= max_frames:
            break
    if not any(b is not None for b in raw):
        return {}
    return dict(zip(idx, official_boxes(raw)))


def preprocess_clip(clip: Clip, cache_dir, size: int = 256, alignment: str = "sserd-template", stride: int = 1,
                    max_frames: Optional[int] = None, detector: str = "dlib") -> dict:
    """Process one clip into ``cache_dir/clips/<key>.npz``; returns its index record.

    ``detector``: ``"dlib"`` (the project's tracker) or ``"mtcnn"`` (the official ``detect.py``: MTCNN boxes
    median-smoothed over the clip, the 256 px ``extract_face`` crop with margin 70, landmarks found in that
    crop; :mod:`sserd_core.train.mtcnn`). Either way the crop is then aligned onto SSERD's template."""
    from ..face import FaceTracker
    from ..media import iter_frames, probe_video
    from ..neural import align_face, face_mask

    if detector not in DETECTORS:
        raise SSERDError(f"Unknown detector '{detector}' (use dlib or mtcnn).")
    out = clip_file(cache_dir, clip.key)
    try:
        info = probe_video(clip.path)
    except SSERDError as exc:
        return clip_record(clip, 0, f"unreadable: {exc}")
    tracker = FaceTracker(info.fps_float, smooth=False)
    boxes = _mtcnn_boxes(info, stride, max_frames) if detector == "mtcnn" else None
    images, masks, lms, idx = [], [], [], []
    for frame in iter_frames(info):
        if boxes is not None:
            if frame.index not in boxes:
                if frame.index % stride == 0 and boxes and frame.index > max(boxes):
                    break
                continue
            from .mtcnn import landmarks_in_box

            lm = landmarks_in_box(frame.rgb, boxes[frame.index])
        else:
            lm = tracker.update(frame.rgb)  # fed every frame so tracking stays valid between kept frames
        if frame.index % stride:
            continue
        if lm is not None:
            crop, m = align_face(frame.rgb, lm, size, alignment)
            lm_crop = lm @ m[:, :2].T + m[:, 2]
            images.append(crop)
            masks.append((face_mask(lm_crop, size) * 255).round().astype(np.uint8))
            lms.append(lm_crop.astype(np.float32))
            idx.append(frame.index)
        if max_frames and len(idx) >= max_frames:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + f".partial{os.getpid()}.npz")
    n = len(idx)
    empty = np.zeros((0, size, size, 3), np.uint8)
    np.savez(tmp, images=np.stack(images) if n else empty, masks=np.stack(masks) if n else empty[..., 0],
             landmarks=np.stack(lms) if n else np.zeros((0, 68, 2), np.float32),
             frame_index=np.asarray(idx, np.int32))
    os.replace(tmp, out)
    return clip_record(clip, n, "ok" if n else "no face")


def _bar(total: int):
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="clip", desc="preprocess", file=sys.stderr, dynamic_ncols=True)
    except ImportError:  # pragma: no cover - tqdm comes with huggingface_hub
        return None


def preprocess(root, cache_dir, layout: str, size: int = 256, alignment: str = "sserd-template", stride: int = 1,
               max_frames: Optional[int] = None, workers: int = 1, overwrite: bool = False,
               views: Sequence[str] = ("front",), progress: Optional[Callable[[str, int, int], None]] = None,
               show_bar: bool = True, detector: str = "dlib") -> dict:
    """Preprocess every clip of ``root`` (in ``layout``) into ``cache_dir``; returns the index dict.

    ``progress(stage, done, total)`` is called after each clip; with ``show_bar`` a tqdm bar is shown.
    """
    if size % 32:
        raise SSERDError(f"--size must be a multiple of 32, got {size}.")
    if stride < 1:
        raise SSERDError(f"--stride must be >= 1, got {stride}.")
    clips, skipped = discover_clips(root, layout, views)
    cache_dir = Path(cache_dir)
    from ..neural import crop_geometry

    meta = dict(root=str(Path(root).resolve()), layout=layout, size=size, alignment=alignment,
                crop_geometry=crop_geometry(alignment), stride=stride, max_frames=max_frames, detector=detector,
                skipped=skipped)
    if detector not in DETECTORS:
        raise SSERDError(f"Unknown detector '{detector}' (use dlib or mtcnn).")
    if detector == "mtcnn":
        from .mtcnn import weights_dir

        weights_dir()  # a missing install is said before any clip is read
    index_path = cache_dir / "index.json"
    previous = {}
    if index_path.is_file() and not overwrite:
        import json

        old = json.loads(index_path.read_text())
        differ = [k for k in SETTINGS if old.get(k, "dlib" if k == "detector" else None) != meta[k]]
        if differ:
            raise SSERDError(f"{cache_dir} was built with other settings ({', '.join(differ)}); "
                             "use another cache folder or --overwrite.")
        previous = {c["key"]: c for c in old.get("clips", [])}
    cache_dir.mkdir(parents=True, exist_ok=True)
    records, todo = {}, []
    for clip in clips:
        rec = previous.get(clip.key)
        if rec is not None and clip_file(cache_dir, clip.key).is_file() and not overwrite:
            records[clip.key] = rec
        else:
            todo.append(clip)
    total, done = len(clips), len(records)
    bar = _bar(total) if show_bar else None
    if bar is not None:
        bar.update(done)

    def finish(rec):
        nonlocal done
        records[rec["key"]] = rec
        done += 1
        if bar is not None:
            bar.update(1)
        if progress is not None:
            progress("preprocess", done, total)
        # the index is rewritten after every clip, so an interrupted run resumes where it stopped
        write_index(cache_dir, meta, [records[c.key] for c in clips if c.key in records])

    args = dict(cache_dir=str(cache_dir), size=size, alignment=alignment, stride=stride, max_frames=max_frames,
                detector=detector)
    try:
        if workers <= 1 or len(todo) <= 1:
            for clip in todo:
                finish(preprocess_clip(clip, **args))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(preprocess_clip, clip, **args) for clip in todo]
                for fut in as_completed(futures):
                    finish(fut.result())
    finally:
        if bar is not None:
            bar.close()
    write_index(cache_dir, meta, [records[c.key] for c in clips])
    from .data import read_index

    return read_index(cache_dir)
