"""The neural SSERD editor: encode → emotion edit → decode → paste back, batched.

See :mod:`sserd_core.neural` for the whole backend and its pieces."""

from __future__ import annotations

import os
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch

from .. import validate
from ..blend import paste_back
from ..editor import FaceEditor, FaceFrame
from ..emotion import EMOTIONS, SYNC_MODES, EmotionSpec, canonical_label
from ..errors import NoFaceError, SSERDError
from ..models.prototypes import load_prototypes
from .align import align_face, apply_affine, decoded_alignment, face_mask, invert_affine
from .driving import DrivingClip


#: decoder noise at inference (see :class:`NeuralEditor`); the one list, which EditOptions checks too
NOISE_MODES = validate.NOISE_MODES


def _largest_face(rgb: np.ndarray) -> Optional[np.ndarray]:
    from ..face import detect_landmarks

    faces = detect_landmarks(rgb)
    if not faces:
        return None
    return max(faces, key=lambda lm: float(np.ptp(lm[:, 0]) * np.ptp(lm[:, 1])))


def pick_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device, dtype: Optional[Union[str, torch.dtype]] = None) -> torch.dtype:
    """``dtype`` if given (``"fp16"``, ``"bf16"``, ``"fp32"`` or a torch dtype); else (or ``"auto"``) bf16 (or fp16) on
    CUDA, fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None and str(dtype).lower() != "auto":
        names = {"fp16": torch.float16, "float16": torch.float16, "half": torch.float16, "bf16": torch.bfloat16,
                 "bfloat16": torch.bfloat16, "fp32": torch.float32, "float32": torch.float32, "float": torch.float32}
        if str(dtype).lower() not in names:
            raise SSERDError(f"Unknown dtype '{dtype}' (use fp32, fp16 or bf16).")
        return names[str(dtype).lower()]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32



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
                            times: Optional[Sequence[float]] = None, sync: str = SYNC_MODES[0],
                            source_fps: Optional[float] = None, source_frames: Optional[int] = None) -> DrivingClip:
        """Encode a reference clip as a :class:`DrivingClip` (pass it to :meth:`set_driving_clip`).

        ``frames``: ``uint8 [H, W, 3]`` RGB frames, any iterable (consumed once, in batches; only the codes are
        kept). The face is tracked through the clip (the largest face of the first frame with one; after a loss,
        the largest face of the frame); frames without a face hold the nearest frame's code. ``times``: seconds per frame (default ``k / fps``; may be a list that
        fills while ``frames`` is consumed). ``sync`` / ``source_fps`` / ``source_frames``: see
        :class:`DrivingClip`. Raises :class:`~sserd_core.errors.NoFaceError` if no frame shows a face.
        """
        from ..face import FaceTracker

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

    def load_driving_clip(self, path, *, sync: str, source_fps: float, source_frames: int,
                          start: Optional[float] = None, end: Optional[float] = None,
                          max_frames: Optional[int] = None) -> DrivingClip:
        """:meth:`FaceEditor.load_driving_clip`: the clip's frames over its range, encoded by this editor
        (:func:`~sserd_core.neural.driving.load_driving_clip`)."""
        from . import driving

        return driving.load_driving_clip(self, path, sync=sync, source_fps=source_fps, source_frames=source_frames,
                                         start=start, end=end, max_frames=max_frames)

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
    from ..models.hub import resolve_model_dir
    from ..models.sserd import SSERDNet

    folder = resolve_model_dir(path_or_repo_id, cache_dir=cache_dir, revision=revision)
    try:
        net = SSERDNet.from_pretrained(str(folder))
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise SSERDError(f"Cannot load the SSERD model in {folder}: {str(exc).splitlines()[0][:200]}") from None
    return NeuralEditor(net, load_prototypes(folder), device=device, dtype=dtype, batch_size=batch_size,
                        noise_mode=noise_mode, max_face_size=max_face_size)


