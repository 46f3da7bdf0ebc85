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

import collections
import contextlib
import dataclasses
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from . import media, validate
from . import expression
from .content import ContentTrack
from .editor import FaceEditor
from .emotion import EmotionSpec
from .errors import MediaError, NoFaceError, SSERDError
from .outputs import OutputSet, check_free_space, describe_os_error
from .face import smooth_track, track_faces

log = logging.getLogger("sserd")

ProgressFn = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


# --------------------------------------------------------------------------- stages

def load_video(path: Union[str, os.PathLike], start: Optional[float] = None, end: Optional[float] = None,
               max_frames: Optional[int] = None) -> media.VideoInfo:
    """Open and check a video; describe the selected range [``start``, ``end``) seconds (at most ``max_frames``)."""
    start, end = validate.time_range(start, end)
    max_frames = validate.count("max_frames", max_frames, lo=1, allow_none=True) if max_frames != 0 else None
    return media.probe_video(path, start=start, end=end, max_frames=max_frames)


def disentangle_content(video: media.VideoInfo, face_index: int = 0,
                        progress: Optional[ProgressFn] = None, strict: bool = False,
                        _keep: Optional["_FrameTail"] = None) -> ContentTrack:
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
    frames = (times.append(f.time) or keep(f) or f.rgb
              for f in media.prefetch(media.iter_frames(video, planes=_keep is not None)))
    tracked = track_faces(frames, video.fps_float, video.n_frames, face_index,
                          progress=lambda d, t: progress("tracking face", d, t))
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
    if not tracked.found.any():
        raise NoFaceError(
            f"No face found in {Path(video.path).name}. SSERD needs a visible, roughly frontal face; "
            "check the clip or the start/end range."
        )
    lost = int((~tracked.found).sum())
    if lost:
        log.info("face not visible in %d of %d frames; those frames pass through unchanged", lost, len(tracked.found))
    landmarks = smooth_track(tracked.landmarks, tracked.found, video.fps_float)
    return expression.build_content_track(video, np.asarray(times), landmarks, tracked.found, face_index)


