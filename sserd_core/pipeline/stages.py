"""The stages of the graph that are not the render: load a clip, track and split its face, the target
emotion, and the audio mux (:mod:`.render` is the render stage)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from .. import expression, media, validate
from ..content import ContentTrack
from ..controls import controls_given, parse_controls
from ..emotion import DEFAULT_INTENSITY, SYNC_MODES, EmotionSpec, check_sync
from ..errors import MediaError, NoFaceError, SSERDError
from ..face import smooth_track, track_faces, track_several_faces
from ..smoothing import moving_average
from .frame_cache import FrameTail

log = logging.getLogger("sserd")

ProgressFn = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def load_video(path: Union[str, os.PathLike], start: Optional[float] = None, end: Optional[float] = None,
               max_frames: Optional[int] = None) -> media.VideoInfo:
    """Open and check a video; describe the selected range [``start``, ``end``) seconds (at most ``max_frames``)."""
    start, end = validate.time_range(start, end)
    max_frames = validate.count("max_frames", max_frames, lo=1, allow_none=True) if max_frames != 0 else None
    return media.probe_video(path, start=start, end=end, max_frames=max_frames)


def disentangle_content(video: media.VideoInfo, face_index: int = 0,
                        progress: Optional[ProgressFn] = None, strict: bool = False,
                        _keep: Optional["FrameTail"] = None) -> ContentTrack:
    """Track the chosen face through the clip and split each frame's expression into content and emotion.

    Returns a :class:`ContentTrack`: per-frame landmarks, the person's neutral face,
    per-frame speech content (mouth opening / width) and the emotion the source shows.
    Raises :class:`NoFaceError` if no frame has a face. A clip that ends before the frame count
    its container declares (a truncated file) is reported with a warning, or an error when
    ``strict``.
    """
    face_index = validate.face_index(face_index)
    progress = progress or _no_progress
    times: list = []
    keep = _keep.add if _keep is not None else (lambda f: None)
    decoded = media.prefetch(media.iter_frames(video, planes=_keep is not None))
    frames = (times.append(f.time) or keep(f) or f.rgb for f in decoded)
    with contextlib.closing(decoded):  # on an error or a stop the decoder thread is joined now, not at GC
        tracked = track_faces(frames, video.fps_float, video.n_frames, face_index,
                              progress=lambda d, t: progress("tracking face", d, t))
    video = _decoded_range(video, times, strict)
    if not tracked.found.any():
        raise NoFaceError(
            f"No face found in {Path(video.path).name}. SSERD needs a visible, roughly frontal face; "
            "check the clip or the start/end range."
        )
    return _content_track(video, times, tracked, face_index)


def disentangle_faces(video: media.VideoInfo, face_indices, progress: Optional[ProgressFn] = None,
                      strict: bool = False, _keep: Optional["FrameTail"] = None) -> tuple:
    """:func:`disentangle_content` for several faces of one clip, in one decoding pass: one tracker per
    index of ``face_indices`` over the same frames (a face that leaves is never re-acquired as another
    listed face). Returns one :class:`ContentTrack` per index, in that order. A face never found, or an
    index beyond the faces of the first frame that has any, is a :class:`NoFaceError` that names it."""
    face_indices = tuple(validate.face_index(i) for i in face_indices)
    progress = progress or _no_progress
    times: list = []
    keep = _keep.add if _keep is not None else (lambda f: None)
    decoded = media.prefetch(media.iter_frames(video, planes=_keep is not None))
    frames = (times.append(f.time) or keep(f) or f.rgb for f in decoded)
    with contextlib.closing(decoded):
        tracked = track_several_faces(frames, video.fps_float, video.n_frames, face_indices,
                                      progress=lambda d, t: progress("tracking faces", d, t))
    video = _decoded_range(video, times, strict)
    for idx, t in zip(face_indices, tracked):
        if not t.found.any():
            raise NoFaceError(f"Face {idx} was not found in {Path(video.path).name} ({t.n_faces_first} face(s) on the "
                              "first frame with faces; index 0 = largest). Check the clip or the face indices.")
    return tuple(_content_track(video, times, t, idx) for idx, t in zip(face_indices, tracked))


def _decoded_range(video: media.VideoInfo, times: list, strict: bool) -> media.VideoInfo:
    """``video`` with as many frames as were decoded (``times``): a clip that ends before the frame count its
    container declares is reported with a warning (an error when ``strict``)."""
    whole = not video.start and video.end is None
    declared = max(video.n_frames, video.declared_frames if whole else 0)
    if len(times) < declared - 1:  # one frame of slack: an edit list may hide a frame the index counts
        msg = (f"{Path(video.path).name} declares {declared} frames{'' if whole else ' in the selected range'} but "
               f"only {len(times)} could be decoded (the file is truncated or damaged); the output has {len(times)} frames.")
        if strict:
            raise SSERDError(msg + " Re-export or repair the file, or run without --strict to use the readable frames.")
        warnings.warn(msg)
        if len(times) == 0:
            raise SSERDError(f"No frame of {Path(video.path).name} could be decoded.")
        video = dataclasses.replace(video, n_frames=len(times))
    return video


def _content_track(video: media.VideoInfo, times: list, tracked, face_index: int) -> ContentTrack:
    """One tracked face's landmarks smoothed over time and split into content and emotion."""
    lost = int((~tracked.found).sum())
    if lost:
        log.info("face %d not visible in %d of %d frames; those frames pass through unchanged", face_index, lost,
                 len(tracked.found))
    landmarks = smooth_track(tracked.landmarks, tracked.found, video.fps_float)
    return expression.build_content_track(video, np.asarray(times), landmarks, tracked.found, face_index)


