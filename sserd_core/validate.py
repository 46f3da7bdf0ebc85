"""Checks that run before any work: every argument of a job, in the CLI and the Python API alike.

Each check raises :class:`~sserd_core.errors.SSERDError` with one sentence that says what
to do, so a bad option costs milliseconds, not a tracking pass, and never a traceback.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Optional, Union

from .errors import SSERDError
from .media import SUPPORTED_OUTPUTS as VIDEO_OUTPUTS  # the containers the writer can produce

PathLike = Union[str, os.PathLike]

PLOT_OUTPUTS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")

#: rough upper bound of H.264 CRF 18 output size, bytes per pixel per frame (measured ~0.03)
_BYTES_PER_PIXEL = 0.1
#: frames of the video size held at once in the pipeline besides the frame workers' (encode queue, copies)
_FRAMES_IN_FLIGHT = 8


def number(name: str, value, *, lo: Optional[float] = None, hi: Optional[float] = None,
           allow_none: bool = False) -> Optional[float]:
    """``value`` as a finite float within [lo, hi] (``None`` passes when ``allow_none``)."""
    if value is None:
        if allow_none:
            return None
        raise SSERDError(f"{name} is missing; give a number.")
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise SSERDError(f"{name} must be a number, got {value!r}.")
    try:
        v = float(value)
    except ValueError:
        raise SSERDError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise SSERDError(f"{name} must be a finite number, got {value!r}.")
    if lo is not None and hi is not None and not lo <= v <= hi:
        raise SSERDError(f"{name} must be between {lo:g} and {hi:g}, got {v:g}.")
    if lo is not None and v < lo:
        raise SSERDError(f"{name} must be at least {lo:g}, got {v:g}.")
    if hi is not None and v > hi:
        raise SSERDError(f"{name} must be at most {hi:g}, got {v:g}.")
    return v


def count(name: str, value, *, lo: int = 0, allow_none: bool = False) -> Optional[int]:
    """``value`` as a whole number ≥ ``lo``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise SSERDError(f"{name} must be a whole number, got {value!r}.")
    if value < lo:
        raise SSERDError(f"{name} must be {lo} or more, got {value}.")
    return int(value)


def time_range(start, end) -> tuple[Optional[float], Optional[float]]:
    """Start/end seconds: finite, start ≥ 0, end after start (None = beginning / end of the clip)."""
    s = number("The start time (seconds)", start, lo=0.0, allow_none=True)
    e = number("The end time (seconds)", end, lo=0.0, allow_none=True)
    if e is not None and e <= (s or 0.0):
        raise SSERDError(f"The end time ({e:g} s) must be after the start time ({s or 0:g} s).")
    return s, e


def face_index(value) -> int:
    return count("The face index (0 = largest face)", value, lo=0)


def output_file(path: PathLike, kinds: tuple = VIDEO_OUTPUTS, what: str = "Output") -> Path:
    """An output path with a writable extension, not a folder, in a folder that can be written."""
    from .outputs import check_writable_folder

    if path is None or str(path) == "":
        raise SSERDError(f"{what} path is missing.")
    p = Path(path)
    if p.is_dir():
        raise SSERDError(f"{what} path {p} is a folder; give a file name.")
    if p.suffix.lower() not in kinds:
        raise SSERDError(f"{what} must end in one of {', '.join(kinds)}; got '{p.name}'.")
    check_writable_folder(p.parent if str(p.parent) else Path("."))
    return p


def output_folder(path: PathLike, what: str = "Preview folder") -> Path:
    from .outputs import check_writable_folder

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise SSERDError(f"{what} {p} exists and is not a folder.")
    check_writable_folder(p.parent if str(p.parent) else Path("."))
    return p