def extract_emotion(label: Optional[str] = None, intensity: float = 1.0, reference=None,
                    curve: Optional[str] = None, sync: str = "time",
                    progress: Optional[ProgressFn] = None) -> EmotionSpec:
    """The target emotion, from exactly one of: ``curve`` text, a ``reference`` face, or a ``label``.

    ``reference`` is an image path or an RGB ``uint8 [H, W, 3]`` array of anyone's face — its
    emotion is measured from its landmarks (relative to a population neutral face) and later
    retargeted onto the source face's geometry — or a **video** path: a driving clip (the
    paper's cross-ID protocol), whose face is tracked and whose emotion is measured on every
    frame; each source frame then shows the clip's emotion at the same time (``sync="time"``)
    or at the same frame index (``sync="index"``), looping when the clip is shorter. A neural
    backend encodes the clip's frames themselves.
    """
    given = [x is not None and not (isinstance(x, str) and x == "") for x in (label, reference, curve)]
    if sum(given) > 1:
        raise SSERDError("Give only one of: an emotion label, a reference face, or a curve.")
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
    if sync not in ("time", "index"):
        raise SSERDError(f"sync must be 'time' or 'index', got {sync!r}.")
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
        kernel = np.ones(k, np.float32) / k
        padded = np.pad(vectors[found], ((k // 2, k // 2), (0, 0)), mode="edge")
        vectors[found] = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(7)], 1)
    # frames where the reference face is not visible take the nearest visible frame's emotion
    frames = np.arange(len(vectors))
    right = np.clip(np.searchsorted(found, frames), 0, len(found) - 1)
    left = np.clip(right - 1, 0, len(found) - 1)
    nearer_left = np.abs(found[left] - frames) < np.abs(found[right] - frames)
    vectors = vectors[np.where(nearer_left, found[left], found[right])]
    return EmotionSpec.from_driving_clip(str(path), track.times, vectors, info.duration, sync=sync,
                                         reference_rgb=media.middle_frame(info))


def as_emotion(emotion) -> EmotionSpec:
    """An :class:`EmotionSpec`, or a label string turned into one at full intensity."""
    if isinstance(emotion, EmotionSpec):
        return emotion
    if isinstance(emotion, str) and emotion.strip():
        return EmotionSpec.from_label(emotion, 1.0)
    raise SSERDError(f"The emotion must be an EmotionSpec (from extract_emotion) or a label such as 'happy'; "
                     f"got {emotion!r}.")


@dataclass
class Preview:
    """One preview frame of a render: its index and time in the clip, the edited frame's PNG and the
    source | edited PNG beside it."""

    index: int
    time: float
    edited: Path
    compare: Path


@dataclass
class RenderResult:
    """What :func:`render_face` produced and measured.

    ``times`` ``[N]`` seconds; ``target`` ``[N, 7]`` the requested emotion per frame;
    ``source_emotion`` / ``edited_emotion`` ``[N, 7]`` emotion measured on landmarks
    fitted to the source / edited pixels; ``source_mouth`` / ``edited_mouth`` ``[N]``
    inner-lip opening (inter-ocular units) measured the same way; NaN where no face.
    ``previews``: :class:`Preview` frames, in clip order; ``seconds``: the render's wall time.
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
    previews: list[Preview] = field(default_factory=list)
    seconds: float = 0.0


def default_editor() -> FaceEditor:
    """The editor used when none is given: :func:`make_editor`'s defaults (the landmark editor on the CPU)."""
    return make_editor()


def render_face(content: ContentTrack, emotion: EmotionSpec, output_path: Union[str, os.PathLike], *,
                editor: Optional[FaceEditor] = None, comparison_path: Optional[Union[str, os.PathLike]] = None,
                preview_dir: Optional[Union[str, os.PathLike]] = None, preview_n: int = 0,
                measure: bool = True, progress: Optional[ProgressFn] = None,
                frame_sink: Optional[Callable[[int, np.ndarray], None]] = None,
                threads: Optional[int] = None, _tail: Optional["_FrameTail"] = None) -> RenderResult:
    """Re-render the clip with the face showing ``emotion``; write a video-only file ``output_path``.

    ``threads``: frame workers (default: :func:`default_threads` — one per CPU core, at most 4, fewer
    for a small face — for backends that are safe to run on several frames at once, the landmark
    editor; 1 otherwise). Frames are
    edited in parallel and written, measured and shown strictly in order; the output is the
    same file whatever the number of workers.

    ``comparison_path``: also write a side-by-side (source | edited) video.
    ``preview_dir`` / ``preview_n``: also save ``preview_n`` evenly spaced frames as PNG
    (edited, and source | edited). ``measure``: fit landmarks on each edited frame to
    report the emotion and mouth opening actually shown (~2 ms a frame).
    ``frame_sink(index, rgb)`` receives each edited frame (e.g. to build an IMAGE batch).
    """
    progress = progress or _no_progress
    emotion = as_emotion(emotion)
    preview_n = validate.count("preview_n", preview_n, lo=0)
    editor = editor or default_editor()
    workers = default_threads(_face_fraction(content)) if threads is None else validate.count("threads", threads, lo=1)
    if not getattr(editor, "parallel_safe", False):
        workers = 1
    video = content.video
    n = content.n_frames
    times = content.times
    targets = emotion.targets(times[:n])
    driving = None
    if emotion.driving_path is not None and hasattr(editor, "set_driving_clip"):
        # a neural backend takes the clip's frames themselves as per-frame references
        from .neural import load_driving_clip

        driving = load_driving_clip(editor, emotion.driving_path, sync=emotion.sync, source_fps=video.fps_float,
                                    source_frames=n)
        editor.set_driving_clip(driving)
    elif hasattr(editor, "set_driving_clip"):
        editor.set_driving_clip(None)  # an editor reused across jobs never keeps an earlier job's clip
    editor.prepare(emotion)
    src_emo = np.full((n, 7), np.nan, np.float32)
    out_emo = np.full((n, 7), np.nan, np.float32)
    src_mouth = np.full(n, np.nan, np.float32)
    out_mouth = np.full(n, np.nan, np.float32)
    preview_at = set()
    if preview_dir and preview_n > 0 and n:
        preview_at = set(np.linspace(0, n - 1, min(preview_n, n)).round().astype(int).tolist())
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

            def publish(b, face, prepared, out):
                """Everything that happens to an edited frame, in frame order, on this thread."""
                nonlocal done
                writer.write(prepared, b.time)
                if cmp_writer is not None:
                    cmp_writer.write(np.concatenate([b.rgb, out], axis=1), b.time)
                if measure and face is not None:
                    src_emo[b.index], src_mouth[b.index] = expression.measure_frame(b.rgb, face.landmarks, content)
                    out_emo[b.index], out_mouth[b.index] = expression.measure_frame(out, face.landmarks, content)
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
                faces = [content.face_frame(b.index) for b in batch]
                patches = editor.edit_patches([b.rgb for b in batch], faces, [targets[b.index] for b in batch])
                return [(b, face, writer.prepare(p, b), p.apply() if whole or b.index in preview_at else None)
                        for b, face, p in zip(batch, faces, patches)]

            frames = media.prefetch(_frames(video, n, _tail), depth=4 + 2 * workers)
            # closing(): on an error or interrupt the workers and the decoder stop now, not when the
            # traceback is freed
            with contextlib.closing(frames), _one_blas_thread(getattr(editor, "parallel_safe", False)), \
                    contextlib.closing(_ordered(edit_batch, _batches(frames, n, max(1, editor.batch_size)),
                                                workers)) as results:
                for batch in results:
                    for item in batch:
                        publish(*item)
    return RenderResult(Path(output_path), done, times[:done], targets[:done], src_emo[:done], out_emo[:done],
                        src_mouth[:done], out_mouth[:done], Path(comparison_path) if comparison_path else None,
                        previews, time.perf_counter() - t_start)


@contextlib.contextmanager
def _one_blas_thread(active: bool = True):
    """BLAS (the OpenBLAS copies NumPy, OpenCV and SciPy load) on one thread inside the block.

    A parallel-safe editor's frames are already spread over the cores by the frame workers; a
    BLAS call that hands its few-ms product or solve (the landmark warp's spline) to a thread pool
    only adds threads that spin between calls, on the cores the workers, the decoder and the
    encoder need: measured on 2 busy cores, 99 → 33 ms of CPU per 720p close-up frame. Not for
    other editors (a neural one on the CPU wants its library's threads). Without threadpoolctl,
    nothing changes."""
    if not active:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


#: decoded frames the tracking pass keeps for the render pass (the clip's last ones), in bytes
FRAME_TAIL_BYTES = 128 * 2**20


class _FrameTail:
    """The last decoded frames of a pass, up to ``limit`` bytes (the render pass takes them instead
    of decoding them a second time: all of a short clip, the end of a long one; memory stays
    bounded whatever the clip's length). A frame with planes is kept as its planes only (a third of
    its RGB and planes together): its RGB is made again from them, bit for bit, when handed on."""

    def __init__(self, limit: Optional[int] = None):
        self.limit = FRAME_TAIL_BYTES if limit is None else limit
        self.frames: collections.deque = collections.deque()
        self.bytes = 0

    def add(self, frame: media.Frame) -> None:
        if self.frames and frame.index != self.frames[-1].index + 1:  # not a run of frames: start again
            self.clear()
        kept = frame if frame.planes is None else _Compact(frame.index, frame.time, frame.planes)
        self.frames.append(kept)
        self.bytes += kept.nbytes
        while self.bytes > self.limit and self.frames:
            self.bytes -= self.frames.popleft().nbytes

    def clear(self) -> None:
        self.frames.clear()
        self.bytes = 0


@dataclasses.dataclass(frozen=True)
class _Compact:
    """A kept frame without its RGB (see :class:`_FrameTail`)."""

    index: int
    time: float
    planes: media.Planes

    @property
    def nbytes(self) -> int:
        return self.planes.yuv.nbytes

    def frame(self) -> media.Frame:
        return media.Frame(self.index, self.time, self.planes.to_rgb(), self.planes)


def _frames(video: media.VideoInfo, n: int, tail: Optional[_FrameTail]):
    """Frames 0..n-1 of ``video``: decoded up to the first frame ``tail`` holds, then taken from it
    (the same frames: the same decoder over the same file). Without a usable tail: all decoded."""
    kept = tail.frames if tail is not None else ()
    if not kept or kept[-1].index < n - 1 or kept[0].index >= n:
        yield from media.iter_frames(video, max_frames=n, planes=True)
        return
    if kept[0].index > 0:
        yield from media.iter_frames(video, max_frames=kept[0].index, planes=True)
    while kept and kept[0].index < n:
        f = kept.popleft()  # handed on, no longer held here
        yield f.frame() if isinstance(f, _Compact) else f
    tail.clear()


#: CPU time of the landmark edit per frame against the encoder's, per unit of the face's share of the frame
#: (the landmarks' bounding box over the frame's area). Measured on 2 cores (x264 veryfast): the edit costs
#: ~125 ns per pixel of that box, the encode ~29 ns per pixel of the frame, so ~4.3; 6 leaves a margin.
EDIT_COST_PER_FACE_SHARE = 6.0


def default_threads(face_fraction: Optional[float] = None) -> int:
    """Frame workers used when none are asked for: one per available core, at most 4, and no more than a
    face of ``face_fraction`` of the frame needs to keep pace with the encoder on those cores.

    Workers only help while the edit is the slower half: a small face is edited faster than its frame is
    encoded, and a second worker then only adds threads that contend for the cores and the GIL. Measured
    with ``bench/bench_speed.py --threads 1 2`` on 2 cores: a 200 px face at 720p (share 0.04) ran 1.43x
    the floor with 1 worker and 1.55x with 2 (CPU 1.57x against 1.71x); a 400 px face at 720p and a 600 px
    one at 1080p (share 0.17) ran 1.91x and 1.66x with 2 workers, 2.02x and 1.87x with 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    n = max(1, min(4, cores))
    if face_fraction is not None and face_fraction > 0:
        n = min(n, max(1, int(np.ceil(cores * EDIT_COST_PER_FACE_SHARE * face_fraction))))
    return n


def _face_fraction(content: ContentTrack) -> Optional[float]:
    """The tracked face's typical share of the frame: its landmarks' bounding box over the frame's area
    (median over the frames where it was found); None when unknown."""
    lm = content.landmarks[content.found] if content.n_frames else None
    if lm is None or not len(lm) or not content.video.width or not content.video.height:
        return None
    size = np.nanmedian(np.prod(lm.max(1) - lm.min(1), axis=1))
    return float(size) / float(content.video.width * content.video.height) if np.isfinite(size) else None


def _batches(frames, n: int, size: int):
    """Group decoded frames (the first ``n``) into lists of ``size``."""
    batch: list = []
    for fr in frames:
        if fr.index >= n:
            break
        batch.append(fr)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _ordered(fn, items, workers: int):
    """``fn`` over ``items`` on ``workers`` threads, results yielded in input order.

    At most ``2 * workers`` items are in flight, so memory stays bounded. OpenCV, NumPy and
    FFmpeg release the GIL, so the workers overlap. An exception in a worker (or in the
    consumer, e.g. an interrupt) cancels everything not yet started and is raised here.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sserd-frame",
                              initializer=media.worker_thread_signals)
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            while len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _maybe_writer(tmp, w, h, fps):
    return media.VideoWriter(str(tmp), w, h, fps, threaded=True) if tmp else contextlib.nullcontext()


