"""SSERD Gradio Space: change the emotion of a talking face, keep the speech.

The page mirrors the node graph (and :func:`sserd_core.pipeline.edit_video`, which the
CLI and the ComfyUI nodes call too)::

    ① video ──► ② target emotion (label + intensity | reference face | curve) ──► ③ edit
                                                   ──► edited video with the source audio,
                                                       side-by-side (source | edited),
                                                       a plot of the emotion read on the landmarks + mouth opening

This file is a thin adapter: it validates the inputs, calls the pipeline, and turns
:class:`~sserd_core.errors.SSERDError` into ``gr.Error``. No model math lives here.

Run locally: ``python app.py`` (then open http://127.0.0.1:7860). Settings (environment):

- ``SSERD_MAX_SECONDS`` (default 20): longest selected range (end − start) one request
  may edit; longer inputs are refused with a message that says how to trim them.
- ``SSERD_CONCURRENCY`` (default 1): edits that run at the same time (the queue holds
  the rest); ``SSERD_QUEUE_SIZE`` (default 16): requests that may wait.
- ``SSERD_NEURAL_MODEL``: default weights (local folder or Hugging Face Hub repo id) for
  the neural backend, offered when :mod:`sserd_core.neural` is installed.
- ``SSERD_ALLOW_MODEL_CHOICE`` (default 0): set 1 to let users type other weights (a folder on
  this server or a Hub repo id); off, only ``SSERD_NEURAL_MODEL`` is used and nothing else is
  downloaded or read. Any weights a user names that cannot be used get one and the same answer,
  so the answer never tells whether a server path exists.
- ``SSERD_GPU_SECONDS`` (default 120): the ZeroGPU time slot requested per neural edit.
- ``SSERD_WORK_DIR``: where per-request working folders go (default: the system temp dir);
  each is deleted as soon as its result has been handed to Gradio.
- ``SSERD_CACHE_SECONDS`` (default 3600): uploads and results in Gradio's cache older
  than this are deleted (checked every quarter of that time).
- ``SSERD_MAX_FILE_SIZE`` (default ``200mb``): largest upload accepted.
- ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``: where to listen (Gradio's own variables).

On a Hugging Face ZeroGPU Space (the ``spaces`` package is installed there) the GPU work
— the neural backend's edit — sits in one function wrapped with ``spaces.GPU``; the
landmark backend runs on the CPU and never holds a GPU slot.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional

import gradio as gr
import numpy as np

from sserd_core import pipeline, plots, validate
from sserd_core.controls import CONTROLS, RANGE, format_controls
from sserd_core.emotion import EMOTIONS, describe
from sserd_core.errors import SSERDError
from sserd_core.pipeline.faces import parse_face_targets

log = logging.getLogger("sserd.space")
#: the form's defaults and ranges are the core's own (the CLI and the ComfyUI nodes use them too)
OPTIONS = pipeline.EditOptions

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
SAMPLE_VIDEO = ASSETS / "sample.mp4"  # the astronaut, smiling while she talks
SAMPLE_NEUTRAL = ASSETS / "sample_hopper.mp4"  # Grace Hopper, neutral while she talks
SAMPLE_REFERENCE = ASSETS / "astronaut_face.png"  # another person's smile, for cross-identity transfer


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {os.environ[name]!r}.") from None


MAX_SECONDS = _env_float("SSERD_MAX_SECONDS", 20.0)
CONCURRENCY = max(1, int(_env_float("SSERD_CONCURRENCY", 1)))
QUEUE_SIZE = max(1, int(_env_float("SSERD_QUEUE_SIZE", 16)))
GPU_SECONDS = int(_env_float("SSERD_GPU_SECONDS", 120))
CACHE_SECONDS = int(_env_float("SSERD_CACHE_SECONDS", 3600))
MAX_FILE_SIZE = os.environ.get("SSERD_MAX_FILE_SIZE", "200mb")
DEFAULT_NEURAL_MODEL = os.environ.get("SSERD_NEURAL_MODEL", "")
ALLOW_MODEL_CHOICE = os.environ.get("SSERD_ALLOW_MODEL_CHOICE", "0").strip().lower() in ("1", "true", "yes")

# Per-request working folders live under one root, made on first use and removed at exit.
_work_root: Optional[Path] = None
_work_root_lock = threading.Lock()


def work_root() -> Path:
    """The folder that holds the per-request working folders (made once, removed at exit)."""
    global _work_root
    with _work_root_lock:
        if _work_root is None:
            parent = Path(os.environ.get("SSERD_WORK_DIR") or tempfile.gettempdir())
            parent.mkdir(parents=True, exist_ok=True)
            _work_root = Path(tempfile.mkdtemp(prefix="sserd-space-", dir=parent))
            atexit.register(shutil.rmtree, _work_root, ignore_errors=True)
        return _work_root

# --------------------------------------------------------------------------- backends

try:  # the neural backend is optional (needs its extras: torch, diffusers, safetensors)
    from sserd_core.neural import editor as _neural
except ImportError as exc:  # its dependencies are not installed
    log.info("neural backend unavailable: %s", exc)
    _neural = None

BACKENDS = ["landmark"] + (["neural"] if _neural is not None else [])
BACKEND_INFO = {
    "landmark": "landmark — built in, CPU, no weights to download",
    "neural": "neural — the SSERD networks; needs weights (folder or Hub repo id)",
}

_neural_editors: dict = {}  # (model, neural options) → loaded editor; at most _MAX_MODELS kept (oldest dropped)
_MAX_MODELS = 2
_neural_lock = threading.RLock()  # one neural load / edit at a time: shared weights, GPU memory


#: the one answer to weights a user names that cannot be used (missing, not a model, not allowed ...): the
#: same text whatever the reason, so it tells nothing about the server's files
MODEL_REFUSED = ("These neural weights cannot be used on this server; give the Hugging Face repo id of a converted "
                 "SSERD model, or leave the field empty for the Space's own.")

_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/'\"]+)+/([^\s/'\"]+)")


def public_message(text: str) -> str:
    """``text`` with every absolute path shortened to its file name: an answer never shows a server path (an
    upload's folder, the working folder)."""
    return _PATH.sub(lambda m: m.group(1), str(text))


def _neural_editor(model: str, options: pipeline.EditOptions = OPTIONS()):
    """Load (once) the neural editor for ``model`` (a local folder or a Hub repo id) with ``options``' neural
    backend settings (precision, batch size, decoder noise, face size: each combination is its own editor)."""
    if _neural is None:
        raise SSERDError("The neural backend is not installed here; choose the landmark backend.")
    model = (model or "").strip() if ALLOW_MODEL_CHOICE else ""
    model = model or DEFAULT_NEURAL_MODEL
    if not model:
        raise SSERDError("The neural backend needs weights: give a local folder or a Hugging Face repo id "
                         "under Advanced options (or set SSERD_NEURAL_MODEL).")
    key = (model, *options.neural_options().values())
    with _neural_lock:
        if key not in _neural_editors:
            try:
                editor = pipeline.make_editor(model, **options.neural_options())  # the one place a backend is chosen
            except Exception as exc:  # noqa: BLE001 - said the same way whatever the reason (see MODEL_REFUSED)
                if model == DEFAULT_NEURAL_MODEL:
                    raise
                log.info("weights %r refused: %s", model, exc)
                raise SSERDError(MODEL_REFUSED) from None
            while len(_neural_editors) >= _MAX_MODELS:
                _neural_editors.pop(next(iter(_neural_editors)))
            _neural_editors[key] = editor
        return _neural_editors[key]


def preload_default_model() -> None:
    """Load the default weights (``SSERD_NEURAL_MODEL``), if any, before the server starts.

    The first request is then fast, and on ZeroGPU the weights are placed once in the main
    process (spaces moves them to the GPU per call).
    """
    if _neural is None or not DEFAULT_NEURAL_MODEL:
        return
    try:
        _neural_editor(DEFAULT_NEURAL_MODEL)
    except SSERDError as exc:
        log.warning("could not preload SSERD_NEURAL_MODEL=%s: %s", DEFAULT_NEURAL_MODEL, exc)


# --------------------------------------------------------------------------- the edit

class Cancelled(Exception):
    """The request was cancelled (or its client left): the job stops at its next frame and removes its files."""


def _request_alive() -> Callable[[], bool]:
    """A check, made on the request's own thread, of whether Gradio still runs this request.

    Gradio cancels a request by cancelling its asyncio task, which frees its concurrency slot at once
    but cannot stop the thread running the edit; without this check the edit ran on to its end, beside
    the next request. The request's event is in the queue's active jobs while it runs and leaves them
    when it is cancelled. (Gradio's internals: if they change, the check says "alive" and the
    :data:`_slots` semaphore still holds the limit.)"""
    try:
        from gradio.context import LocalContext

        blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
        queue = blocks._queue if blocks is not None else None
    except Exception:  # noqa: BLE001 - see the docstring
        return lambda: True
    if queue is None or event_id is None:
        return lambda: True

    def alive() -> bool:
        try:
            return any(evt._id == event_id for job in list(queue.active_jobs) if job for evt in job)
        except Exception:  # noqa: BLE001
            return True

    return alive


_jobs: dict = {}  # a request's working folder -> its alive() check, once its thread has handed the results over
_jobs_lock = threading.Lock()
_reaper: list = []


def _track_job(work: Path, alive: Callable[[], bool]) -> None:
    """Once the request's thread has yielded its results: remove ``work`` as soon as the request is no longer
    running, even when Gradio never resumes the generator (a request cancelled between the yield and Gradio
    reading the results). While the thread works in the folder it is its own to remove (the generator's
    ``finally``)."""
    with _jobs_lock:
        _jobs[work] = alive
        if not _reaper:
            t = threading.Thread(target=_reap, name="sserd-reaper", daemon=True)
            _reaper.append(t)
            t.start()


def _reap() -> None:
    while True:
        time.sleep(0.5)
        with _jobs_lock:
            gone = [w for w, alive in _jobs.items() if not alive()]
            for w in gone:
                _jobs.pop(w, None)
        for w in gone:
            shutil.rmtree(w, ignore_errors=True)


#: edits running at once in this process, whatever the clients do (a cancelled request's thread holds its slot
#: until it has stopped and cleaned up)
_slots = threading.BoundedSemaphore(CONCURRENCY)
_running = [0]
_running_lock = threading.Lock()


@contextlib.contextmanager
def _slot(alive: Callable[[], bool]):
    while not _slots.acquire(timeout=0.2):
        if not alive():
            raise Cancelled()
    with _running_lock:
        _running[0] += 1
        log.info("edit started (%d running)", _running[0])
    try:
        yield
    finally:
        with _running_lock:
            _running[0] -= 1
        _slots.release()


def _pipeline_progress(progress: Optional[gr.Progress], alive: Callable[[], bool] = lambda: True):
    """Adapt gr.Progress to the pipeline's ``progress(stage, done, total)`` (frames), at most ~20 updates/s;
    a cancelled request stops here, at its next frame."""
    last = [0.0]

    def report(stage: str, done: int, total: int) -> None:
        if not alive():
            raise Cancelled()
        if progress is None:
            return
        now = time.monotonic()
        if done in (0, 1) or done >= total or now - last[0] >= 0.05:
            last[0] = now
            progress((done, total), desc=stage, unit="frames")

    return report


def run_edit(video_path: str, output_path: str, comparison_path: str, options: pipeline.EditOptions,
             model: str, progress: Optional[gr.Progress] = None,
             alive: Callable[[], bool] = lambda: True) -> pipeline.EditResult:
    """The whole graph for one request: :func:`sserd_core.pipeline.edit` with the request's options (the
    neural backend's editor is the one kept loaded for ``model``)."""
    out = pipeline.Outputs(output_path, side_by_side=comparison_path)
    report = _pipeline_progress(progress, alive)
    if options.backend == "neural":
        with _neural_lock:
            return pipeline.edit(video_path, out, options, editor=_neural_editor(model, options), progress=report)
    return pipeline.edit(video_path, out, options, progress=report)  # a fresh LandmarkEditor


try:  # on a ZeroGPU Space the neural edit borrows a GPU for the call; elsewhere this is a no-op
    import spaces

    run_edit_gpu = spaces.GPU(duration=GPU_SECONDS)(run_edit)
except ImportError:
    spaces = None
    run_edit_gpu = run_edit


def _number(x, name: str) -> Optional[float]:
    if x is None or x == "":
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        raise SSERDError(f"{name} must be a number of seconds, got {x!r}.") from None


def _target_emotion(mode: str, label: str, intensity: float, reference: Optional[str], curve: str) -> dict:
    """The :class:`~sserd_core.pipeline.EditOptions` fields that say the target emotion, from the form."""
    mode = (mode or "label").strip().lower()
    if mode == "label":
        intensity = pipeline.EditOptions.intensity if intensity is None else float(intensity)
        return dict(emotion=label or None, intensity=intensity)  # no label: EditOptions' own (the neutral face)
    if mode == "reference":
        if not reference:
            raise SSERDError("Upload a reference face image in the 'Reference face' tab (step ②), "
                             "or switch to the 'Label' tab.")
        return dict(reference=reference)
    if mode == "curve":
        if not curve or not str(curve).strip():
            raise SSERDError("Type an emotion curve in the 'Curve over time' tab, e.g. 0:neutral, 1:happy@0.9.")
        return dict(curve=curve)
    raise SSERDError(f"Unknown emotion mode '{mode}'; use label, reference, clip or curve.")


def _other_faces(text: str) -> tuple:
    """The 'Other faces' field (``N=LABEL[@INTENSITY]`` or ``N=curve:TEXT``, one per line or separated by ``;``) as
    :class:`~sserd_core.pipeline.FaceTarget` records. A reference path is refused: the Space reads no file that
    was not uploaded."""
    targets = parse_face_targets(text or "")
    for t in targets:
        if t.reference is not None:
            raise SSERDError(f"Other faces: face {t.face_index} names a file ('{t.text()}'); here each other face takes "
                             "a label (N=LABEL[@INTENSITY]) or a curve (N=curve:TEXT).")
    return targets


def _confined(path: Optional[str], what: str) -> Optional[str]:
    """``path`` if it lies (after resolving symlinks) in Gradio's upload folder or the bundled examples.

    Gradio itself only hands the function uploaded files; this is the second lock, so a crafted
    request can never make the Space read a file elsewhere on the server (``../``, symlinks).
    """
    if not path:
        return path
    real = os.path.realpath(path)
    roots = [os.path.realpath(gr.utils.get_upload_folder()), os.path.realpath(ASSETS)]
    if not any(os.path.commonpath([real, r]) == r for r in roots):
        raise SSERDError(f"The {what} must be a file uploaded to this Space; upload it again.")
    return path


def _own_copy(path: Optional[str], folder: Path, link: bool = True) -> Optional[str]:
    """``path`` (an upload) as a file of the job's own in ``folder``, under the same name: a hard link (``link``,
    for a clip; where the folders share a file system) or a copy (an image).

    Gradio keeps one cached file per content: the same bytes uploaded again, by this user or another, are
    written to a new file that is renamed over the cached one (a new inode and time), and an image it
    converts for ``type="filepath"`` is written again in place. A job fails when a file it reads changes
    meanwhile ("changed while the job was reading it"), so each job reads its own: otherwise requests with
    the same clip would fail each other.
    """
    if not path or not os.path.isfile(path):
        return path  # nothing to read: the job says so
    folder.mkdir(exist_ok=True)
    own = folder / Path(path).name
    if link:
        try:
            os.link(path, own)
            return str(own)
        except OSError:  # another file system, or one without hard links
            pass
    shutil.copyfile(path, own)
    return str(own)


def _check_duration(video: str, start: Optional[float], end: Optional[float]):
    info = pipeline.load_video(video, start=start, end=end)
    if info.duration > MAX_SECONDS + 0.5 / info.fps_float:
        raise SSERDError(
            f"The selected part of the video is {info.duration:.1f} s long; this Space edits at most "
            f"{MAX_SECONDS:g} s per request. Set Start/End under 'Advanced options' to choose a shorter part "
            f"(or run the app yourself with SSERD_MAX_SECONDS={int(info.duration + 1)})."
        )
    return info


def _summary(result: pipeline.EditResult, backend: str) -> str:
    r = result.render
    fps = r.n_frames / r.seconds if r.seconds > 0 else float("nan")
    head = [f"**Target:** {result.emotion.describe()}" if not result.faces else
            "**Targets:** " + "; ".join(f"face {f.face_index}: {f.emotion.describe()}" for f in result.faces)]
    if result.emotion.measured is not None:
        head.append(f"(measured on the reference face: {describe(result.emotion.measured)})")
    audio = "carried over from the source" if result.has_audio else "absent: the source has none"
    lines = [" ".join(head),
             f"**Edited** {r.n_frames} frames in {result.seconds:.1f} s (rendering {fps:.1f} frames/s, "
             f"{backend} backend); audio {audio}.",
             plots.summarize_render_result(r).text(), *r.notes]
    return "\n\n".join(lines)


def edit(video, mode, label, intensity, reference, curve, face_index, start, end, backend, model,
         reference_clip=None, dtype=OPTIONS.dtype, batch_size=OPTIONS.batch_size, noise_mode=OPTIONS.noise_mode,
         max_face_size=OPTIONS.max_face_size, other_faces="", progress=gr.Progress(), controls=None):
    """Edit the emotion of the face in ``video``; yields (edited video, side-by-side, plot PNG, summary).
    ``other_faces``: a different emotion for other faces, ``N=LABEL[@INTENSITY]`` / ``N=curve:TEXT`` per line
    (the target of ② is then face ``face_index``'s); the plot shows face ``face_index``. ``controls``: expression
    controls text (:attr:`EditOptions.controls`), given by the controls section.

    A generator so that the request's working folder is deleted right after Gradio has
    copied the results into its cache (the code after ``yield`` runs then).
    """
    alive = _request_alive()
    work = Path(tempfile.mkdtemp(prefix="job-", dir=work_root()))
    log.info("job %s begins", work.name)
    try:
        try:
            if not video:
                raise SSERDError("Upload a talking-face video first (step ①), or click one of the examples.")
            start_s, end_s = _number(start, "Start"), _number(end, "End")
            if start_s is not None and start_s < 0:
                raise SSERDError(f"Start must be 0 seconds or more, got {start_s:g} s.")
            if end_s is not None and end_s <= (start_s or 0.0):
                raise SSERDError(f"End ({end_s:g} s) must be after Start ({start_s or 0:g} s); "
                                 "leave End empty to edit to the end of the clip.")
            face = OPTIONS.face_index if face_index is None else face_index  # EditOptions checks it
            backend = backend or OPTIONS.backend
            if backend not in BACKENDS:
                raise SSERDError(f"Backend '{backend}' is not available here; choose one of: {', '.join(BACKENDS)}.")
            video = _confined(video, "video")
            reference = _confined(reference, "reference face") if (mode or "").strip().lower() == "reference" else reference
            if (mode or "").strip().lower() == "clip":
                if not reference_clip:
                    raise SSERDError("Upload a driving clip in the 'Driving clip' tab (step ②), or switch to another "
                                     "tab.")
                mode, reference = "reference", _confined(reference_clip, "driving clip")
                reference = _own_copy(reference, work / "reference")
            elif (mode or "").strip().lower() == "reference" and reference:
                reference = _own_copy(reference, work / "reference", link=False)
            video = _own_copy(video, work / "input")
            _check_duration(video, start_s, end_s)
            options = pipeline.EditOptions(**_target_emotion(mode, label, intensity, reference, curve),
                                           controls=controls, face_index=face, faces=_other_faces(other_faces),
                                           start=start_s, end=end_s, backend=backend, measure=True, dtype=dtype,
                                           batch_size=batch_size, noise_mode=noise_mode or OPTIONS.noise_mode,
                                           max_face_size=max_face_size)
            out, cmp = work / "edited.mp4", work / "side_by_side.mp4"
            fn = run_edit_gpu if backend == "neural" else run_edit
            with _slot(alive):  # ZeroGPU's wrapper runs the call elsewhere: the check stays with the landmark edit
                result = fn(video, str(out), str(cmp), options, model, progress,
                            *((alive,) if fn is run_edit else ()))
            summary = _summary(result, backend)
            # a PNG file, not a gr.Plot: the page shows the same picture, and API clients get a path to
            # download rather than a base64-encoded figure inside the JSON answer
            plot_png = str(plots.plot_emotion_over_time(result.render, work / "measured.png"))
        except Cancelled:
            log.info("edit cancelled; its files are removed")
            return
        except Exception as exc:
            if not alive():  # whatever failed, the request was cancelled meanwhile: nobody waits for an answer
                log.info("edit cancelled; its files are removed")
                return
            if not isinstance(exc, SSERDError):
                log.exception("edit failed")
                raise gr.Error(public_message(f"Unexpected error ({type(exc).__name__}: {exc}). Please report it "
                                              "with the input that caused it."), duration=None,
                               print_exception=False) from exc
            log.info("request refused: %s", exc)
            raise gr.Error(public_message(exc), duration=None, print_exception=False) from exc
        if not alive():  # cancelled after its last frame: no answer to give
            log.info("edit cancelled; its files are removed")
            return
        _track_job(work, alive)
        yield str(out), str(cmp), plot_png, summary
    finally:
        with _jobs_lock:
            _jobs.pop(work, None)
        shutil.rmtree(work, ignore_errors=True)
        log.info("job %s ends", work.name)


# --------------------------------------------------------------------------- expression controls

#: the base emotion list's "no label" entry: the controls then change the source's own expression
NO_BASE = "none: the source's own expression"
#: tracked clips kept for previews, most recent last: (path, size, content hash, face, start, end) → _Tracked
_tracks: "OrderedDict[tuple, _Tracked]" = OrderedDict()
_TRACKS_KEPT = 4
_tracks_lock = threading.Lock()


class _Tracked:
    """One tracked clip (:class:`~sserd_core.content.ContentTrack`) and the frames decoded for its previews."""

    def __init__(self):
        self.track = None
        self.frames: "OrderedDict[int, object]" = OrderedDict()
        self.lock = threading.Lock()  # one tracking per clip, however many previews ask at once

    def frame(self, index: int):
        if index not in self.frames:
            self.frames[index] = pipeline.frame_at(self.track, index)
            while len(self.frames) > 8:
                self.frames.popitem(last=False)
        return self.frames[index]


def control_values(values) -> dict:
    """The sliders' values by control name (in :data:`CONTROLS` order)."""
    return {c.name: float(v or 0.0) for c, v in zip(CONTROLS, values)}


def controls_options(base: Optional[str], base_intensity, values, face_index=None, start=None, end=None,
                     backend=None) -> pipeline.EditOptions:
    """The :class:`~sserd_core.pipeline.EditOptions` the controls section asks for: the base label (none: the source's
    own expression) with the sliders as controls text (:func:`format_controls`). The preview and the render use these
    same options, as the CLI's ``--control`` and the Expression Controls node do."""
    vector = np.array(list(control_values(values).values()), np.float32)
    base = None if not base or base == NO_BASE else base
    # without a base, all at 0 still says "the source's own expression" (an all-0 keyframe); with one, nothing to add
    text = format_controls([(0.0, vector)]) if (np.any(vector) or base is None) else None
    intensity = OPTIONS.intensity if base_intensity is None else float(base_intensity)
    return pipeline.EditOptions(emotion=base, intensity=intensity, controls=text,
                                face_index=OPTIONS.face_index if face_index is None else face_index, start=start,
                                end=end, backend=backend or OPTIONS.backend)


def _file_key(path: str) -> tuple:
    """What identifies an uploaded file: its path, size and a hash of its first and last MiB. (Not its modification
    time: Gradio touches a cached upload each time it hands it out again, and a re-upload of the same file is the
    same clip.)"""
    real = os.path.realpath(path)
    size = os.path.getsize(real)
    h = hashlib.sha1()
    with open(real, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return real, size, h.hexdigest()


def tracked(video: str, options: pipeline.EditOptions, progress: Optional[gr.Progress] = None) -> _Tracked:
    """The clip's track for previews, made once per uploaded file (:func:`_file_key`), face and range (the first
    preview of a clip waits for it, with a progress bar; later ones find it here)."""
    key = (*_file_key(video), options.face_index, options.start, options.end)
    with _tracks_lock:
        entry = _tracks.pop(key, None) or _Tracked()
        _tracks[key] = entry  # most recently used last
        while len(_tracks) > _TRACKS_KEPT:
            _tracks.popitem(last=False)
    with entry.lock:
        if entry.track is None:
            info = _check_duration(video, options.start, options.end)
            log.info("tracking %s for the controls preview", Path(video).name)
            entry.track = pipeline.disentangle_content(info, face_index=options.face_index,
                                                       progress=_pipeline_progress(progress))
    return entry


def _time_range(start, end):
    start_s, end_s = _number(start, "Start"), _number(end, "End")
    if end_s is not None and end_s <= (start_s or 0.0):
        raise SSERDError(f"End ({end_s:g} s) must be after Start ({start_s or 0:g} s); leave End empty to edit to the "
                         "end of the clip.")
    return start_s, end_s


def preview_controls(video, face_index, start, end, base, base_intensity, at, progress=gr.Progress(), *values):
    """One frame (source | edited) of the controls' edit, the frame nearest ``at`` seconds from Start; and what it
    shows (each control's share of its motion, a saturation note). ``values``: the sliders, in :data:`CONTROLS`
    order (after ``progress``, which Gradio fills). The first preview of a clip tracks its face
    (progress shown); later ones only edit one frame (~40 ms plus decoding a frame not seen yet)."""
    t0 = time.perf_counter()
    try:
        if not video:
            raise SSERDError("Upload a talking-face video first (step ①), or click one of the examples.")
        video = _confined(video, "video")
        start_s, end_s = _time_range(start, end)
        options = controls_options(base, base_intensity, values, face_index, start_s, end_s)
        entry = tracked(video, options, progress)
        track = entry.track
        index = int(np.argmin(np.abs(np.asarray(track.times, np.float64) - float(at or 0.0))))
        shown = pipeline.preview_frame(track, options.target(), index, frame=entry.frame(index))
    except SSERDError as exc:
        raise gr.Error(public_message(exc), duration=None, print_exception=False) from exc
    except FileNotFoundError as exc:  # the upload left Gradio's cache (SSERD_CACHE_SECONDS) since it was tracked
        raise gr.Error("The video is no longer on this Space; upload it again.", duration=None,
                       print_exception=False) from exc
    except Exception as exc:
        log.exception("preview failed")
        raise gr.Error(public_message(f"Unexpected error ({type(exc).__name__}: {exc}). Please report it with the "
                                      "input that caused it."), duration=None, print_exception=False) from exc
    text = [f"**Frame {shown.index}** ({shown.time:.2f} s) · {options.target().describe()}",
            f"Previewed in {time.perf_counter() - t0:.2f} s (the edit itself {1000 * shown.seconds:.0f} ms)."]
    if not track.found[shown.index]:
        text.append("No face is tracked on this frame: it is left as it is. Choose another time.")
    if shown.shown_text():
        text.append(f"**Shown** (share of each control's motion): {shown.shown_text()}")
    if shown.note:
        text.append(f"⚠ {shown.note}")
    duration = float(track.times[-1]) if track.n_frames else 0.0
    return shown.side_by_side(), "\n\n".join(text), gr.update(maximum=round(max(duration, 0.04), 2))


def render_controls(video, face_index, start, end, backend, model, base, base_intensity, progress=gr.Progress(),
                    *values):
    """The whole clip with the controls: :func:`edit` (the one job of every form) with the controls section's
    :class:`EditOptions`; yields (edited video, side-by-side, plot PNG, summary)."""
    try:
        options = controls_options(base, base_intensity, values)
    except SSERDError as exc:
        raise gr.Error(public_message(exc), duration=None, print_exception=False) from exc
    yield from edit(video, "label", options.emotion, options.intensity, None, "", face_index, start, end, backend,
                    model, None, progress=progress, controls=options.controls)


def controls_section(video, face_index, start, end, backend, model) -> None:
    """The page's "Expression controls" section: the 13 sliders grouped by face part, a base emotion (none by
    default), a preview frame that follows the sliders, and a render of the whole clip with them."""
    gr.Markdown("## Expression controls\nMove each part of the face yourself: each control goes from −1 to +1, "
                "**0 = the source**; none moves the jaw or the lip opening (the speech). The preview shows one "
                "frame of the video from step ① (source | edited) when a slider is released; the first preview "
                "tracks the face (a few seconds), the next ones take about a second or less.",
                elem_id="sserd-controls-intro")
    sliders = []
    parts: dict = {}
    for c in CONTROLS:
        parts.setdefault(c.part, []).append(c)
    half = (len(CONTROLS) + 1) // 2  # the face parts in two columns: brows to cheeks, nose to chin
    columns, n = [[], []], 0
    for part, controls in parts.items():
        columns[n >= half].append((part, controls))
        n += len(controls)
    with gr.Row(equal_height=False, elem_id="sserd-controls"):
        for column in columns:
            with gr.Column(scale=1, min_width=260):
                for part, controls in column:
                    with gr.Group():
                        gr.Markdown(f"**{part}**", padding=True)
                        for c in controls:
                            sliders.append(SliderInput(*RANGE, value=0.0, step=0.05, label=c.label,
                                                       info=f"{c.name} ({c.au}); −1: {c.minus}",
                                                       elem_id=f"sserd-control-{c.name}"))
        with gr.Column(scale=2, min_width=320):
            with gr.Row():
                base = gr.Dropdown([NO_BASE, *EMOTIONS], value=NO_BASE, label="Base emotion",
                                   info="The controls add to it", elem_id="sserd-controls-base")
                base_intensity = SliderInput(*OPTIONS.LIMITS["intensity"], value=OPTIONS.intensity, step=0.05,
                                             label="Base intensity")
            at = SliderInput(0.0, max(MAX_SECONDS, 0.04), value=0.0, step=0.04, label="Preview at (s from Start)",
                             elem_id="sserd-controls-at")
            preview = gr.Image(type="numpy", format="png", interactive=False, label="Preview: source | edited",
                               elem_id="sserd-controls-preview")
            note = gr.Markdown(elem_id="sserd-controls-note")
            with gr.Row():
                show = gr.Button("Preview", elem_id="sserd-controls-show")
                render = gr.Button("Render clip", variant="primary", elem_id="sserd-controls-render")
            out = gr.Video(label="Edited video (with the source audio)", interactive=False, height=260,
                           elem_id="sserd-controls-edited")
            with gr.Accordion("Side by side and measurements", open=False):
                out_cmp = gr.Video(label="Side by side: source | edited", interactive=False, height=260)
                out_plot = gr.Image(type="filepath", format="png", interactive=False, show_label=False,
                                    label="Landmark reading of the emotion, and mouth opening, over time")
            out_summary = gr.Markdown(elem_id="sserd-controls-summary")
    inputs = [video, face_index, start, end, base, base_intensity, at, *sliders]
    show.click(preview_controls, inputs, [preview, note, at], api_name="preview_controls",
               trigger_mode="always_last", concurrency_id="preview")
    for widget in (*sliders, at, base_intensity):
        widget.release(preview_controls, inputs, [preview, note, at], api_visibility="private",
                       trigger_mode="always_last", concurrency_id="preview", show_progress="minimal")
    base.input(preview_controls, inputs, [preview, note, at], api_visibility="private", trigger_mode="always_last",
               concurrency_id="preview", show_progress="minimal")
    render.click(render_controls, [video, face_index, start, end, backend, model, base, base_intensity, *sliders],
                 [out, out_cmp, out_plot, out_summary], api_name="render_controls")


# --------------------------------------------------------------------------- the page

INTRO = """
# SSERD: change the emotion of a talking face, keep the speech
Give a video of someone talking and a target emotion (a label, **anyone's** face showing it, or a curve over
time). The face is re-rendered with that emotion while the mouth keeps saying exactly what it said, and the
audio is carried over untouched. The steps below are the node graph of the
[ComfyUI pack](https://github.com/comfyui-sserd/comfyui-sserd): **Load video → Disentangle content →
Extract emotion → Render face → Mux audio**.
"""

CURVE_HELP = ("Keyframes `TIME:EMOTION[@INTENSITY]`, comma-separated; time in seconds from Start, intensity "
              "0–1, linear in between. Emotions: " + ", ".join(EMOTIONS) + ".")


def _examples(rows: list, inputs: list, label: str) -> None:
    """gr.Examples for the rows whose files all exist (the assets ship with the repository)."""
    rows = [[str(x) if isinstance(x, Path) else x for x in row] for row in rows
            if all(x.exists() for x in row if isinstance(x, Path))]
    if rows:
        gr.Examples(rows, inputs=inputs, label=label)


# ---- inputs that say what is wrong with a value Gradio cannot read (its own message is only "the upstream
# Gradio app has raised an exception"): a gr.Error raised while preprocessing reaches the user as it is

class NumberInput(gr.Number):
    """A number field; text or a fraction where a whole number goes is one readable error."""

    def get_block_name(self) -> str:
        return "number"

    def preprocess(self, payload):
        if payload is not None and payload != "":
            if isinstance(payload, bool) or not isinstance(payload, (int, float)):
                try:
                    payload = float(payload)
                except (TypeError, ValueError):
                    raise gr.Error(f"{self.label} must be a number, got {str(payload)[:40]!r}.",
                                   print_exception=False) from None
            if self.precision == 0 and float(payload) != int(float(payload)):
                raise gr.Error(f"{self.label} must be a whole number, got {payload:g}.", print_exception=False)
        elif payload == "":
            payload = None
        try:
            return super().preprocess(payload)
        except gr.Error as exc:  # Gradio's own, e.g. out of bounds: say which field
            raise gr.Error(public_message(f"{self.label}: {exc.message}"), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001
            raise gr.Error(public_message(f"{self.label}: {exc}"), print_exception=False) from None


class SliderInput(gr.Slider):
    def get_block_name(self) -> str:
        return "slider"

    def preprocess(self, payload):
        try:
            return super().preprocess(float(payload) if payload is not None else payload)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001
            raise gr.Error(f"{self.label} must be a number from {self.minimum:g} to {self.maximum:g}, got "
                           f"{str(payload)[:40]!r}.", print_exception=False) from None


class ImageInput(gr.Image):
    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - PIL cannot read it: never show its message (it holds the upload's path)
            raise gr.Error("The reference face is not an image that can be read; upload a photo (PNG, JPEG, WebP, "
                           "...) of a face.", print_exception=False) from None


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="SSERD: speech-preserving emotion editing", delete_cache=(max(60, CACHE_SECONDS // 4),
                                                                                   CACHE_SECONDS)) as demo:
        gr.Markdown(INTRO)
        mode = gr.Textbox("label", visible=False, label="Emotion mode")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                gr.Markdown("### ① Load video")
                video = gr.Video(label="Talking-face video", sources=["upload"], height=300, elem_id="sserd-video")
                with gr.Accordion("Advanced options", open=False):
                    face_index = NumberInput(OPTIONS.face_index, label="Face index", precision=0,
                                             minimum=OPTIONS.LIMITS["face_index"][0],
                                             info="Which face to edit: 0 = the largest, 1 = the next, …")
                    other_faces = gr.Textbox("", label="Other faces", lines=2, elem_id="sserd-other-faces",
                                             placeholder="1=sad@0.6\n2=curve:0:neutral, 2:happy",
                                             info="A different emotion for each other face, one per line: "
                                                  "N=LABEL[@INTENSITY] or N=curve:TEXT (N: its face index). "
                                                  "Each face is tracked and edited on its own; ② is the face "
                                                  "above.")
                    with gr.Row():
                        start = NumberInput(OPTIONS.start, label="Start (s)", minimum=OPTIONS.LIMITS["start"][0],
                                            info="empty = from the beginning")
                        end = NumberInput(OPTIONS.end, label="End (s)", minimum=OPTIONS.LIMITS["end"][0],
                                          info="empty = to the end")
                    backend = gr.Dropdown(BACKENDS, value=OPTIONS.backend, label="Backend",
                                          info="; ".join(BACKEND_INFO[b] for b in BACKENDS))
                    model = gr.Textbox(DEFAULT_NEURAL_MODEL, label="Neural weights", visible=False,
                                       interactive=ALLOW_MODEL_CHOICE,
                                       placeholder="local folder or Hugging Face repo id",
                                       info="Used by the neural backend." if ALLOW_MODEL_CHOICE else
                                       "Fixed by this Space (SSERD_NEURAL_MODEL).")
                    with gr.Accordion("Advanced (neural backend)", open=False, visible=False) as neural_options:
                        dtype = gr.Dropdown(list(validate.DTYPES), value=OPTIONS.dtype or "auto", label="Precision",
                                            info="auto = bf16 on a GPU, fp32 on the CPU; fp16/bf16 halve the memory")
                        batch_size = NumberInput(OPTIONS.batch_size, label="Batch size", precision=0,
                                                 minimum=OPTIONS.LIMITS["batch_size"][0],
                                                 maximum=OPTIONS.LIMITS["batch_size"][1],
                                                 info="frames per network call; empty = automatic (8 on a GPU, 2 on "
                                                      "the CPU)")
                        noise_mode = gr.Dropdown(list(validate.NOISE_MODES), value=OPTIONS.noise_mode,
                                                 label="Decoder noise",
                                                 info="zero = none (steady video); random = fresh each frame (the "
                                                      "official test scripts); const = the model's stored noise")
                        max_face_size = NumberInput(OPTIONS.max_face_size, label="Max face size (px)", precision=0,
                                                    minimum=OPTIONS.LIMITS["max_face_size"][0],
                                                    maximum=OPTIONS.LIMITS["max_face_size"][1],
                                                    info="decode the face only up to this width; empty = the model's "
                                                         "full size (256 is ~10× cheaper)")
                gr.Markdown(f"Clips up to **{MAX_SECONDS:g} s** (use Start/End to pick a part of a longer one).")
            with gr.Column(scale=1, min_width=320):
                gr.Markdown("### ② Target emotion")
                with gr.Tabs():
                    with gr.Tab("Label", id="label") as tab_label:
                        label = gr.Dropdown(list(EMOTIONS), value=OPTIONS.FORM_LABEL, label="Emotion",
                                            elem_id="sserd-label")
                        intensity = SliderInput(*OPTIONS.LIMITS["intensity"], value=OPTIONS.intensity, step=0.05,
                                                label="Intensity")
                        _examples([[SAMPLE_NEUTRAL, "happy", 0.9], [SAMPLE_VIDEO, "sad", 0.9],
                                   [SAMPLE_NEUTRAL, "surprised", 0.8]], [video, label, intensity],
                                  "Examples (sample clips)")
                    with gr.Tab("Reference face", id="reference") as tab_reference:
                        reference = ImageInput(type="filepath", label="Anyone's face showing the emotion",
                                             sources=["upload", "clipboard"], height=240, elem_id="sserd-reference")
                        _examples([[SAMPLE_NEUTRAL, SAMPLE_REFERENCE]], [video, reference],
                                  "Example: another person's smile on Grace Hopper")
                    with gr.Tab("Driving clip", id="clip") as tab_clip:
                        reference_clip = gr.Video(label="A video of anyone's face: each frame of the edit shows the "
                                                        "emotion of the clip at the same time (looping)",
                                                  sources=["upload"], height=240, elem_id="sserd-reference-clip")
                        _examples([[SAMPLE_NEUTRAL, SAMPLE_VIDEO]], [video, reference_clip],
                                  "Example: the astronaut's emotion over time on Grace Hopper")
                    with gr.Tab("Curve over time", id="curve") as tab_curve:
                        curve = gr.Textbox(label="Emotion curve", placeholder="0:neutral, 1.5:happy@0.9, 3:sad@0.7",
                                           info=CURVE_HELP)
                        _examples([[SAMPLE_NEUTRAL, "0:neutral, 1.5:happy@0.9, 4:surprised@0.8, 6:sad@0.8"]],
                                  [video, curve], "Example")
        gr.Markdown("### ③ Edit")
        run = gr.Button("Edit emotion", variant="primary", size="lg", elem_id="sserd-run")
        gr.Markdown("### Result")
        with gr.Row():
            edited = gr.Video(label="Edited video (with the source audio)", interactive=False, height=300,
                              elem_id="sserd-edited")
            comparison = gr.Video(label="Side by side: source | edited", interactive=False, height=300,
                                  elem_id="sserd-comparison")
        gr.Markdown("**Read on every frame's landmarks:** how far the face moved toward each emotion (a "
                    "geometric reading, not a judge's rating: it stays below the intensity asked for, so compare "
                    "the edited curve with the source's) and the mouth opening (is the speech kept?)")
        plot = gr.Image(type="filepath", format="png", interactive=False, show_label=False, elem_id="sserd-plot",
                        label="Landmark reading of the emotion, and mouth opening, over time")
        summary = gr.Markdown(elem_id="sserd-summary")
        controls_section(video, face_index, start, end, backend, model)

        for tab, name in ((tab_label, "label"), (tab_reference, "reference"), (tab_clip, "clip"),
                          (tab_curve, "curve")):
            tab.select(lambda n=name: n, None, mode, queue=False, api_visibility="private")
        backend.change(lambda b: (gr.update(visible=b == "neural"),) * 2, backend, [model, neural_options],
                       queue=False, api_visibility="private")
        run.click(edit, [video, mode, label, intensity, reference, curve, face_index, start, end, backend, model,
                         reference_clip, dtype, batch_size, noise_mode, max_face_size, other_faces],
                  [edited, comparison, plot, summary], api_name="edit")
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def _stop(signum, frame):  # SIGTERM (a Space or a test stopping the app) → a clean shutdown, atexit runs
    raise KeyboardInterrupt


def main() -> None:
    """``python app.py`` (what a Hugging Face Space runs): preload the default weights, build the page, serve."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID`: every thread's stack into the log (a stuck request)
        import faulthandler

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    root = work_root()
    preload_default_model()
    build_demo().launch(max_file_size=MAX_FILE_SIZE, allowed_paths=[str(root)])


if __name__ == "__main__":
    main()