def distinct_paths(*, reads: Optional[dict] = None, preview_files: tuple = (), **paths) -> None:
    """No output may be a file the job reads, and no two outputs may be one file.

    ``paths``: ``input=`` (the source video, read) and the outputs by name (``output=``, ``side_by_side=``,
    ``plot=``, ``preview_folder=``); ``reads``: the other paths the job reads, role → path (``"the
    reference"``, ``"the model folder"``); ``preview_files``: the names the preview frames will have in
    ``preview_folder``. Paths are compared by identity (symlinks, ``..`` and hard links see through), a model
    folder receives no output anywhere inside it, and a preview frame never replaces a file already there.
    """
    from .outputs import Input, real

    inputs = []
    if paths.get("input") is not None and not _is_array(paths["input"]):
        inputs.append(Input(paths["input"], "the input video"))
    for role, p in (reads or {}).items():
        if p is not None and not _is_array(p) and str(p) != "" and Path(p).exists():
            inputs.append(Input(p, role))
    outputs = [(name, p) for name, p in paths.items() if name != "input" and p is not None]
    folder = paths.get("preview_folder")
    if folder is not None:
        outputs += [(f"preview frame {n}", Path(folder) / n) for n in preview_files]
    seen: dict = {}
    for name, p in outputs:
        what = name.replace("_", " ")
        for inp in inputs:
            if inp.clashes_with(p):
                if inp.role == "the input video" and inp.real == real(p):
                    raise SSERDError(f"The {what} path {p} is the input file; choose another path "
                                     "(the input is never modified).")
                raise SSERDError(inp.refusal(p, f"The {what} path"))
        key = real(p)
        if key in seen:
            raise SSERDError(f"The {seen[key]} and the {what} have the same path {p}; give each its own path.")
        seen[key] = what
    if folder is not None and Path(folder).is_dir():
        there = [n for n in preview_files if os.path.lexists(Path(folder) / n)]
        if there:
            raise SSERDError(f"{Path(folder) / there[0]} already exists (and {len(there) - 1} more preview file(s)); "
                             "preview frames never replace a file: move them away, or choose another output name.")


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


#: the most frame workers a job may ask for: each holds frames in flight (see memory_estimate), and more
#: workers than cores only contend for them
MAX_THREADS = 16
#: the landmark warp's flow grid, pixels between grid points
MAX_GRID_STEP = 256
#: preview frames one job may save
MAX_PREVIEWS = 1000
#: the neural backend's compute precisions (``auto``: bf16 on CUDA, fp16 where bf16 is unsupported, fp32 elsewhere)
DTYPES = ("auto", "fp32", "bf16", "fp16")
#: the neural decoder's noise: none (the default: no flicker), fresh per frame (the official test scripts), or stored
NOISE_MODES = ("zero", "random", "const")
#: frames per neural network call: each holds its activations at once (32 at 1024 px is ~40 GB on a GPU)
MAX_BATCH_SIZE = 256
#: the largest face the neural decoder may be asked for, px (the official model decodes at 1024)
MAX_FACE_SIZE = 4096
_DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}


def flag(name: str, value) -> bool:
    """A yes/no option: ``True`` or ``False`` (or 0 / 1), nothing else (the text ``"no"`` is not False)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise SSERDError(f"{name} must be True or False, got {value!r}.")


def text(name: str, value, allow_none: bool = True) -> Optional[str]:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise SSERDError(f"{name} must be text, got {value!r}.")
    return value


def reference(value):
    """A reference: None, a path (text or path object), or an RGB/grey image array of real numbers."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        import numpy as np

        arr = np.asarray(value)
        if arr.dtype.kind not in "uifb":
            raise SSERDError(f"A reference image array must hold real numbers (uint8 0..255 or float 0..1), got "
                             f"dtype {arr.dtype}.")
        return value
    if type(value).__name__ == "VideoInfo":
        return value
    raise SSERDError(f"The reference must be an image or video path, or an RGB image array [H, W, 3]; got "
                     f"{type(value).__name__}.")


def edit_options(o) -> dict:
    """Check every field of an :class:`~sserd_core.pipeline.EditOptions`; returns the normalised values."""
    from .emotion import canonical_label, check_sync

    out = {}
    out["emotion"] = text("The emotion label", o.emotion)
    if out["emotion"] is not None and out["emotion"].strip():
        canonical_label(out["emotion"])  # an unknown label: one line that lists the known ones
    out["intensity"] = number("The intensity", o.intensity, lo=0.0, hi=1.0)
    out["reference"] = reference(o.reference)
    out["curve"] = text("The curve", o.curve)
    given = [x for x in (o.emotion, o.reference, o.curve) if x is not None and not (isinstance(x, str) and x == "")]
    if len(given) > 1:
        raise SSERDError("Give only one of: an emotion label, a reference face, or a curve.")
    out["controls"] = controls(o.controls)
    check_sync(o.sync)
    out["face_index"] = face_index(o.face_index)
    out["start"], out["end"] = time_range(o.start, o.end)
    if not isinstance(o.backend, (str, os.PathLike)) or str(o.backend).strip() == "":
        raise SSERDError(f"The backend must be 'landmark' or a model folder / repo id, got {o.backend!r}.")
    if o.device is not None:
        d = text("The device", o.device).strip().lower()
        kind, _, idx = d.partition(":")
        if d and (kind not in ("cpu", "cuda", "mps", "xpu") or (idx and not idx.isdigit())):
            raise SSERDError(f"Unknown device '{o.device}'. Use cpu, cuda, cuda:N (a GPU index) or mps.")
    g = count("grid_step", o.grid_step, lo=1)
    if g > MAX_GRID_STEP:
        raise SSERDError(f"grid_step must be between 1 and {MAX_GRID_STEP} pixels, got {g}.")
    out["grid_step"] = g
    if o.interpolation not in ("bicubic", "bilinear"):
        raise SSERDError(f"interpolation must be 'bicubic' or 'bilinear', got {o.interpolation!r}.")
    out["threads"] = threads(o.threads)
    n = count("The number of preview frames", o.preview_n, lo=0)
    if n > MAX_PREVIEWS:
        raise SSERDError(f"At most {MAX_PREVIEWS} preview frames, got {n}.")
    out["preview_n"] = n
    out["measure"] = flag("measure", o.measure)
    out["strict"] = flag("strict", o.strict)
    out.update(neural_options(o.dtype, o.batch_size, o.noise_mode, o.max_face_size))
    return out