def write_clip(video: media.VideoInfo, output_path: Union[str, os.PathLike], audio: Optional[tuple] = None, *,
               size: Optional[tuple[int, int]] = None) -> Path:
    """Write ``video``'s range as a file of its own: its frames encoded as every output is (scaled to
    ``size`` = (w, h) with area interpolation, if given) and ``audio`` = ``(path, start, end)`` muxed in
    (stream-copied when possible; None: video only). All or nothing, like every output of the project."""
    import cv2

    w, h = size if size is not None else (video.width, video.height)
    with OutputSet(inputs=(video.path,) + ((audio[0],) if audio else ())) as outs:
        silent = outs.scratch("video.mp4")
        with media.VideoWriter(str(silent), w, h, video.fps) as writer:
            for fr in media.iter_frames(video, planes=size is None):
                if size is None:
                    writer.write(fr.rgb, fr.time, source=fr)  # the decoded planes, as they are
                else:
                    writer.write(cv2.resize(fr.rgb, (w, h), interpolation=cv2.INTER_AREA), fr.time)
        path, start, end = audio if audio is not None else (None, 0.0, None)
        mux_audio(silent, path, outs.file(output_path), audio_start=start, audio_end=end,
                  inputs=(str(video.path),) + ((str(path),) if path else ()))
    return Path(output_path)


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


