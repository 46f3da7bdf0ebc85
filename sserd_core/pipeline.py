"""The one pipeline: the node graph in code.

::

    load_video ──► disentangle_content ──► render_face ──► mux_audio ──► file
                                              ▲
    label / reference / curve ─► extract_emotion

:func:`edit_video` chains the stages; the CLI, the ComfyUI nodes and the Gradio Space
call these functions and nothing else. Every stage streams: frames are decoded,
processed and encoded one at a time; only per-frame landmarks (68×2 floats) are kept
for the whole clip.

Progress is reported through ``progress(stage, done, total)``; a progress callback may
raise (e.g. ComfyUI's interrupt) to stop a job — no partial output file is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from . import expression, media
from .content import ContentTrack
from .editor import FaceEditor, FaceFrame
from .emotion import EmotionSpec
from .errors import NoFaceError, SSERDError
from .face import track_faces

log = logging.getLogger("sserd")

ProgressFn = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


# --------------------------------------------------------------------------- stages

def load_video(path: Union[str, os.PathLike], start: Optional[float] = None, end: Optional[float] = None,
               max_frames: Optional[int] = None) -> media.VideoInfo:
    """Open and check a video; describe the selected range [``start``, ``end``) seconds (at most ``max_frames``)."""
    return media.probe_video(path, start=start, end=end, max_frames=max_frames)


def disentangle_content(video: media.VideoInfo, face_index: int = 0,
                        progress: Optional[ProgressFn] = None) -> ContentTrack:
    """Track the chosen face through the clip and split each frame's expression into content and emotion.

    Returns a :class:`ContentTrack`: per-frame landmarks, the person's neutral face,
    per-frame speech content (mouth opening / width) and the emotion the source shows.
    Raises :class:`NoFaceError` if no frame has a face.
    """
    progress = progress or _no_progress
    times: list = []
    frames = (times.append(f.time) or f.rgb for f in media.prefetch(media.iter_frames(video)))
    tracked = track_faces(frames, video.fps_float, video.n_frames, face_index,
                          progress=lambda d, t: progress("tracking face", d, t))
    if not tracked.found.any():
        raise NoFaceError(
            f"No face found in {Path(video.path).name}. SSERD needs a visible, roughly frontal face; "
            "check the clip or the start/end range."
        )
    lost = int((~tracked.found).sum())
    if lost:
        log.info("face not visible in %d of %d frames; those frames pass through unchanged", lost, len(tracked.found))
    return expression.build_content_track(video, np.asarray(times), tracked.landmarks, tracked.found, face_index)


def extract_emotion(label: Optional[str] = None, intensity: float = 1.0, reference=None,
                    curve: Optional[str] = None) -> EmotionSpec:
    """The target emotion, from exactly one of: ``curve`` text, a ``reference`` face, or a ``label``.

    ``reference`` is an image/video path or an RGB ``uint8 [H, W, 3]`` array of anyone's
    face; its emotion is measured from its landmarks (relative to a population neutral
    face) and later retargeted onto the source face's geometry.
    """
    given = [x is not None and not (isinstance(x, str) and x == "") for x in (label, reference, curve)]
    if sum(given) > 1:
        raise SSERDError("Give only one of: an emotion label, a reference face, or a curve.")
    if curve:
        return EmotionSpec.from_curve(curve)
    if reference is not None:
        rgb = media.read_image(reference)
        faces = expression.measure_image(rgb)
        if not faces:
            name = Path(reference).name if not isinstance(reference, np.ndarray) else "the reference image"
            raise NoFaceError(f"No face found in {name}. Give a reference image with a clearly visible face.")
        return EmotionSpec.from_vector(faces[0], reference_rgb=rgb, source="reference")
    return EmotionSpec.from_label(label or "neutral", intensity)


@dataclass
class RenderResult:
    """What :func:`render_face` produced and measured.

    ``times`` ``[N]`` seconds; ``target`` ``[N, 7]`` the requested emotion per frame;
    ``source_emotion`` / ``edited_emotion`` ``[N, 7]`` emotion measured on landmarks
    fitted to the source / edited pixels; ``source_mouth`` / ``edited_mouth`` ``[N]``
    inner-lip opening (inter-ocular units) measured the same way; NaN where no face.
    """

    path: Path
    n_frames: int
    times: np.ndarray
    target: np.ndarray
    source_emotion: np.ndarray
    edited_emotion: np.ndarray
    source_mouth: np.ndarray
    edited_mouth: np.ndarray
    comparison_path: Optional[Path] = None
    previews: list = field(default_factory=list)
    seconds: float = 0.0


def default_editor() -> FaceEditor:
    from .render import LandmarkEditor

    return LandmarkEditor()


def render_face(content: ContentTrack, emotion: EmotionSpec, output_path: Union[str, os.PathLike], *,
                editor: Optional[FaceEditor] = None, comparison_path: Optional[Union[str, os.PathLike]] = None,
                preview_dir: Optional[Union[str, os.PathLike]] = None, preview_n: int = 0,
                measure: bool = True, progress: Optional[ProgressFn] = None,
                frame_sink: Optional[Callable[[int, np.ndarray], None]] = None) -> RenderResult:
    """Re-render the clip with the face showing ``emotion``; write a video-only file ``output_path``.

    ``comparison_path``: also write a side-by-side (source | edited) video.
    ``preview_dir`` / ``preview_n``: also save ``preview_n`` evenly spaced frames as PNG
    (edited, and source | edited). ``measure``: fit landmarks on each edited frame to
    report the emotion and mouth opening actually shown (~2 ms a frame).
    ``frame_sink(index, rgb)`` receives each edited frame (e.g. to build an IMAGE batch).
    """
    progress = progress or _no_progress
    editor = editor or default_editor()
    video = content.video
    n = content.n_frames
    editor.prepare(emotion)
    times = content.times
    targets = np.stack([emotion.at(float(t)) for t in times]) if n else np.zeros((0, 7), np.float32)
    src_emo = np.full((n, 7), np.nan, np.float32)
    out_emo = np.full((n, 7), np.nan, np.float32)
    src_mouth = np.full(n, np.nan, np.float32)
    out_mouth = np.full(n, np.nan, np.float32)
    preview_at = set()
    if preview_dir and preview_n > 0:
        preview_at = set(np.linspace(0, n - 1, min(preview_n, n)).round().astype(int).tolist())
        Path(preview_dir).mkdir(parents=True, exist_ok=True)
    previews = []
    t_start = time.perf_counter()
    inputs = (video.path,)
    with media.atomic_output(output_path, inputs) as tmp, \
            _maybe_atomic(comparison_path, inputs) as tmp_cmp:
        with media.VideoWriter(tmp, video.width, video.height, video.fps, threaded=True) as writer, \
                _maybe_writer(tmp_cmp, video.width * 2, video.height, video.fps) as cmp_writer:
            batch: list = []
            done = 0

            def flush():
                nonlocal done
                frames = [b.rgb for b in batch]
                faces = [content.face_frame(b.index) for b in batch]
                tg = [targets[b.index] for b in batch]
                edited = editor.edit(frames, faces, tg)
                for b, face, out in zip(batch, faces, edited):
                    if out.shape != b.rgb.shape:
                        raise SSERDError(f"Backend {editor.name} returned a frame of shape {out.shape}, expected {b.rgb.shape}.")
                    writer.write(out, b.time)
                    if cmp_writer is not None:
                        cmp_writer.write(np.concatenate([b.rgb, out], axis=1), b.time)
                    if measure and face is not None:
                        src_emo[b.index], src_mouth[b.index] = expression.measure_frame(b.rgb, face.landmarks, content)
                        out_emo[b.index], out_mouth[b.index] = expression.measure_frame(out, face.landmarks, content)
                    if b.index in preview_at:
                        p = Path(preview_dir) / f"frame_{b.index:05d}.png"
                        media.write_image(p, out)
                        media.write_image(Path(preview_dir) / f"frame_{b.index:05d}_compare.png",
                                          np.concatenate([b.rgb, out], axis=1))
                        previews.append(p)
                    if frame_sink is not None:
                        frame_sink(b.index, out)
                    done += 1
                    progress("rendering", done, n)
                batch.clear()

            for fr in media.prefetch(media.iter_frames(video, max_frames=n)):
                if fr.index >= n:
                    break
                batch.append(fr)
                if len(batch) >= max(1, editor.batch_size):
                    flush()
            if batch:
                flush()
    return RenderResult(Path(output_path), done, times[:done], targets[:done], src_emo[:done], out_emo[:done],
                        src_mouth[:done], out_mouth[:done], Path(comparison_path) if comparison_path else None,
                        previews, time.perf_counter() - t_start)


def _maybe_atomic(path, inputs):
    return media.atomic_output(path, inputs) if path else contextlib.nullcontext()


def _maybe_writer(tmp, w, h, fps):
    return media.VideoWriter(tmp, w, h, fps, threaded=True) if tmp else contextlib.nullcontext()


def mux_audio(video_path: Union[str, os.PathLike], audio, output_path: Union[str, os.PathLike], *,
              audio_start: float = 0.0, audio_end: Optional[float] = None, inputs: tuple = ()) -> Path:
    """Combine a rendered (video-only) file with audio: a media file path (stream-copied when
    possible), an :class:`~sserd_core.media.AudioData`, or None (warns, video only)."""
    return media.mux_audio(video_path, audio, output_path, audio_start=audio_start, audio_end=audio_end,
                           inputs=inputs)


# --------------------------------------------------------------------------- the whole graph

@dataclass
class EditResult:
    """The result of :func:`edit_video`: the output file, what was measured, and timings."""

    output: Path
    content: ContentTrack
    emotion: EmotionSpec
    render: RenderResult
    comparison: Optional[Path]
    has_audio: bool
    seconds: float


def edit_video(input_path: Union[str, os.PathLike], output_path: Union[str, os.PathLike], emotion: EmotionSpec, *,
               face_index: int = 0, start: Optional[float] = None, end: Optional[float] = None,
               editor: Optional[FaceEditor] = None, comparison_path: Optional[Union[str, os.PathLike]] = None,
               preview_dir: Optional[Union[str, os.PathLike]] = None, preview_n: int = 0,
               measure: bool = False, progress: Optional[ProgressFn] = None) -> EditResult:
    """Edit the emotion of the face in ``input_path``; write ``output_path`` with the source's audio.

    The graph in code: load_video → disentangle_content → (emotion) → render_face →
    mux_audio. The input is never modified; the output appears atomically or not at all.
    ``measure``: also fit landmarks on every output frame to report the emotion and mouth
    opening actually shown (for plots; ~2 ms a frame).
    """
    t0 = time.perf_counter()
    out = Path(output_path)
    if Path(input_path).exists() and out.resolve() == Path(input_path).resolve():
        raise SSERDError(f"Output path {output_path} is the input file; choose another output path.")
    if comparison_path and Path(comparison_path).resolve() in (out.resolve(), Path(input_path).resolve()):
        raise SSERDError("The side-by-side path must differ from the input and output paths.")
    video = load_video(input_path, start=start, end=end)
    content = disentangle_content(video, face_index=face_index, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out.parent
    # the video-only intermediate: MP4 (H.264) whose packets every container takes, WebM for WebM (VP9)
    mid = ".webm" if out.suffix.lower() == ".webm" else ".mp4"
    silent = tmp_dir / f".{out.stem}.video{mid}"
    silent_cmp = tmp_dir / f".{out.stem}.sbs{mid}" if comparison_path else None
    try:
        result = render_face(content, emotion, silent, editor=editor, comparison_path=silent_cmp,
                             preview_dir=preview_dir, preview_n=preview_n, measure=measure, progress=progress)
        audio = input_path if video.has_audio else None
        if audio is None:
            warnings.warn(f"{Path(input_path).name} has no audio; the output has no audio either.")
        trim = dict(audio_start=video.start, audio_end=video.end) if (video.start or video.end) else {}
        mux_audio(silent, audio, out, inputs=(input_path,), **trim)
        if silent_cmp is not None:
            mux_audio(silent_cmp, audio, comparison_path, inputs=(input_path,), **trim)
    finally:
        for p in (silent, silent_cmp):
            if p is not None and p.exists():
                p.unlink()
    return EditResult(out, content, emotion, result, Path(comparison_path) if comparison_path else None,
                      video.has_audio, time.perf_counter() - t0)
