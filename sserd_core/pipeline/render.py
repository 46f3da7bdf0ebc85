"""The render stage: the clip re-rendered through a backend, frame workers in parallel, written in order."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .. import expression, media
from .. import stop as job_stop
from ..content import ContentTrack
from ..controls import N_CONTROLS, saturation_note
from ..editor import FaceEditor
from ..emotion import EmotionSpec
from ..errors import SSERDError
from ..outputs import OutputSet
from .backends import default_editor
from .frame_cache import FrameTail, frames_of
from .faces import FaceEdit, check_same_clip
from .options import EditOptions
from .results import FaceResult, Outputs, Preview, RenderResult, preview_indices
from .stages import ProgressFn, _no_progress, as_emotion
from .workers import batches, default_threads, face_fraction_of, one_blas_thread, ordered


def render_face(content: ContentTrack, emotion: EmotionSpec, out: Union[Outputs, str, os.PathLike],
                options: EditOptions = EditOptions(), *, editor: Optional[FaceEditor] = None,
                progress: Optional[ProgressFn] = None, frame_sink: Optional[Callable[[int, np.ndarray], None]] = None,
                other_faces: Sequence[FaceEdit] = (), _tail: Optional["FrameTail"] = None) -> RenderResult:
    """Re-render the clip with the face showing ``emotion``; write a video-only file ``out`` (an
    :class:`Outputs` or the video's path).

    From ``options`` (:class:`EditOptions`): ``threads``, the frame workers (default: :func:`default_threads`
    — one per CPU core, at most 4, fewer for a small face — for backends that are safe to run on several
    frames at once, the landmark editor; 1 otherwise). Frames are edited in parallel and written, measured
    and shown strictly in order; the output is the same file whatever the number of workers.
    ``measure``: fit landmarks on each edited frame to report the emotion and mouth opening actually shown
    (~2 ms a frame). ``preview_n``: with ``out.previews``, save that many evenly spaced frames as PNG
    (edited, and source | edited). ``out.side_by_side``: also write a source | edited video.
    ``frame_sink(index, rgb)`` receives each edited frame (e.g. to build an IMAGE batch).

    ``other_faces``: more faces of the same clip, each with its own track and target (:class:`FaceEdit`), for a
    backend that edits every frame from its own inputs (the landmark editor). Each frame's faces are edited in
    turn — this face first, then ``other_faces`` in order, each on the frame that already has the edits before
    it — and written as one edit; where a face is lost, it stays as it is and the others are still edited.
    """
    progress = progress or _no_progress
    emotion = as_emotion(emotion)
    out_set = Outputs.of(out)
    output_path, comparison_path, preview_dir = out_set.video, out_set.side_by_side, out_set.previews
    preview_n, measure, threads = options.preview_n, options.measure, options.threads
    editor = editor or default_editor()
    faces = (FaceEdit(content, emotion), *other_faces)
    if len(faces) > 1:
        check_same_clip(content, other_faces)
        if not editor.parallel_safe:
            raise SSERDError(f"The {editor.name} backend edits one face per job; a target per face needs the landmark "
                             "backend (or one job per face).")
    share = sum(face_fraction_of(f.content) or 0.0 for f in faces) or None
    workers = default_threads(share) if threads is None else threads
    if not editor.parallel_safe:
        workers = 1
    video = content.video
    n = content.n_frames
    times = content.times
    # each face's targets (and expression controls, handed to the editor after the emotion), over the whole clip
    plans = [frame_targets(f.content, f.emotion, editor, np.arange(n)) for f in faces]
    _, controls, edit_targets = plans[0]  # (the first face's emotion targets are in `measured`)
    more = [(f.content, plan[2]) for f, plan in zip(other_faces, plans[1:])]  # the other faces, with their targets
    shown = np.full((len(faces), n, N_CONTROLS), np.nan, np.float32)
    reached = np.full((len(faces), n, N_CONTROLS), np.nan, np.float32)
    sample_at = set(preview_indices(n, CONTROL_SAMPLES)) if any(p[1] is not None and p[1].any() for p in plans) \
        else set()
    driving = None
    if emotion.driving_path is not None:
        # a backend that takes the clip's frames themselves (the neural one) loads them, over the range the
        # emotion was measured on; the others read the clip's per-frame emotion from the targets
        driving = editor.load_driving_clip(emotion.driving_path, sync=emotion.sync, source_fps=video.fps_float,
                                           source_frames=n, **emotion.driving_range())
    editor.set_driving_clip(driving)  # None: an editor reused across jobs never keeps an earlier job's clip
    editor.prepare(emotion)
    measured = [FaceResult(f.face_index, t, *(np.full((n, 7), np.nan, np.float32) for _ in range(2)),
                           *(np.full(n, np.nan, np.float32) for _ in range(2)))
                for f, (t, _, _) in zip(faces, plans)]
    preview_at = set(preview_indices(n, preview_n)) if preview_dir else set()
    previews = []
    t_start = time.perf_counter()
    done = 0
    with OutputSet(inputs=(video.path,)) as outs:
        tmp = outs.file(output_path)
        tmp_cmp = outs.file(comparison_path) if comparison_path else None
        tmp_prev = outs.folder(preview_dir) if preview_at else None
        with media.VideoWriter(str(tmp), video.width, video.height, video.fps, threaded=True) as writer, \
                _maybe_writer(tmp_cmp, video.width * 2, video.height, video.fps) as cmp_writer:

            whole = cmp_writer is not None or measure or frame_sink is not None  # who needs whole edited frames

            def publish(b, face_frames, prepared, out):
                """Everything that happens to an edited frame, in frame order, on this thread."""
                nonlocal done
                job_stop.check()
                writer.write(prepared, b.time)
                if cmp_writer is not None:
                    cmp_writer.write(np.concatenate([b.rgb, out], axis=1), b.time)
                for f, face, m in zip(faces, face_frames, measured):
                    if measure and face is not None:
                        m.source_emotion[b.index], m.source_mouth[b.index] = expression.measure_frame(
                            b.rgb, face.landmarks, f.content)
                        m.edited_emotion[b.index], m.edited_mouth[b.index] = expression.measure_frame(
                            out, face.landmarks, f.content)
                if b.index in preview_at:
                    name, name_cmp = f"frame_{b.index:05d}.png", f"frame_{b.index:05d}_compare.png"
                    media.write_image(tmp_prev / name, out)
                    media.write_image(tmp_prev / name_cmp, np.concatenate([b.rgb, out], axis=1))
                    previews.append(Preview(b.index, float(times[b.index]), Path(preview_dir) / name,
                                            Path(preview_dir) / name_cmp))
                if frame_sink is not None:
                    frame_sink(b.index, out)
                done += 1
                progress("rendering", done, n)

            def edit_batch(batch):
                """On a worker: the edit, as patches, made ready for the encoder here (only their boxes are
                converted back into the source's planes), and the whole edited frames where something
                downstream needs them."""
                face_frames = [[content.face_frame(b.index)] for b in batch]
                patches = editor.edit_patches([b.rgb for b in batch], [f[0] for f in face_frames],
                                              [edit_targets[b.index] for b in batch])
                for other, other_targets in more:  # each on the frame with the edits before it, merged into one
                    found = [other.face_frame(b.index) for b in batch]
                    later = editor.edit_patches([p.apply() for p in patches], found,
                                                [other_targets[b.index] for b in batch])
                    patches = [p.then(q) for p, q in zip(patches, later)]
                    for f, face in zip(face_frames, found):
                        f.append(face)
                for b, found in zip(batch, face_frames):
                    if b.index in sample_at:
                        for k, (face, plan) in enumerate(zip(found, plans)):
                            if plan[1] is not None:
                                shown[k, b.index], reached[k, b.index] = editor.control_shares(
                                    b.rgb, face, plan[2][b.index])
                return [(b, f, writer.prepare(p, b), p.apply() if whole or b.index in preview_at else None)
                        for b, f, p in zip(batch, face_frames, patches)]

            frames = media.prefetch(frames_of(video, n, _tail), depth=4 + 2 * workers)
            # closing(): on an error or interrupt the workers and the decoder stop now, not when the
            # traceback is freed
            with contextlib.closing(frames), one_blas_thread(editor.parallel_safe), \
                    contextlib.closing(ordered(edit_batch, batches(frames, n, max(1, editor.batch_size)),
                                                workers)) as results:
                for batch in results:
                    for item in batch:
                        publish(*item)
    control_shown, notes = None, []
    sampled_at = sorted(i for i in sample_at if i < done)
    for k, (f, plan) in enumerate(zip(faces, plans)):
        if plan[1] is None:
            continue
        share = _median_share(shown[k, sampled_at])
        control_shown = share if k == 0 else control_shown
        note = saturation_note(plan[1][:done], share, _median_share(reached[k, sampled_at]))
        if note:
            notes.append(note if len(faces) == 1 else f"Face {f.face_index}: {note}")
            warnings.warn(notes[-1])
    measured = [FaceResult(m.face_index, m.target[:done], m.source_emotion[:done], m.edited_emotion[:done],
                           m.source_mouth[:done], m.edited_mouth[:done]) for m in measured]
    first = measured[0]
    return RenderResult(Path(output_path), done, times[:done], first.target, first.source_emotion,
                        first.edited_emotion, first.source_mouth, first.edited_mouth,
                        Path(comparison_path) if comparison_path else None, previews, time.perf_counter() - t_start,
                        tuple(measured) if len(measured) > 1 else (),
                        controls[:done] if controls is not None else None, control_shown, notes)


#: how many evenly spaced frames a render with expression controls measures their saturation on
CONTROL_SAMPLES = 16


def _median_share(sampled: np.ndarray) -> np.ndarray:
    """The median over sampled frames of each control's share shown (NaN where never measured)."""
    out = np.full(N_CONTROLS, np.nan, np.float32)
    for c in range(N_CONTROLS):
        col = sampled[:, c] if len(sampled) else np.zeros(0)
        col = col[np.isfinite(col)]
        if len(col):
            out[c] = float(np.median(col))
    return out


def frame_targets(content: ContentTrack, emotion: EmotionSpec, editor: Optional[FaceEditor],
                  frames: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """``(targets [N, 7], controls [N, N_CONTROLS] or None, what the editor is handed [N, 7 (+ N_CONTROLS)])``
    for ``frames`` (indices) of ``content``: the emotion asked for at each frame's time (the source's own where
    ``emotion`` keeps it: controls alone) and the expression controls after it, where there are any."""
    frames = np.asarray(frames, int)
    # over the whole clip, then picked: a driving clip matched by index or stretched depends on every frame
    targets = emotion.targets(content.times[:content.n_frames])[frames]
    if emotion.keep_source:  # controls alone: the source's own expression, frame by frame, is the base
        targets = np.nan_to_num(np.asarray(content.source_emotion[frames], np.float32))
    check_controls(emotion, editor)
    if not (emotion.controls or emotion.keep_source):
        return targets, None, targets
    controls = emotion.control_targets(content.times[frames])
    return targets, controls, np.hstack([targets, controls]).astype(np.float32)


def check_controls(emotion: EmotionSpec, editor: Optional[FaceEditor]) -> None:
    """One readable error when ``emotion`` has expression controls and ``editor`` (None: the default, the landmark
    editor) cannot take them."""
    if (emotion.controls or emotion.keep_source) and editor is not None and not editor.takes_controls:
        raise SSERDError(f"Expression controls need the landmark backend; the {editor.name} backend edits from "
                         "emotions only. Use a label, a reference face or a curve with it, or the landmark backend.")


def _maybe_writer(tmp, w, h, fps):
    return media.VideoWriter(str(tmp), w, h, fps, threaded=True) if tmp else contextlib.nullcontext()