def controls(value) -> Optional[str]:
    """Expression controls (text or a mapping ``{name: value}``) checked and written as the text every front-end
    shows (:func:`sserd_core.controls.format_controls`); None when none is given."""
    from .controls import controls_given, format_controls, parse_controls

    if not controls_given(value):
        return None
    return format_controls(parse_controls(value))


def threads(value, name: str = "threads") -> Optional[int]:
    """Frame workers: None (the default) or 1..:data:`MAX_THREADS`."""
    n = count(name, value, lo=1, allow_none=True)
    if n is not None and n > MAX_THREADS:
        raise SSERDError(f"{name} must be between 1 and {MAX_THREADS}, got {n}; more workers than cores only use "
                         "more memory.")
    return n


def neural_options(dtype, batch_size, noise_mode, max_face_size) -> dict:
    """The neural backend's options, normalised: ``dtype`` one of :data:`DTYPES` (``auto`` → None), ``batch_size``
    1..:data:`MAX_BATCH_SIZE` and ``max_face_size`` 1..:data:`MAX_FACE_SIZE` px (0 or None: automatic → None),
    ``noise_mode`` one of :data:`NOISE_MODES`."""
    if dtype is not None:
        name = str(dtype).strip().lower()
        name = _DTYPE_ALIASES.get(name.removeprefix("torch."), name.removeprefix("torch."))
        if name not in DTYPES:
            raise SSERDError(f"Unknown dtype {dtype!r}; use {', '.join(DTYPES)} (auto: bf16 on a GPU, fp32 on the CPU).")
        dtype = None if name == "auto" else name
    b = count("The batch size (frames per network call)", batch_size, lo=-2**63, allow_none=True)
    if b is not None and not 0 <= b <= MAX_BATCH_SIZE:
        raise SSERDError(f"The batch size must be between 1 and {MAX_BATCH_SIZE} frames (0: automatic), got {b}.")
    if noise_mode not in NOISE_MODES:
        raise SSERDError(f"Unknown noise mode {noise_mode!r}; use {', '.join(NOISE_MODES)}.")
    m = count("The maximum face size (px)", max_face_size, lo=-2**63, allow_none=True)
    if m is not None and not 0 <= m <= MAX_FACE_SIZE:
        raise SSERDError(f"The maximum face size must be between 1 and {MAX_FACE_SIZE} px (0: the model's full "
                         f"size), got {m}.")
    return {"dtype": dtype, "batch_size": b or None, "noise_mode": noise_mode, "max_face_size": m or None}


def device(name: Optional[str]) -> Optional[str]:
    """A torch device string that exists on this machine (None = the backend's default)."""
    if name is None or str(name).strip() == "":
        return None
    d = str(name).strip().lower()
    kind, _, idx = d.partition(":")
    if kind not in ("cpu", "cuda", "mps", "xpu") or (idx and not idx.isdigit()):
        raise SSERDError(f"Unknown device '{name}'. Use cpu, cuda, cuda:N (a GPU index) or mps.")
    if kind == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        raise SSERDError(f"Device '{name}' needs torch, which is not installed here: pip install 'comfyui-sserd[gpu]' "
                         "(with the torch build for your GPU), or use --device cpu.") from None

    if kind == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise SSERDError(f"Device '{name}' asked for, but torch sees no CUDA GPU here; use --device cpu "
                             "(or install a CUDA build of torch on a machine with a GPU).")
        if idx and int(idx) >= n:
            raise SSERDError(f"Device '{name}' does not exist: this machine has {n} CUDA GPU(s) (cuda:0..cuda:{n - 1}).")
    elif kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SSERDError(f"Device '{name}' asked for, but Apple's MPS is not available here; use --device cpu.")
    elif kind == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise SSERDError(f"Device '{name}' asked for, but no Intel XPU is available here; use --device cpu.")
    return d