_SOURCE_AUDIO = object()  # edit_video's default audio: the source's own (a sentinel no path can equal)


@dataclass(frozen=True)
class EditOptions:
    """Every option of one edit, with the one set of defaults that every front-end uses.

    The CLI's flags, the nodes' inputs and the Space's controls are translations of these
    fields; :func:`edit` runs them. The target emotion is one of: ``emotion`` (a label) at
    ``intensity``; ``reference`` (an image or a clip path, or an RGB array; a clip is followed
    frame by frame, matched by ``sync``); or ``curve`` text. ``backend``: ``"landmark"`` or a
    neural model folder / Hub repo id, on ``device`` (see :func:`make_editor`, which takes
    ``grid_step`` / ``interpolation`` for the landmark warp). ``face_index``, ``start`` / ``end``:
    which face and which part of the clip. ``threads``: frame workers (default: one per core, at
    most 4). ``preview_n``: preview frames to save. ``measure``: fit landmarks on every edited
    frame and report the emotion and mouth opening shown. ``strict``: a truncated clip is an error.
    """

    emotion: Optional[str] = None
    intensity: float = 1.0
    reference: object = None
    curve: Optional[str] = None
    sync: str = "time"
    face_index: int = 0
    start: Optional[float] = None
    end: Optional[float] = None
    backend: str = "landmark"
    device: Optional[str] = None
    grid_step: int = 8
    interpolation: str = "bicubic"
    threads: Optional[int] = None
    preview_n: int = 0
    measure: bool = False
    strict: bool = False

    def target(self, progress: Optional[ProgressFn] = None) -> EmotionSpec:
        """The target emotion (:func:`extract_emotion` of the fields that say it; neutral if none does)."""
        return extract_emotion(label=self.emotion, intensity=self.intensity, reference=self.reference,
                               curve=self.curve, sync=self.sync, progress=progress)

    def editor(self) -> FaceEditor:
        """The backend these options ask for (:func:`make_editor`)."""
        return make_editor(self.backend, self.device, grid_step=self.grid_step, interpolation=self.interpolation)