def extract_emotion(label: Optional[str] = None, intensity: float = DEFAULT_INTENSITY, reference=None,
                    curve: Optional[str] = None, sync: str = SYNC_MODES[0], controls=None,
                    progress: Optional[ProgressFn] = None) -> EmotionSpec:
    """The target emotion, from exactly one of: ``curve`` text, a ``reference`` face, or a ``label``, with
    expression ``controls`` on top (text such as ``"smile=0.6, brow_inner=-0.3"``, keyframes over time, or a
    mapping; :mod:`sserd_core.controls`). Controls alone keep the source's own expression and change only
    what they name (0 = the source).

    ``reference`` is an image path or an RGB ``uint8 [H, W, 3]`` array of anyone's face — its
    emotion is measured from its landmarks (relative to a population neutral face) and later
    retargeted onto the source face's geometry — or a **video** path: a driving clip (the
    paper's cross-ID protocol), whose face is tracked and whose emotion is measured on every
    frame; each source frame then shows the clip's emotion at the same time (``sync="time"``)
    or at the same frame index (``sync="index"``), looping when the clip is shorter, or the whole clip
    spread over the whole source (``sync="stretch"``). A neural
    backend encodes the clip's frames themselves.
    """
    given = [x is not None and not (isinstance(x, str) and x == "") for x in (label, reference, curve)]
    if sum(given) > 1:
        raise SSERDError("Give only one of: an emotion label, a reference face, or a curve.")
    if controls_given(controls):
        frames = parse_controls(controls)  # checked before a reference is measured
        if not any(given):
            return EmotionSpec.from_controls(frames)
        return _extract(label, intensity, reference, curve, sync, progress).with_controls(frames)
    return _extract(label, intensity, reference, curve, sync, progress)