def output_bytes(width: int, height: int, n_frames: int, n_videos: int = 1) -> int:
    """A generous estimate of the bytes the encoded outputs need (plus the intermediates)."""
    per_video = width * height * max(n_frames, 1) * _BYTES_PER_PIXEL
    return int(per_video * n_videos * 2 + 16 * 2**20)  # x2: the video-only intermediate beside each output


def available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations, None if unknown: the least of the system's MemAvailable,
    what the address-space limit (``ulimit -v``) leaves beyond what the process already maps, and what its
    cgroup's memory.max leaves (a container's limit)."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status") as f:
                vm = next((int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:")), 0)
            found.append(max(0, soft - vm))
    except (ImportError, OSError, ValueError):
        pass
    try:
        cg = Path("/sys/fs/cgroup")
        limit, used = (cg / "memory.max").read_text().strip(), (cg / "memory.current").read_text().strip()
        if limit != "max":
            found.append(max(0, int(limit) - int(used)))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def out_of_memory(exc: BaseException) -> bool:
    """True for an error that means an allocation failed: Python's and NumPy's MemoryError, FFmpeg's ENOMEM,
    OpenCV's "Insufficient memory" / "Failed to allocate"."""
    if isinstance(exc, MemoryError):  # av.error.MemoryError and NumPy's _ArrayMemoryError are MemoryErrors
        return True
    if _ffmpeg_external(exc):  # how x264 and other codecs inside FFmpeg report a failed malloc
        return True
    text = str(exc).lower()
    if type(exc).__name__ == "error" and type(exc).__module__.startswith("cv2"):
        return "insufficient memory" in text or "failed to allocate" in text or "out of memory" in text
    return False


def _ffmpeg_external(exc: BaseException) -> bool:
    return type(exc).__name__ == "ExternalError" and type(exc).__module__.startswith("av")


def memory_message(what: str = "", need: Optional[int] = None, exc: Optional[BaseException] = None) -> str:
    """The one line for an allocation that failed (``need``: the estimate of what the job needs, bytes)."""
    est = f" (the job needs about {need / 2**30:.1f} GiB)" if need else ""
    head = (f"The video codec failed{' ' + what if what else ''}{est}: FFmpeg reports an error in an external "
            "library, which is how a codec reports memory running out" if exc is not None and _ffmpeg_external(exc)
            else f"Out of memory{' ' + what if what else ''}{est}")
    return (f"{head}; free memory or raise the limit (ulimit -v, the container's), use fewer --threads, or scale "
            "the video down first (e.g. to 1920 px wide).")


#: frames each frame worker adds to those in flight: 2 queued edits of a source frame, its planes and the
#: edit, and 2 frames of decode-ahead (4 workers: 24 frames in all; 1000 workers would be ~4000 frames,
#: 10 GiB at 720p: hence MAX_THREADS)
_FRAMES_PER_WORKER = 4


def memory_estimate(width: int, height: int, threads: int = 4) -> int:
    """Peak bytes of frame buffers the pipeline holds for one clip of this frame size with ``threads`` frame
    workers (the clip's length does not matter)."""
    return int(width * height * 3 * (_FRAMES_IN_FLIGHT + _FRAMES_PER_WORKER * max(1, threads)) + 400 * 2**20)


def frame_memory(width: int, height: int, limit: Optional[int] = None, threads: int = 4) -> int:
    """Refuse frame sizes whose buffers would not fit in memory; return the estimate in bytes."""
    need = memory_estimate(width, height, threads)
    limit = available_memory() if limit is None else limit
    if limit is not None and need > limit:
        raise SSERDError(f"Frames of {width}x{height} need about {need / 2**30:.1f} GiB of memory while editing "
                         f"with {threads} frame worker(s), but only {limit / 2**30:.1f} GiB are available; scale the "
                         "video down first (e.g. to 3840 px wide), use fewer --threads, or free memory.")
    return need
