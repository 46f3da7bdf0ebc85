"""Loaders for the paper's exact metric networks (weights are given by the user, never downloaded by tests).

No wheel ships these weights, so each loader takes a local file / folder or a Hugging
Face Hub id (``org/repo`` or ``org/repo:filename``; downloaded with ``huggingface_hub``
only when the user asks for it). Without weights the evaluation reports the clearly
named offline proxies instead (see :mod:`sserd_core.metrics`), never these names.

- **FAD** — ArcFace embeddings of faces aligned to the standard 112×112 ArcFace 5-point
  template. Accepts an ONNX model (e.g. insightface's ``w600k_r50.onnx``, run with
  OpenCV's DNN module) or a TorchScript module mapping ``float [B, 3, 112, 112]`` RGB in
  -1..1 to ``[B, D]`` embeddings.
- **LSE-D** — SyncNet (Chung & Zisserman 2016). Accepts the official ``syncnet_v2.model``
  state dict (loaded into :class:`SyncNet`, a re-implementation of the published layer
  layout) or a TorchScript module with ``forward_lip`` / ``forward_aud``. Video: 5-frame
  windows of 224×224 BGR face crops, values 0..255; audio: 13 MFCCs at 100 Hz of 16 kHz
  mono int16 samples (``python_speech_features`` defaults, re-implemented in
  :func:`mfcc`); LSE-D = mean AV feature distance at the best offset within ±``vshift``
  frames (the paper: ±10).
- **CSIM** — an emotion-feature network: ONNX or TorchScript mapping an RGB face crop
  (``--emotion-net-size``, default 224, values 0..1, ImageNet-normalised) to a feature
  vector ``[B, D]``; CSIM = cosine similarity of generated vs reference features.

Not validated against the official weights in this repository (they cannot be
downloaded here); the layer layout, preprocessing and offset search follow the
published SyncNet code so that the official state dict loads with strict key checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ..errors import SSERDError
from ..geometry import similarity_fit

ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def resolve_weights(spec: Union[str, os.PathLike, None], what: str, flag: str,
                    default_names: Sequence[str] = ()) -> Path:
    """A weights file from a local path, a folder holding one of ``default_names``, or a Hub id (``org/repo[:file]``)."""
    if spec is None or str(spec).strip() == "":
        raise SSERDError(f"{what} needs its network weights: pass {flag} PATH_OR_HUB_ID "
                         f"(no {what} weights ship with any pip package).")
    p = Path(str(spec)).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        for name in default_names:
            if (p / name).is_file():
                return p / name
        raise SSERDError(f"{flag} {spec}: no weights file found in that folder (looked for {', '.join(default_names)}).")
    text = str(spec)
    if text.count("/") >= 1 and not text.startswith((".", "/", "~")):
        repo, _, filename = text.partition(":")
        names = [filename] if filename else list(default_names)
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:  # pragma: no cover - dependency of the neural extra
            raise SSERDError(f"{flag} {spec}: install huggingface_hub to load weights from the Hub.") from None
        last = None
        for name in names:
            try:
                return Path(hf_hub_download(repo, name))
            except Exception as exc:  # network errors, missing file, gated repo…
                last = exc
        raise SSERDError(f"{flag} {spec}: could not fetch {' or '.join(names)} from the Hugging Face Hub "
                         f"({type(last).__name__}); give a local path instead.")
    raise SSERDError(f"{flag} {spec}: no such file or folder.")


# --------------------------------------------------------------------------- generic runners

class _OnnxNet:
    def __init__(self, path: Path):
        import cv2

        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise SSERDError(f"Cannot load ONNX model {path.name} with OpenCV: {str(exc).splitlines()[-1]}") from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.net.setInput(np.ascontiguousarray(x, np.float32))
        return np.asarray(self.net.forward(), np.float32).reshape(len(x), -1)


class _TorchNet:
    def __init__(self, module):
        self.module = module.eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, np.float32))).float().reshape(len(x), -1).numpy()


def _jit_load(path: Path):
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


def _load_generic(path: Path, what: str):
    if path.suffix.lower() == ".onnx":
        return _OnnxNet(path)
    import torch

    try:
        return _TorchNet(_jit_load(path))
    except Exception as exc:
        raise SSERDError(f"{what}: {path.name} is neither an ONNX file nor a TorchScript module ({type(exc).__name__}).") from None


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``float32 [2, 3]`` mapping points ``src`` → ``dst`` (:func:`sserd_core.geometry.similarity_fit`)."""
    return similarity_fit(src, dst).astype(np.float32)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """ArcFace's 5 points (eye centres, nose tip, mouth corners) from 68 dlib landmarks."""
    lm = np.asarray(landmarks, np.float32)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