def make_editor(backend: Optional[str] = "landmark", device: Optional[str] = None, *,
                grid_step: int = EditOptions.grid_step, interpolation: str = EditOptions.interpolation,
                **neural_options) -> FaceEditor:
    """The one place a backend is chosen (CLI, ComfyUI, Space and evaluation all call it, so the same
    options give the same pixels everywhere).

    ``backend``: ``"landmark"`` (or None / "") — the built-in editor; anything else is a converted
    neural SSERD model folder or a Hugging Face repo id. ``device``: ``cpu`` / ``cuda[:N]`` / ``mps``
    (None: CPU for the landmark editor, the best available for the neural one), checked before any
    loading. ``grid_step`` / ``interpolation``: the landmark warp's flow grid (px) and resampling.
    ``neural_options`` go to :func:`sserd_core.neural.load_editor` (e.g. ``noise_mode``).
    """
    device = validate.device(device)
    if not backend or str(backend).strip().lower() in ("landmark", "landmark (built-in)"):
        from .landmark.render import LandmarkEditor

        if interpolation not in ("bicubic", "bilinear"):
            raise SSERDError(f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}.")
        return LandmarkEditor(device=device, grid_step=validate.count("grid_step", grid_step, lo=1),
                              interpolation=interpolation)
    try:
        from .neural import load_editor
    except ImportError as exc:
        raise SSERDError(f"The neural backend is not available ({exc}). Install with: "
                         "pip install 'comfyui-sserd[neural]'.") from exc
    return load_editor(str(backend), device=device, **neural_options)


