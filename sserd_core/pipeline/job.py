"""The job runner: one whole edit, checked first and written all or nothing."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Mapping, Optional, Union

from .. import media, validate
from ..content import ContentTrack
from ..editor import FaceEditor
from ..errors import MediaError, SSERDError
from ..outputs import OutputSet, check_free_space, describe_os_error, signature
from .frame_cache import FrameTail
from .faces import FaceEdit, face_targets, main_target
from .options import EditOptions
from .render import check_controls, render_face
from .results import EditResult, Outputs, preview_names
from .stages import ProgressFn, as_emotion, disentangle_content, disentangle_faces, load_video, mux_audio
from .workers import default_threads

_SOURCE_AUDIO = object()  # edit_video's default audio: the source's own (a sentinel no path can equal)


def edit_video(source, out: Union[Outputs, str, os.PathLike], emotion, options: EditOptions = EditOptions(), *,
               editor: Optional[FaceEditor] = None, audio=_SOURCE_AUDIO, progress: Optional[ProgressFn] = None,
               reads: Optional[dict] = None) -> EditResult:
    """Edit the emotion of the face in ``source`` to ``emotion``; write ``out`` with the source's audio.

    The graph in code: load_video → disentangle_content → (emotion) → render_face →
    mux_audio. ``source`` is a video path, or a :class:`ContentTrack` already tracked (then
    the face and the range are the track's and tracking is skipped). ``emotion`` is an
    :class:`EmotionSpec` (see :func:`extract_emotion`) or a label; or, for a different emotion on each face,
    a mapping face index → :class:`EmotionSpec` or label (``{0: happy, 1: sad}``; ``source`` a path): every
    listed face is tracked in the same decoding pass and edited on its own track, in the mapping's order
    (``options.face_index`` is then unused). ``out``: an :class:`Outputs` (the
    video and the side files) or the video's path. ``options``: the face, the range, the frame
    workers, the previews, ``measure`` and ``strict`` (:class:`EditOptions`, checked when it was made; its
    target-emotion and backend fields are :func:`edit`'s). ``audio``: the source's own audio (default),
    another media path or :class:`~sserd_core.media.AudioData`, or None.

    All or nothing: the output, the side-by-side, the preview PNGs (``options.preview_n`` frames in
    ``out.previews``) and the plot appear together once every one of them is complete; on any failure or
    interrupt none appears, every temporary is removed and the input (and any file the job did not
    create) is untouched. Every path is checked before decoding starts. ``options.measure``: also fit
    landmarks on every output frame (implied by a plot). ``options.strict``: a truncated clip is an error
    instead of a warning. ``reads``: the other files the job reads, role → path (the reference image or clip,
    the model folder; a driving clip is added from ``emotion``): no output may be one of them (compared by
    identity: symlinks, ``..`` and hard links), nor lie inside a model folder. A source (or a file in
    ``reads``) that changes while the job runs (its size, time or inode differ from when it was opened)
    fails the job, with nothing written.
    """
    t0 = time.perf_counter()
    per_face = _per_face(emotion) if isinstance(emotion, Mapping) else None
    emotion = per_face[0][1] if per_face else as_emotion(emotion)
    for _, spec in per_face or [(None, emotion)]:
        check_controls(spec, editor)
    out_set = Outputs.of(out)
    output_path, comparison_path, plot_path = out_set.video, out_set.side_by_side, out_set.plot
    preview_dir, preview_n, threads = out_set.previews, options.preview_n, options.threads
    face_index, start, end, measure, strict = options.face_index, options.start, options.end, options.measure, \
        options.strict
    reads = {k: v for k, v in (reads or {}).items() if isinstance(v, (str, os.PathLike)) and str(v) != ""}
    for k, (idx, spec) in enumerate(per_face or [(None, emotion)]):
        if spec.driving_path is not None:
            reads.setdefault("the reference clip" + (f" of face {idx}" if k else ""), spec.driving_path)
    track = source if isinstance(source, ContentTrack) else None
    if track is not None and per_face:
        raise SSERDError("A target per face tracks its faces itself: give the video's path, not a ContentTrack "
                         "(or render_face with other_faces for tracks you already have).")
    if per_face and len(per_face) > 1 and editor is not None and not editor.parallel_safe:
        raise SSERDError(f"The {editor.name} backend edits one face per job; a target per face needs the landmark "
                         "backend (or one job per face).")  # said before tracking; render_face says it too
    if track is not None:
        if start is not None or end is not None:
            raise SSERDError("start/end come from the ContentTrack's video; track the range you want instead.")
        input_path = track.video.path
    else:
        input_path = source
    if not Path(input_path).exists():
        raise MediaError(f"Input file not found: {input_path}.")
    if track is None and media.is_still_image(input_path):
        name = Path(input_path).name
        raise MediaError(f"{name} is a still image, not a video: the edit needs a clip of the face talking. A photo "
                         f"can be the target instead: give it as the reference face (sserd edit: --reference {name}).")
    out = validate.output_file(output_path)
    if comparison_path is not None:
        validate.output_file(comparison_path, what="The side-by-side output")
    if plot_path is not None:
        validate.output_file(plot_path, kinds=validate.PLOT_OUTPUTS, what="The plot")
    if preview_n > 0:
        if preview_dir is None:
            raise SSERDError("preview_n > 0 needs a preview_dir to write the frames to.")
        validate.output_folder(preview_dir)
    validate.distinct_paths(input=input_path, reads=reads, output=output_path, side_by_side=comparison_path,
                            plot=plot_path, preview_folder=preview_dir if preview_n > 0 else None)
    watched = {p: signature(p) for p in [input_path, *reads.values()] if Path(p).is_file()}
    video = track.video if track is not None else load_video(input_path, start=start, end=end)
    if preview_n > 0:  # now the preview frames' names are known: none may collide with a file or an output
        validate.distinct_paths(input=input_path, reads=reads, output=output_path, side_by_side=comparison_path,
                                plot=plot_path, preview_folder=preview_dir,
                                preview_files=tuple(preview_names(video.n_frames, preview_n)))

    def unchanged() -> None:
        for p, sig in watched.items():
            if signature(p) != sig:
                raise SSERDError(f"{Path(p).name} changed while the job was reading it (it was rewritten, replaced "
                                 "or removed); nothing was written. Run again once the file no longer changes.")

    need = validate.frame_memory(video.width, video.height, threads=threads or default_threads())
    if need > 2 * 2**30:
        warnings.warn(f"{video.width}x{video.height} frames: editing needs about {need / 2**30:.1f} GiB of memory.")
    n_videos = 1 + (comparison_path is not None) * 2
    try:
        with OutputSet(inputs={"the input video": input_path, **reads}) as outs:
            # staging folders are made here, before decoding: an unwritable folder fails now
            final = outs.file(out)
            final_cmp = outs.file(comparison_path) if comparison_path else None
            final_prev = outs.folder(preview_dir) if preview_n > 0 else None
            final_plot = outs.file(plot_path) if plot_path else None
            for folder in {final.parent, final_cmp.parent if final_cmp else final.parent}:
                check_free_space(folder, validate.output_bytes(video.width, video.height, video.n_frames, n_videos))
            tail = FrameTail() if track is None else None  # the render pass need not decode these again
            others = ()
            if per_face:
                tracks = disentangle_faces(video, [idx for idx, _ in per_face], progress=progress, strict=strict,
                                           _keep=tail)
                content, others = tracks[0], tuple(FaceEdit(c, spec) for c, (_, spec) in zip(tracks[1:], per_face[1:]))
            else:
                content = track if track is not None else disentangle_content(video, face_index=face_index,
                                                                              progress=progress, strict=strict,
                                                                              _keep=tail)
            unchanged()
            # the video-only intermediate: MP4 (H.264) whose packets every container takes, WebM for WebM (VP9)
            mid = ".webm" if out.suffix.lower() == ".webm" else ".mp4"
            silent = outs.scratch(f"video{mid}")
            silent_cmp = outs.scratch(f"side_by_side{mid}") if comparison_path else None
            result = render_face(content, emotion, Outputs(silent, side_by_side=silent_cmp, previews=final_prev),
                                 dataclasses.replace(options, measure=measure or bool(plot_path)), editor=editor,
                                 progress=progress, other_faces=others, _tail=tail)
            tail = None  # frees the frames
            unchanged()
            if result.n_frames != content.n_frames:
                raise SSERDError(f"{Path(input_path).name}: {content.n_frames} frames were tracked but only "
                                 f"{result.n_frames} could be decoded again to render them (the file changed or "
                                 "cannot be read reliably); nothing was written.")
            video = content.video
            if audio is _SOURCE_AUDIO:
                audio = input_path if video.has_audio else None
                if audio is None:
                    warnings.warn(f"{Path(input_path).name} has no audio; the output has no audio either.")
            trim = dict(audio_start=video.start, audio_end=video.end) if (video.start or video.end) else {}
            mux_audio(silent, audio, final, inputs=(input_path,), **trim)
            if final_cmp is not None:
                mux_audio(silent_cmp, audio, final_cmp, inputs=(input_path,), **trim)
            if final_plot is not None:
                from ..plots import plot_emotion_over_time

                plot_emotion_over_time(result, final_plot)
            unchanged()  # the last look before publishing
    except SSERDError:
        unchanged()  # a decoding error caused by a file rewritten under the job says so
        raise
    except OSError as exc:
        unchanged()
        raise SSERDError(describe_os_error(exc, f"{out.name} in {out.parent.resolve()}")) from exc
    except Exception as exc:
        unchanged()
        if validate.out_of_memory(exc):
            raise SSERDError(validate.memory_message(f"while editing {video.width}x{video.height} frames", need,
                                                     exc)) from exc
        raise
    if preview_n > 0:
        result.previews = [dataclasses.replace(p, edited=Path(preview_dir) / p.edited.name,
                                   compare=Path(preview_dir) / p.compare.name) for p in result.previews]
    result.path = out
    result.comparison_path = Path(comparison_path) if comparison_path else None
    return EditResult(out, content, emotion, result, Path(comparison_path) if comparison_path else None,
                      audio is not None, time.perf_counter() - t0,
                      (FaceEdit(content, emotion), *others) if per_face else ())


def _per_face(emotion: Mapping) -> list:
    """A mapping face index → target (an :class:`EmotionSpec` or a label) as ``[(index, spec), ...]``."""
    if not emotion:
        raise SSERDError("The per-face targets are empty: give at least one face index and its emotion.")
    return [(validate.face_index(k), as_emotion(v)) for k, v in emotion.items()]


def edit(source, out: Union[Outputs, str, os.PathLike], options: EditOptions = EditOptions(), *,
         emotion=None, editor: Optional[FaceEditor] = None, audio=_SOURCE_AUDIO,
         progress: Optional[ProgressFn] = None) -> EditResult:
    """One edit as the front-ends ask for it: ``options`` (:class:`EditOptions`) on ``source`` (a path or a
    :class:`ContentTrack`, whose face and range are then the track's), written to ``out`` (an :class:`Outputs`
    or the video's path) with the source's audio: :func:`edit_video` with the target emotion and the backend
    the options name (checked first, all or nothing).

    ``emotion`` (an :class:`EmotionSpec` or label) and ``editor`` replace what ``options`` would make, for a
    front-end that already holds them (the Space keeps its loaded neural models; the CLI names both before
    the job starts). With ``options.faces`` (a target per face, :func:`~sserd_core.pipeline.faces.face_targets`)
    every listed face is tracked in one pass and edited on its own track; ``emotion`` is then the target of
    face ``options.face_index`` (or a mapping face index → target for them all).
    """
    if isinstance(emotion, Mapping):
        target = emotion
    elif options.faces:
        main = main_target(options)
        listed = face_targets(options) if emotion is None else (main, *options.faces)
        target = {t.face_index: (as_emotion(emotion) if emotion is not None and t is main else t.spec(progress))
                  for t in listed}
    else:
        target = as_emotion(emotion) if emotion is not None else options.target(progress)
    editor = editor if editor is not None else options.editor()
    reads = {}
    for t in face_targets(options):
        if isinstance(t.reference, (str, os.PathLike)) and str(t.reference):
            reads["the reference" + (f" of face {t.face_index}" if options.faces else "")] = t.reference
    if options.backend and Path(str(options.backend)).exists():
        reads["the model folder"] = options.backend
    return edit_video(source, out, target, options, editor=editor, audio=audio, progress=progress, reads=reads)