def _extract(label, intensity, reference, curve, sync, progress) -> EmotionSpec:
    if curve:
        spec = EmotionSpec.from_curve(curve)
        for t, _ in spec.keyframes:
            if not np.isfinite(t):
                raise SSERDError(f"Curve times must be finite numbers of seconds, got {t} in '{curve}'.")
        return spec
    if isinstance(reference, media.VideoInfo) or (reference is not None and not isinstance(reference, np.ndarray)
                                                  and not media.is_still_image(reference)):
        return _driving_clip(reference, sync, progress)
    if reference is not None:
        rgb = media.read_image(reference)
        if rgb.shape[0] < 16 or rgb.shape[1] < 16:
            raise SSERDError(f"The reference image is {rgb.shape[1]}x{rgb.shape[0]} pixels: too small to hold a face.")
        faces = expression.measure_image(rgb)
        if not faces:
            name = Path(reference).name if not isinstance(reference, np.ndarray) else "the reference image"
            raise NoFaceError(f"No face found in {name}. Give a reference image with a clearly visible face.")
        return EmotionSpec.from_vector(faces[0], reference_rgb=rgb, source="reference")
    if label is not None and not isinstance(label, str):
        raise SSERDError(f"The emotion label must be text (e.g. 'happy'), got {label!r}.")
    intensity = validate.number("The intensity", intensity, lo=0.0, hi=1.0)
    return EmotionSpec.from_label(label or "neutral", intensity)


def _driving_clip(clip, sync: str, progress: Optional[ProgressFn]) -> EmotionSpec:
    """``clip``: a video path, or a :class:`~sserd_core.media.VideoInfo` (a range of a file)."""
    check_sync(sync)
    if isinstance(clip, media.VideoInfo):
        info, path = clip, clip.path
    else:
        path = clip
        if not Path(path).exists():
            raise MediaError(f"Reference file not found: {path}.")
        info = load_video(path)
    wrapped = (lambda stage, d, t: progress("tracking reference", d, t)) if progress else None
    track = disentangle_content(info, progress=wrapped)
    found = np.flatnonzero(track.found)
    # each frame measured like a reference image (against the population neutral: a driving clip need
    # not show its actor's neutral face), then lightly smoothed (~0.2 s) against landmark noise
    vectors = np.zeros((track.n_frames, 7), np.float32)
    for i in found:
        vectors[i] = expression.measure_landmarks(track.landmarks[i])
    k = max(1, int(round(0.2 * info.fps_float)) | 1)
    if k > 1 and len(found) > k:
        vectors[found] = moving_average(vectors[found], k, dtype=np.float32)
    # frames where the reference face is not visible take the nearest visible frame's emotion
    frames = np.arange(len(vectors))
    right = np.clip(np.searchsorted(found, frames), 0, len(found) - 1)
    left = np.clip(right - 1, 0, len(found) - 1)
    nearer_left = np.abs(found[left] - frames) < np.abs(found[right] - frames)
    vectors = vectors[np.where(nearer_left, found[left], found[right])]
    return EmotionSpec.from_driving_clip(str(path), track.times, vectors, info.duration, sync=sync,
                                         reference_rgb=media.middle_frame(info), start=info.start, end=info.end)


def as_emotion(emotion) -> EmotionSpec:
    """An :class:`EmotionSpec`, or a label string turned into one at full intensity."""
    if isinstance(emotion, EmotionSpec):
        return emotion
    if isinstance(emotion, str) and emotion.strip():
        return EmotionSpec.from_label(emotion, 1.0)
    raise SSERDError(f"The emotion must be an EmotionSpec (from extract_emotion) or a label such as 'happy'; "
                     f"got {emotion!r}.")


def mux_audio(video_path: Union[str, os.PathLike], audio, output_path: Union[str, os.PathLike], *,
              audio_start: float = 0.0, audio_end: Optional[float] = None, inputs: tuple = ()) -> Path:
    """Combine a rendered (video-only) file with audio: a media file path (stream-copied when
    possible), an :class:`~sserd_core.media.AudioData`, or None (warns, video only)."""
    return media.mux_audio(video_path, audio, output_path, audio_start=audio_start, audio_end=audio_end,
                           inputs=inputs)