def edit_video(source, output_path: Union[str, os.PathLike], emotion, *,
               face_index: int = 0, start: Optional[float] = None, end: Optional[float] = None,
               editor: Optional[FaceEditor] = None, comparison_path: Optional[Union[str, os.PathLike]] = None,
               preview_dir: Optional[Union[str, os.PathLike]] = None, preview_n: int = 0,
               plot_path: Optional[Union[str, os.PathLike]] = None, measure: bool = False, strict: bool = False,
               audio=_SOURCE_AUDIO, threads: Optional[int] = None,
               progress: Optional[ProgressFn] = None) -> EditResult:
    """Edit the emotion of the face in ``source``; write ``output_path`` with the source's audio.

    The graph in code: load_video → disentangle_content → (emotion) → render_face →
    mux_audio. ``source`` is a video path, or a :class:`ContentTrack` already tracked (then
    ``start``/``end``/``face_index`` are the track's and tracking is skipped). ``emotion`` is an
    :class:`EmotionSpec` (see :func:`extract_emotion`) or a label. ``audio``: the source's own
    audio (default), another media path or :class:`~sserd_core.media.AudioData`, or None.

    All or nothing: the output, the side-by-side (``comparison_path``), the preview PNGs
    (``preview_n`` frames in ``preview_dir``) and the plot (``plot_path``) appear together
    once every one of them is complete; on any failure or interrupt none appears, every
    temporary is removed and the input (and any file the job did not create) is untouched.
    Every argument is checked before decoding starts. ``measure``: also fit landmarks on
    every output frame (implied by ``plot_path``). ``strict``: a truncated clip is an error
    instead of a warning.
    """
    t0 = time.perf_counter()
    emotion = as_emotion(emotion)
    track = source if isinstance(source, ContentTrack) else None
    if track is not None:
        if start is not None or end is not None:
            raise SSERDError("start/end come from the ContentTrack's video; track the range you want instead.")
        input_path = track.video.path
    else:
        input_path = source
    face_index = validate.face_index(face_index)
    start, end = validate.time_range(start, end)
    preview_n = validate.count("preview_n", preview_n, lo=0)
    threads = validate.count("threads", threads, lo=1, allow_none=True)
    if not Path(input_path).exists():
        raise MediaError(f"Input file not found: {input_path}.")
    out = validate.output_file(output_path)
    if comparison_path is not None:
        validate.output_file(comparison_path, what="The side-by-side output")
    if plot_path is not None:
        validate.output_file(plot_path, kinds=validate.PLOT_OUTPUTS, what="The plot")
    if preview_n > 0:
        if preview_dir is None:
            raise SSERDError("preview_n > 0 needs a preview_dir to write the frames to.")
        validate.output_folder(preview_dir)
    validate.distinct_paths(input=input_path, output=output_path, side_by_side=comparison_path,
                            plot=plot_path, preview_folder=preview_dir if preview_n > 0 else None)
    video = track.video if track is not None else load_video(input_path, start=start, end=end)
    need = validate.frame_memory(video.width, video.height)
    if need > 2 * 2**30:
        warnings.warn(f"{video.width}x{video.height} frames: editing needs about {need / 2**30:.1f} GiB of memory.")
    n_videos = 1 + (comparison_path is not None) * 2
    try:
        with OutputSet(inputs=(input_path,)) as outs:
            # staging folders are made here, before decoding: an unwritable folder fails now
            final = outs.file(out)
            final_cmp = outs.file(comparison_path) if comparison_path else None
            final_prev = outs.folder(preview_dir) if preview_n > 0 else None
            final_plot = outs.file(plot_path) if plot_path else None
            for folder in {final.parent, final_cmp.parent if final_cmp else final.parent}:
                check_free_space(folder, validate.output_bytes(video.width, video.height, video.n_frames, n_videos))
            tail = _FrameTail() if track is None else None  # the render pass need not decode these again
            content = track if track is not None else disentangle_content(video, face_index=face_index,
                                                                          progress=progress, strict=strict,
                                                                          _keep=tail)
            # the video-only intermediate: MP4 (H.264) whose packets every container takes, WebM for WebM (VP9)
            mid = ".webm" if out.suffix.lower() == ".webm" else ".mp4"
            silent = outs.scratch(f"video{mid}")
            silent_cmp = outs.scratch(f"side_by_side{mid}") if comparison_path else None
            result = render_face(content, emotion, silent, editor=editor, comparison_path=silent_cmp,
                                 preview_dir=final_prev, preview_n=preview_n, measure=measure or bool(plot_path),
                                 progress=progress, threads=threads, _tail=tail)
            tail = None  # frees the frames
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
                from .plots import plot_emotion_over_time

                plot_emotion_over_time(result, final_plot)
    except OSError as exc:
        raise SSERDError(describe_os_error(exc, f"the output {out.name}")) from exc
    if preview_n > 0:
        result.previews = [dataclasses.replace(p, edited=Path(preview_dir) / p.edited.name,
                                   compare=Path(preview_dir) / p.compare.name) for p in result.previews]
    result.path = out
    result.comparison_path = Path(comparison_path) if comparison_path else None
    return EditResult(out, content, emotion, result, Path(comparison_path) if comparison_path else None,
                      audio is not None, time.perf_counter() - t0)