class ArcFaceEmbedder:
    """FAD's face-recognition embedding: align to 112×112, run the user's ArcFace model."""

    def __init__(self, spec):
        self.path = resolve_weights(spec, "FAD (ArcFace)", "--arcface", ("arcface.onnx", "w600k_r50.onnx", "arcface.pt"))
        self.net = _load_generic(self.path, "FAD (ArcFace)")

    def __call__(self, frames: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        import cv2

        crops = []
        for rgb, lm in zip(frames, landmarks):
            m = similarity_transform(five_points(lm), ARCFACE_TEMPLATE)
            crops.append(cv2.warpAffine(rgb, m, (112, 112), flags=cv2.INTER_LINEAR))
        if not crops:
            return np.zeros((0, 512), np.float32)
        x = (np.stack(crops).astype(np.float32) - 127.5) / 127.5
        return self.net(x.transpose(0, 3, 1, 2))


class EmotionFeatureNet:
    """CSIM's emotion-feature network (ONNX / TorchScript), fed square face crops."""

    MEAN = np.array([0.485, 0.456, 0.406], np.float32)
    STD = np.array([0.229, 0.224, 0.225], np.float32)

    def __init__(self, spec, size: int = 224):
        self.path = resolve_weights(spec, "CSIM (emotion features)", "--emotion-net", ("emotion.onnx", "emotion.pt"))
        self.net = _load_generic(self.path, "CSIM (emotion features)")
        self.size = int(size)

    def __call__(self, frames: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        crops = [face_crop(rgb, lm, self.size, scale=1.4) for rgb, lm in zip(frames, landmarks)]
        x = (np.stack(crops).astype(np.float32) / 255.0 - self.MEAN) / self.STD
        return self.net(x.transpose(0, 3, 1, 2))


def face_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int, scale: float = 1.4, y_shift: float = 0.0) -> np.ndarray:
    """A square crop ``uint8 [size, size, 3]`` around the landmarks (``scale`` × their extent), edge-padded."""
    import cv2

    lm = np.asarray(landmarks, np.float32)
    c = (lm.min(0) + lm.max(0)) / 2
    half = float(max(lm.max(0) - lm.min(0))) * scale / 2
    c = c + np.array([0.0, y_shift * half * 2], np.float32)
    src = np.float32([[c[0] - half, c[1] - half], [c[0] + half, c[1] - half], [c[0] - half, c[1] + half]])
    dst = np.float32([[0, 0], [size, 0], [0, size]])
    return cv2.warpAffine(rgb, cv2.getAffineTransform(src, dst), (size, size), borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------- SyncNet

def _syncnet_module(fc_dim: int = 1024):
    import torch.nn as nn

    def c2(i, o, k, s=1, p=1):
        return [nn.Conv2d(i, o, k, s, p), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    def c3(i, o, k, s=(1, 1, 1), p=(0, 1, 1)):
        return [nn.Conv3d(i, o, k, s, p), nn.BatchNorm3d(o), nn.ReLU(inplace=True)]

    def fc():
        return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, fc_dim))

    class SyncNet(nn.Module):
        """SyncNet's two streams (published layer layout; state-dict keys as in the official release)."""

        def __init__(self):
            super().__init__()
            self.netcnnaud = nn.Sequential(
                *c2(1, 64, 3), nn.MaxPool2d(1, 1),
                *c2(64, 192, 3), nn.MaxPool2d(3, (1, 2)),
                *c2(192, 384, 3), *c2(384, 256, 3), *c2(256, 256, 3), nn.MaxPool2d(3, 2),
                *c2(256, 512, (5, 4), p=0))
            self.netfcaud = fc()
            self.netfclip = fc()
            self.netcnnlip = nn.Sequential(
                *c3(3, 96, (5, 7, 7), (1, 2, 2), 0), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                *c3(96, 256, (1, 5, 5), (1, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
                *c3(256, 256, (1, 3, 3)), *c3(256, 256, (1, 3, 3)), *c3(256, 256, (1, 3, 3)),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                *c3(256, 512, (1, 6, 6), p=0))

        def forward_aud(self, x):  # [B, 1, 13, 20] MFCC
            return self.netfcaud(self.netcnnaud(x).flatten(1))

        def forward_lip(self, x):  # [B, 3, 5, 224, 224] BGR 0..255
            return self.netfclip(self.netcnnlip(x).flatten(1))

    return SyncNet()


def mfcc(signal: np.ndarray, rate: int = 16000, numcep: int = 13, nfilt: int = 26, nfft: int = 512,
         winlen: float = 0.025, winstep: float = 0.01, preemph: float = 0.97, ceplifter: int = 22) -> np.ndarray:
    """MFCCs ``[frames, numcep]`` with the ``python_speech_features.mfcc`` defaults (c0 = log frame energy)."""
    from scipy.fft import dct

    x = np.asarray(signal, np.float64)
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    flen, fstep = int(round(winlen * rate)), int(round(winstep * rate))
    nframes = 1 + int(np.ceil((max(len(x), flen) - flen) / fstep))
    x = np.concatenate([x, np.zeros(max(0, (nframes - 1) * fstep + flen - len(x)))])
    idx = np.arange(flen)[None] + fstep * np.arange(nframes)[:, None]
    frames = x[idx]
    pspec = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = np.where(pspec.sum(1) == 0, np.finfo(float).eps, pspec.sum(1))
    mel = lambda hz: 2595 * np.log10(1 + hz / 700.0)  # noqa: E731
    imel = lambda m: 700 * (10 ** (m / 2595.0) - 1)  # noqa: E731
    pts = np.floor((nfft + 1) * imel(np.linspace(mel(0), mel(rate / 2), nfilt + 2)) / rate).astype(int)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(pts[j], pts[j + 1]):
            fb[j, i] = (i - pts[j]) / (pts[j + 1] - pts[j])
        for i in range(pts[j + 1], pts[j + 2]):
            fb[j, i] = (pts[j + 2] - i) / (pts[j + 2] - pts[j + 1])
    feat = pspec @ fb.T
    feat = np.log(np.where(feat == 0, np.finfo(float).eps, feat))
    feat = dct(feat, type=2, axis=1, norm="ortho")[:, :numcep]
    feat *= 1 + (ceplifter / 2.0) * np.sin(np.pi * np.arange(numcep) / ceplifter)
    feat[:, 0] = np.log(energy)
    return feat.astype(np.float32)


class SyncNetScorer:
    """LSE-D (and LSE-C) of a talking-face clip with the user's SyncNet weights."""

    def __init__(self, spec, vshift: int = 10, batch: int = 20):
        import torch

        self.path = resolve_weights(spec, "LSE-D (SyncNet)", "--syncnet", ("syncnet_v2.model", "syncnet.pt"))
        self.vshift, self.batch = int(vshift), int(batch)
        try:
            self.model = _jit_load(self.path).eval()
        except Exception:
            state = torch.load(str(self.path), map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise SSERDError(f"--syncnet {self.path.name}: expected the official syncnet_v2.model state dict "
                                 "or a TorchScript module.") from None
            self.model = _syncnet_module()
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise SSERDError(f"--syncnet {self.path.name}: not a SyncNet state dict "
                                 f"({len(missing)} missing / {len(unexpected)} unexpected keys).")
            self.model.eval()

    def score(self, face_crops_bgr: np.ndarray, audio_16k: np.ndarray) -> dict:
        """``face_crops_bgr`` ``uint8 [T, 224, 224, 3]`` at 25 fps; ``audio_16k`` mono samples (int16 scale).

        Returns ``{"LSE-D": min mean distance, "LSE-C": median - min, "offset": frames}``.
        """
        import torch

        cc = mfcc(audio_16k, 16000).T  # [13, frames @ 100 Hz]
        n = min(len(face_crops_bgr), cc.shape[1] // 4)
        last = n - 5
        if last < 1:
            raise SSERDError("LSE-D needs at least 6 frames of video with audio.")
        im = torch.from_numpy(np.ascontiguousarray(face_crops_bgr[:n].transpose(3, 0, 1, 2), np.float32))[None]
        cct = torch.from_numpy(cc[None, None])
        feats_v, feats_a = [], []
        with torch.no_grad():
            for i in range(0, last, self.batch):
                r = range(i, min(last, i + self.batch))
                feats_v.append(self.model.forward_lip(torch.cat([im[:, :, v:v + 5] for v in r])))
                feats_a.append(self.model.forward_aud(torch.cat([cct[..., v * 4:v * 4 + 20] for v in r])))
        fv, fa = torch.cat(feats_v), torch.cat(feats_a)
        win = 2 * self.vshift + 1
        fap = torch.nn.functional.pad(fa, (0, 0, self.vshift, self.vshift))
        dists = torch.stack([torch.nn.functional.pairwise_distance(fv[[i]].repeat(win, 1), fap[i:i + win])
                             for i in range(len(fv))], 1)
        mdist = dists.mean(1)
        minval, minidx = torch.min(mdist, 0)
        return {"LSE-D": float(minval), "LSE-C": float(torch.median(mdist) - minval),
                "offset": int(self.vshift - int(minidx))}


def syncnet_crops(frames: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
    """224×224 BGR face crops for SyncNet (approximating the official face-track crop from landmark boxes)."""
    return np.stack([face_crop(rgb, lm, 224, scale=1.6, y_shift=0.05)[..., ::-1] for rgb, lm in zip(frames, landmarks)])
