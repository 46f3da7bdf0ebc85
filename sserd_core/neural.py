"""The neural SSERD backend: align → encode → emotion edit → decode → un-align → blend.

:func:`load_editor` turns a converted model folder or a Hugging Face repo id into a
:class:`NeuralEditor`, which implements :class:`sserd_core.editor.FaceEditor` (the same
interface as the landmark backend), so ``sserd_core.pipeline.render_face`` /
``edit_video`` stream frames through it batch by batch and keep the source audio.

Per frame (batched): the face is cut out with the geometry the checkpoint was trained with
(:func:`alignment_matrix`: for the official model, the Umeyama fit of the 68 tracked landmarks
onto SSERD's template in a 256 px image followed by the official resize-to-320 + centre-crop-256,
a 1.25× zoom — one similarity, one resampling), encoded to W+ codes and StyleGANEX features,
edited by the emotion module with a reference's codes — per frame from a driving clip
(:class:`DrivingClip`, the paper's protocol), or one reference image for every frame — or a blend
of per-emotion prototype codes (a label or curve — an extension of this project; the paper always
drives with reference frames), decoded at ``output_size`` px (zero decoder noise by default,
``noise_mode``), and pasted back into the untouched frame with
:func:`sserd_core.blend.paste_back` through the inverse transform and a feathered face mask.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from . import geometry
from .blend import feather_mask, paste_back
from .editor import FaceEditor, FaceFrame
from .emotion import EMOTIONS, EmotionSpec, canonical_label
from .errors import NoFaceError, SSERDError
from .models.prototypes import IMAGE_SUFFIXES, PROTOTYPES_FILE, load_prototypes  # noqa: F401  (re-exported)


# ---------------------------------------------------------------- alignment
#: The official input geometry (``datasets/mead_dataset.py``): the face is aligned onto the 68-point
#: template in a 256 px image, then ``Resize(320)`` + ``CenterCrop(256)`` — a 1.25× zoom about the centre.
#: The encoder only ever saw faces framed this way. ``paste_back`` of the official code undoes it
#: (pad to 320, resize to 256, inverse warp). Here both steps are folded into one similarity.
TEMPLATE_SIZE, ZOOM_LOAD = 256, 320


@lru_cache(maxsize=1)
def sserd_template() -> np.ndarray:
    """SSERD's 68-point alignment template ``float64 [68, 2]`` in the official 256 px aligned image (before the zoom)."""
    data = json.loads((Path(__file__).parent / "models" / "sserd_template68.json").read_text())
    return np.asarray(data["points"], np.float64)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` of two ``[2, 3]`` affine maps (``inner`` applied first)."""
    a = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def pixel_scale(k: float) -> np.ndarray:
    """``[2, 3]`` map of pixel coordinates (integer = pixel centre, as cv2) when an image is resized by ``k``:
    ``x' = (x + 0.5)·k − 0.5`` (what ``cv2.resize`` / PIL's resize do to a point)."""
    t = 0.5 * k - 0.5
    return np.array([[k, 0.0, t], [0.0, k, t]])


def crop_zoom_matrix(size: int) -> np.ndarray:
    """``[2, 3]`` template-aligned px → network-input px for a ``size`` px crop: the official resize of the
    aligned image to ``size·320/256`` and centre crop back to ``size`` (at 256: ``x' = 1.25·x − 31.875``)."""
    load = int(round(size * ZOOM_LOAD / TEMPLATE_SIZE))
    top = int(round((load - size) / 2.0))  # torchvision CenterCrop's offset
    m = pixel_scale(load / size)
    m[:, 2] -= top
    return m


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``points`` ``[N, 2]`` through ``m`` ``[2, 3]``."""
    pts = np.asarray(points, np.float64)
    return pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def template_in_crop(size: int) -> np.ndarray:
    """Where the template points lie in the ``size`` px crop the network sees (``float64 [68, 2]``;
    at 256 px they span about x 39–200, y 74–243)."""
    return apply_affine(compose_affine(crop_zoom_matrix(size), pixel_scale(size / TEMPLATE_SIZE)), sserd_template())


def crop_geometry(alignment: str) -> str:
    """A name for how ``alignment`` frames the face (recorded in preprocessing caches, so crops cut another
    way are never mixed into one training set)."""
    if alignment == "sserd-template":
        return f"template{TEMPLATE_SIZE}-resize{ZOOM_LOAD}-centrecrop{TEMPLATE_SIZE}"
    if alignment == "ffhq":
        return "ffhq-quad"
    raise SSERDError(f"Unknown alignment '{alignment}' (use sserd-template or ffhq).")


similarity_fit = geometry.similarity_fit  # Umeyama, defined once in sserd_core.geometry


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square ``[4, 2]`` (top-left, bottom-left, bottom-right, top-right) from 68 landmarks.

    Centred a little below the eyes towards the mouth, sized by the larger of twice the
    eye distance and 1.8× the eye–mouth distance (the FFHQ / pSp / StyleGANEX recipe).
    """
    lm = np.asarray(landmarks, np.float64)
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def alignment_matrix(landmarks: np.ndarray, size: int, alignment: str = "sserd-template") -> np.ndarray:
    """Similarity ``float64 [2, 3]`` frame px → the ``size`` × ``size`` crop the network sees, from 68 landmarks.

    ``"sserd-template"``: the official geometry — the Umeyama fit of the landmarks onto the template
    (in a 256 px image, scaled to ``size``) followed by the official 1.25× zoom (:func:`crop_zoom_matrix`).
    ``"ffhq"``: the FFHQ eye/mouth quad mapped onto the whole crop.
    """
    if alignment == "sserd-template":
        onto_template = similarity_fit(landmarks, apply_affine(pixel_scale(size / TEMPLATE_SIZE), sserd_template()))
        return compose_affine(crop_zoom_matrix(size), onto_template)
    if alignment == "ffhq":
        quad = ffhq_quad(landmarks)
        dst = np.array([[0, 0], [0, size], [size, size], [size, 0]], np.float64)
        return similarity_fit(quad, dst)
    raise SSERDError(f"Unknown alignment '{alignment}' (use sserd-template or ffhq).")


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse ``[2, 3]`` of an invertible affine map ``[2, 3]`` (crop px → frame px for paste-back)."""
    a = np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


def decoded_alignment(m: np.ndarray, input_size: int, side: int) -> np.ndarray:
    """Frame px → px of the decoded face (``side`` px, e.g. 1024) for a crop aligned by ``m`` at ``input_size``;
    its :func:`invert_affine` is the un-align map of paste-back."""
    return compose_affine(pixel_scale(side / input_size), m)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int, alignment: str) -> tuple[np.ndarray, np.ndarray]:
    """``(crop uint8 [size, size, 3], frame→crop [2, 3])`` for one face, in one resampling of the frame."""
    m = alignment_matrix(landmarks, size, alignment)
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA if m[0, 0] ** 2 + m[0, 1] ** 2 < 0.5
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def face_mask(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """Feathered mask ``float32 [size, size]`` over the face: jaw line plus brows lifted to the forehead."""
    lm = np.asarray(landmarks_crop, np.float64)
    jaw, brows = lm[0:17], lm[17:27]
    eye_y = lm[36:48, 1].mean()
    nose_len = max(lm[33, 1] - eye_y, 1.0)
    forehead = brows.copy()
    forehead[:, 1] -= 0.6 * nose_len
    return feather_mask(np.concatenate([jaw, forehead]).astype(np.float32), (size, size), grow=0.02, feather=0.1)


# ---------------------------------------------------------------- device / dtype
def pick_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device, dtype: Optional[Union[str, torch.dtype]] = None) -> torch.dtype:
    """``dtype`` if given (``"fp16"``, ``"bf16"``, ``"fp32"`` or a torch dtype); else bf16 (or fp16) on CUDA, fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        names = {"fp16": torch.float16, "float16": torch.float16, "half": torch.float16, "bf16": torch.bfloat16,
                 "bfloat16": torch.bfloat16, "fp32": torch.float32, "float32": torch.float32, "float": torch.float32}
        if str(dtype).lower() not in names:
            raise SSERDError(f"Unknown dtype '{dtype}' (use fp32, fp16 or bf16).")
        return names[str(dtype).lower()]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# ---------------------------------------------------------------- prototypes
def _largest_face(rgb: np.ndarray) -> Optional[np.ndarray]:
    from .face import detect_landmarks

    faces = detect_landmarks(rgb)
    if not faces:
        return None
    return max(faces, key=lambda lm: float(np.ptp(lm[:, 0]) * np.ptp(lm[:, 1])))


# ---------------------------------------------------------------- driving clip
#: how source frame i picks its driving frame (see :class:`DrivingClip`)
DRIVING_SYNC = ("index", "time", "stretch")
#: decoder noise at inference (see :class:`NeuralEditor`)
NOISE_MODES = ("zero", "random", "const")


class DrivingClip:
    """A reference clip as a per-frame emotion source: source frame *i* is driven by one frame of the clip.

    This is the paper's protocol — every source frame gets a reference frame: cross-ID, the frames of another
    actor's clip of the target emotion; intra-ID, the source clip itself. Build one with
    :meth:`NeuralEditor.encode_driving_clip` (frames in memory) or :func:`load_driving_clip` (a video file).

    - ``codes``: reference codes ``[N, n_styles, d]``, one per clip frame (a frame without a face holds the
      nearest frame's code with a face; ``has_face`` ``bool [N]`` says which had one).
    - ``times``: ``float64 [N]`` seconds of each clip frame from its start; ``period``: the clip's length in s.
    - ``sync`` — how source frame *i* (at time *t*) picks clip frame *k*:
      ``"index"``: ``k = i mod N`` (index-synchronised, looping when the clip is shorter — the paper's cross-ID
      setting with clips of equal length); ``"time"``: the clip frame shown at ``t mod period``
      (time-aligned across frame rates, looping); ``"stretch"``: ``k = floor(i · N / source_frames)``, the whole
      clip spread over the whole source (what the official test set ``MEADTestDataset`` does).
    - ``source_fps``: the source's frame rate, for ``"time"`` when :meth:`codes_for` gets no times;
      ``source_frames``: the source's frame count, needed by ``"stretch"``.
    """

    def __init__(self, codes: torch.Tensor, times: Sequence[float], has_face: Sequence[bool], sync: str = "index",
                 source_fps: Optional[float] = None, source_frames: Optional[int] = None):
        if sync not in DRIVING_SYNC:
            raise SSERDError(f"Unknown driving-clip sync '{sync}' (use {', '.join(DRIVING_SYNC)}).")
        if sync == "stretch" and not source_frames:
            raise SSERDError("A driving clip with sync='stretch' needs source_frames (the source clip's frame count).")
        self.codes = codes
        self.times = np.asarray(times, np.float64)
        self.has_face = np.asarray(has_face, bool)
        if len(self.times) != len(codes) or len(self.has_face) != len(codes) or not len(codes):
            raise SSERDError("A driving clip needs one time and one face flag per frame, and at least one frame.")
        step = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 1.0 / (source_fps or 25.0)
        self.period = float(self.times[-1] - self.times[0]) + step
        self.sync, self.source_fps, self.source_frames = sync, source_fps, source_frames

    def __len__(self) -> int:
        return len(self.codes)

    def index_for(self, frame_index: int, time: Optional[float] = None) -> int:
        """The clip frame that drives source frame ``frame_index`` (at ``time`` s from the source's start)."""
        n = len(self.codes)
        if self.sync == "index":
            return int(frame_index) % n
        if self.sync == "stretch":
            return min(int(frame_index * n / self.source_frames), n - 1)
        if time is None:
            if not self.source_fps:
                raise SSERDError("A driving clip with sync='time' needs the source times or source_fps.")
            time = frame_index / self.source_fps
        t = self.times[0] + float(time) % self.period
        return int(np.clip(np.searchsorted(self.times, t + 1e-9, side="right") - 1, 0, n - 1))

    def codes_for(self, frame_indices: Sequence[int], times: Optional[Sequence[float]] = None) -> torch.Tensor:
        """Reference codes ``[B, n_styles, d]`` for source frames ``frame_indices`` (at ``times``, if given)."""
        ks = [self.index_for(i, None if times is None else times[j]) for j, i in enumerate(frame_indices)]
        return self.codes[torch.as_tensor(ks, dtype=torch.long, device=self.codes.device)]


def load_driving_clip(editor: "NeuralEditor", path: Union[str, os.PathLike], sync: str = "index",
                      source_fps: Optional[float] = None, source_frames: Optional[int] = None,
                      start: Optional[float] = None, end: Optional[float] = None,
                      max_frames: Optional[int] = None) -> DrivingClip:
    """Decode the video at ``path`` (``start``/``end`` s, at most ``max_frames``) and encode it with ``editor``
    (:meth:`NeuralEditor.encode_driving_clip`); streams the frames, keeps only their codes."""
    from .media import iter_frames, probe_video

    info = probe_video(path, start=start, end=end, max_frames=max_frames)
    frames = iter_frames(info, max_frames=max_frames)
    times: list[float] = []

    def rgb_and_time():
        for fr in frames:
            times.append(float(fr.time))
            yield fr.rgb

    return editor.encode_driving_clip(rgb_and_time(), times=times, fps=info.fps_float, sync=sync,
                                      source_fps=source_fps, source_frames=source_frames)


# ---------------------------------------------------------------- editor
class NeuralEditor(FaceEditor):
    """The SSERD network behind :class:`~sserd_core.editor.FaceEditor`.

    - ``net``: an :class:`~sserd_core.models.SSERDNet` (moved to ``device`` / ``dtype``).
    - ``prototypes``: ``{emotion: [n_styles, d]}`` reference codes for label editing.
    - ``batch_size``: frames per :meth:`edit` call (the pipeline batches accordingly).
    - ``noise_mode``: the decoder's per-pixel noise. ``"zero"`` (default): none — StyleGANEX's setting for
      video editing; an unchanged input gives an unchanged output, so no flicker. ``"random"``: fresh noise for
      every frame, what the official SSERD test scripts do (fine detail such as hair and skin texture then
      shimmers from frame to frame). ``"const"``: the generator's stored noise maps (fixed texture, no flicker).
    - ``max_face_size``: decode only up to the first level at least this many px wide
      (e.g. 256 or 512 instead of the official 1024) — much faster on CPU, and enough when
      the face covers fewer pixels than that in the video. ``None``: full ``output_size``.

    Emotion sources, in order of precedence:

    - a driving clip (:meth:`set_driving_clip`): per source frame, the code of the clip frame that
      :class:`DrivingClip` picks for it — the paper's protocol;
    - a reference image (``EmotionSpec.reference_rgb``): aligned and encoded once in :meth:`prepare`, drives
      every frame;
    - label / curve targets (emotion vectors ``[7]``): reference codes ``Σ_k v_k · prototype_k`` — an extension
      of this project (the paper has no labels), needing prototypes (``sserd prototypes``).
    """

    name = "neural"

    def __init__(self, net, prototypes: Optional[dict] = None, device=None, dtype=None,
                 batch_size: Optional[int] = None, noise_mode: str = "zero", max_face_size: Optional[int] = None):
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        # nn.Module.to: diffusers' ModelMixin.to warns about fp32-kept modules this model does not have
        self.net = torch.nn.Module.to(net, device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        self.input_size = int(net.config.input_size)
        self.output_size = int(net.output_size)
        self.alignment = str(net.config.alignment)
        shape = (net.n_styles, int(net.config.style_dim))
        self.prototypes = {}
        for label, code in (prototypes or {}).items():
            if tuple(code.shape) != shape:
                raise SSERDError(f"Emotion prototype '{label}' has shape {list(code.shape)}, the model needs "
                                 f"{list(shape)}; recompute them with `sserd prototypes`.")
            self.prototypes[canonical_label(label)] = code.to(self.device, self.dtype)
        self.batch_size = int(batch_size or (8 if self.device.type == "cuda" else 2))
        if noise_mode not in NOISE_MODES:
            raise SSERDError(f"Unknown noise mode '{noise_mode}' (use {', '.join(NOISE_MODES)}).")
        self.noise_mode = noise_mode
        self.max_face_size = max_face_size
        self._reference_code: Optional[torch.Tensor] = None
        self._driving: Optional[DrivingClip] = None
        self._next_frame = 0  # source frames handed to edit() since prepare() (the driving clip's position)

    # -- helpers
    def _to_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2)
        return (x.to(self.dtype) / 127.5 - 1.0).contiguous()

    @torch.inference_mode()
    def encode_reference(self, rgb: np.ndarray, landmarks: Optional[np.ndarray] = None) -> torch.Tensor:
        """Reference code ``[n_styles, d]`` of the (largest) face in ``rgb``; ``landmarks`` ``[68, 2]`` skip detection."""
        if landmarks is None:
            landmarks = _largest_face(rgb)
            if landmarks is None:
                raise NoFaceError("No face found in the reference image; give one with a clearly visible face.")
        crop, _ = align_face(np.ascontiguousarray(rgb[..., :3]), landmarks, self.input_size, self.alignment)
        return self.net.encode_reference(self._to_tensor([crop]))[0]

    @torch.inference_mode()
    def encode_driving_clip(self, frames: Iterable[np.ndarray], *, fps: float = 25.0,
                            times: Optional[Sequence[float]] = None, sync: str = "index",
                            source_fps: Optional[float] = None, source_frames: Optional[int] = None) -> DrivingClip:
        """Encode a reference clip as a :class:`DrivingClip` (pass it to :meth:`set_driving_clip`).

        ``frames``: ``uint8 [H, W, 3]`` RGB frames, any iterable (consumed once, in batches; only the codes are
        kept). The face is tracked through the clip (the largest face of the first frame with one; after a loss,
        the largest face of the frame); frames without a face hold the nearest frame's code. ``times``: seconds per frame (default ``k / fps``; may be a list that
        fills while ``frames`` is consumed). ``sync`` / ``source_fps`` / ``source_frames``: see
        :class:`DrivingClip`. Raises :class:`~sserd_core.errors.NoFaceError` if no frame shows a face.
        """
        from .face import FaceTracker

        tracker = FaceTracker(float(fps), smooth=False)
        codes, has_face, crops = [], [], []

        def flush():
            if crops:
                codes.append(self.net.encode_reference(self._to_tensor(crops)))
                crops.clear()

        n = 0
        for rgb in frames:
            rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
            lm = tracker.update(rgb)
            if lm is None:  # lost (e.g. a cut): look at the whole frame again
                lm = _largest_face(rgb)
            has_face.append(lm is not None)
            if lm is not None:
                crops.append(align_face(rgb, lm, self.input_size, self.alignment)[0])
                if len(crops) >= self.batch_size:
                    flush()
            n += 1
        flush()
        if not codes:
            raise NoFaceError("No face found in any frame of the driving clip; give a clip with a clearly visible face.")
        found = torch.cat(codes)
        with_face = np.flatnonzero(has_face)
        # each frame takes the code of the nearest frame with a face (itself where it has one)
        nearest = with_face[np.abs(np.arange(n)[:, None] - with_face[None]).argmin(1)]
        order = np.searchsorted(with_face, nearest)
        times = [k / float(fps) for k in range(n)] if times is None else list(times)[:n]
        return DrivingClip(found[torch.as_tensor(order, device=found.device)], times, has_face, sync=sync,
                           source_fps=source_fps, source_frames=source_frames)

    def set_driving_clip(self, clip: Optional[DrivingClip]) -> None:
        """Drive every following edit per frame from ``clip`` (None: back to the reference image / label).

        Source frame indices count the frames handed to :meth:`edit` since :meth:`prepare` (the pipeline hands
        every frame once, in order), unless :meth:`edit` is given ``frame_indices`` explicitly."""
        if clip is not None and clip.codes.shape[1:] != (self.net.n_styles, int(self.net.config.style_dim)):
            raise SSERDError(f"The driving clip's codes have shape {list(clip.codes.shape[1:])}; this model needs "
                             f"{[self.net.n_styles, int(self.net.config.style_dim)]} (encode it with this editor).")
        self._driving = clip
        self._next_frame = 0

    def prepare(self, emotion: EmotionSpec) -> None:
        """Encode the reference face, or check the prototypes the label / curve needs (nothing to do when a
        driving clip is set: it is the emotion source)."""
        self._reference_code = None
        self._next_frame = 0
        if self._driving is not None:
            return
        if emotion.reference_rgb is not None:
            self._reference_code = self.encode_reference(emotion.reference_rgb)
            return
        needed = sorted({EMOTIONS[i] for _, v in emotion.keyframes for i in np.flatnonzero(np.asarray(v) > 1e-3)}
                        or {"neutral"})
        missing = [e for e in needed if e not in self.prototypes]
        if missing:
            have = ", ".join(sorted(self.prototypes)) or "none"
            raise SSERDError(f"This neural model has no emotion prototype for {', '.join(missing)} (it has: {have}); "
                             f"compute them with `sserd prototypes REF_DIR MODEL_DIR` or give a reference image.")

    def _reference_codes(self, targets: Sequence[np.ndarray]) -> torch.Tensor:
        if self._reference_code is not None:
            return self._reference_code.unsqueeze(0).expand(len(targets), -1, -1)
        labels = [e for e in EMOTIONS if e in self.prototypes]
        protos = torch.stack([self.prototypes[e] for e in labels])  # [K, L, d]
        w = np.stack([[float(t[EMOTIONS.index(e)]) for e in labels] for t in targets]).astype(np.float32)
        w /= np.maximum(w.sum(1, keepdims=True), 1e-6)
        return torch.einsum("bk,kld->bld", torch.from_numpy(w).to(self.device, self.dtype), protos)

    @torch.inference_mode()
    def edit_crops(self, crops: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                   reference_codes: Optional[torch.Tensor] = None) -> np.ndarray:
        """Edit aligned crops ``uint8 [input_size, input_size, 3]`` → ``uint8 [B, S, S, 3]``.

        ``reference_codes`` ``[B, n_styles, d]``: the emotion source per crop (default: the reference image's
        code, or the prototype blend of ``targets``). ``S`` is ``output_size``, or less with ``max_face_size``.
        """
        x = self._to_tensor(crops)
        _, codes, first_layer, skips = self.net.encode(x)
        refs = self._reference_codes(targets) if reference_codes is None else reference_codes.to(self.device, self.dtype)
        edit = self.net.emotion(codes, refs)
        img = self.net.decode(codes, first_layer, skips, edit, noise_mode=self.noise_mode, max_side=self.max_face_size)
        img = ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return img.permute(0, 2, 3, 1).cpu().numpy()

    def edit(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[FaceFrame]],
             targets: Sequence[np.ndarray], frame_indices: Optional[Sequence[int]] = None,
             times: Optional[Sequence[float]] = None) -> list[np.ndarray]:
        """:meth:`FaceEditor.edit`; with a driving clip, ``frame_indices`` / ``times`` (source frame index / seconds
        per frame) place the frames in the source — default: consecutive after the frames already edited."""
        out = [np.asarray(f) for f in frames]
        if frame_indices is None:
            frame_indices = range(self._next_frame, self._next_frame + len(frames))
        frame_indices = list(frame_indices)
        self._next_frame = max(frame_indices, default=self._next_frame - 1) + 1
        todo = [i for i, f in enumerate(faces) if f is not None]
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start:start + self.batch_size]
            crops, mats = [], []
            for i in idx:
                crop, m = align_face(out[i], faces[i].landmarks, self.input_size, self.alignment)
                crops.append(crop)
                mats.append(m)
            refs = None
            if self._driving is not None:
                refs = self._driving.codes_for([frame_indices[i] for i in idx],
                                               None if times is None else [times[i] for i in idx])
            edited = self.edit_crops(crops, [targets[i] for i in idx], refs)
            side = edited.shape[1]
            for i, m, face_img in zip(idx, mats, edited):
                m_out = decoded_alignment(m, self.input_size, side)
                mask = face_mask(apply_affine(m_out, faces[i].landmarks), side)
                out[i] = paste_back(out[i], face_img, invert_affine(m_out), mask)
        return out


def load_editor(path_or_repo_id: Union[str, os.PathLike], device=None, dtype=None, *,
                batch_size: Optional[int] = None, max_face_size: Optional[int] = None, noise_mode: str = "zero",
                cache_dir=None, revision: Optional[str] = None) -> NeuralEditor:
    """Load the neural SSERD backend as a :class:`~sserd_core.editor.FaceEditor`.

    ``path_or_repo_id``: a model folder written by ``sserd convert`` (``config.json`` +
    ``diffusion_pytorch_model.safetensors``, optionally ``emotion_prototypes.safetensors``)
    or a Hugging Face repo id ``owner/name`` holding one (downloaded once into the HF cache;
    with ``HF_HUB_OFFLINE=1`` only the cache is used). ``device``: torch device or name,
    default CUDA if available else CPU. ``dtype``: ``torch.float16`` / ``"fp16"``,
    ``"bf16"``, ``"fp32"``; default bf16 (fp16 where bf16 is unsupported) on CUDA, fp32 on CPU.
    ``batch_size``: frames per network call (default 8 on CUDA, 2 on CPU).
    ``max_face_size``: decode the face only up to this many px (default: the model's full
    ``output_size``, 1024 for the official model); 256 is ~10× cheaper on CPU.
    ``noise_mode``: decoder noise, ``"zero"`` (default: no flicker, as StyleGANEX's video editing),
    ``"random"`` (the official test scripts' fresh noise per frame) or ``"const"`` (see :class:`NeuralEditor`).

    Returns a ready :class:`NeuralEditor` — pass it as ``editor=`` to
    :func:`sserd_core.pipeline.edit_video` / ``render_face``. Label or curve targets need
    prototypes in the folder (``sserd prototypes``); a reference image works without.

    Raises :class:`~sserd_core.errors.SSERDError` (one line, actionable) when the path is
    not a model folder, an official ``.pt`` was given unconverted, the repo id is not
    cached while offline, or the weights do not fit the config.
    """
    from .models.hub import resolve_model_dir
    from .models.sserd import SSERDNet

    folder = resolve_model_dir(path_or_repo_id, cache_dir=cache_dir, revision=revision)
    try:
        net = SSERDNet.from_pretrained(str(folder))
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise SSERDError(f"Cannot load the SSERD model in {folder}: {str(exc).splitlines()[0][:200]}") from None
    return NeuralEditor(net, load_prototypes(folder), device=device, dtype=dtype, batch_size=batch_size,
                        noise_mode=noise_mode, max_face_size=max_face_size)


def compute_prototypes(ref_dir: Union[str, os.PathLike], model_dir: Union[str, os.PathLike], device=None,
                       dtype=None) -> dict[str, int]:
    """Mean reference code per emotion from ``ref_dir/<emotion>/*`` images → ``model_dir/emotion_prototypes.safetensors``.

    Existing prototypes for emotions not in ``ref_dir`` are kept. Returns
    ``{emotion: number of images with a face used}``. ``model_dir`` must be a local folder.
    The averaging and the file live in :func:`sserd_core.models.prototypes.compute_prototypes`;
    this supplies the encoder: the largest face of each image, aligned and encoded by the
    model's reference encoder.
    """
    from .media import read_image
    from .models import prototypes
    from .models.sserd import SSERDNet

    def make_encoder(folder: Path):
        editor = NeuralEditor(SSERDNet.from_pretrained(str(folder)), device=device, dtype=dtype)

        def encode(path: Path) -> Optional[torch.Tensor]:
            rgb = read_image(path)
            lm = _largest_face(rgb)
            return None if lm is None else editor.encode_reference(rgb, lm)

        return encode

    return prototypes.compute_prototypes(ref_dir, model_dir, make_encoder)