def edit(source, output_path: Union[str, os.PathLike], options: EditOptions = EditOptions(), *,
         emotion=None, editor: Optional[FaceEditor] = None,
         comparison_path: Optional[Union[str, os.PathLike]] = None,
         preview_dir: Optional[Union[str, os.PathLike]] = None,
         plot_path: Optional[Union[str, os.PathLike]] = None, audio=_SOURCE_AUDIO,
         progress: Optional[ProgressFn] = None) -> EditResult:
    """One edit as the front-ends ask for it: ``options`` (:class:`EditOptions`) on ``source`` (a path or a
    :class:`ContentTrack`, whose face and range are then the track's), written to ``output_path`` with the
    source's audio; see :func:`edit_video` for the outputs and the guarantees (checked first, all or nothing).

    ``emotion`` (an :class:`EmotionSpec` or label) and ``editor`` replace what ``options`` would make, for a
    front-end that already holds them (the Space keeps its loaded neural models; the CLI names both before
    the job starts).
    """
    target = as_emotion(emotion) if emotion is not None else options.target(progress)
    editor = editor if editor is not None else options.editor()
    return edit_video(source, output_path, target, face_index=options.face_index, start=options.start,
                      end=options.end, editor=editor,
                      comparison_path=comparison_path, preview_dir=preview_dir, preview_n=options.preview_n,
                      plot_path=plot_path, measure=options.measure, strict=options.strict, audio=audio,
                      threads=options.threads, progress=progress)
