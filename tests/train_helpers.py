"""Helpers for the training tests: a synthetic face-crop cache with known factors, tiny loss-network stand-ins."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

from sserd_core.emotion import EMOTIONS
from sserd_core.train.data import clip_file, write_index

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "tiny_cpu.toml"


def synthetic_face(size: int, actor: int, emotion: int, mouth: float, rng=None) -> np.ndarray:
    """A cartoon face ``uint8 [size, size, 3]``: skin colour = actor; brows/eyes/mouth corners = emotion
    (neutral flat, happy raised corners, sad lowered brows and corners, …); mouth opening = ``mouth`` (0…1, content)."""
    s = size / 64.0
    img = np.full((size, size, 3), (40 + 25 * actor, 60, 90 - 10 * actor), np.uint8)
    skin = (150 + 30 * (actor % 3), 110 + 20 * (actor % 2), 90 + 15 * actor)
    cv2.ellipse(img, (int(32 * s), int(34 * s)), (int(22 * s), int(27 * s)), 0, 0, 360, skin, -1)
    brow_tilt = [0, 5, 3, -4, -2, -5, 0][emotion]
    brow_h = [0, 2, 1, -3, -1, 1, -5][emotion]
    eye_open = [3, 2, 1, 5, 2, 2, 6][emotion]
    corner = [0, -1, -2, -1, 4, -4, 0][emotion]
    for side in (-1, 1):
        cx = 32 + side * 9
        p1 = (int((cx - 5) * s), int((22 + brow_h + side * brow_tilt / 2) * s))
        p2 = (int((cx + 5) * s), int((22 + brow_h - side * brow_tilt / 2) * s))
        cv2.line(img, p1, p2, (40, 30, 20), max(1, int(2 * s)))
        cv2.ellipse(img, (int(cx * s), int(28 * s)), (int(4 * s), max(1, int(eye_open * s / 2))), 0, 0, 360,
                    (250, 250, 250), -1)
        cv2.circle(img, (int(cx * s), int(28 * s)), max(1, int(1.5 * s)), (20, 20, 20), -1)
    if emotion == 2:  # disgust: nose wrinkle
        cv2.line(img, (int(29 * s), int(36 * s)), (int(35 * s), int(36 * s)), (90, 60, 50), max(1, int(s)))
    mo = 1 + 8 * float(mouth)
    cv2.ellipse(img, (int(32 * s), int(48 * s)), (int(8 * s), max(1, int(mo * s / 2))), 0, 0, 360, (90, 20, 30), -1)
    for side in (-1, 1):
        cv2.line(img, (int((32 + side * 8) * s), int(48 * s)), (int((32 + side * 11) * s), int((48 - corner) * s)),
                 (90, 20, 30), max(1, int(1.5 * s)))
    if rng is not None:
        img = np.clip(img.astype(np.int16) + rng.integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
    return img


def make_synthetic_cache(cache_dir, actors=("A1", "A2", "A3"), emotions=EMOTIONS, clips_per=1, frames=8,
                         size=64, seed=0) -> Path:
    """A preprocessed cache (same files ``sserd preprocess`` writes) of :func:`synthetic_face` crops; each clip's
    mouth opening follows its own sinusoid (the speech content)."""
    rng = np.random.default_rng(seed)
    cache_dir = Path(cache_dir)
    records = []
    for ai, actor in enumerate(actors):
        for emotion in emotions:
            e = EMOTIONS.index(emotion)
            for c in range(clips_per):
                key = f"{actor}__{emotion}__{c:03d}"
                phase = rng.uniform(0, 2 * np.pi)
                mouth = 0.5 + 0.5 * np.sin(phase + np.arange(frames) * 0.9)
                imgs = np.stack([synthetic_face(size, ai, e, m, rng) for m in mouth])
                out = clip_file(cache_dir, key)
                out.parent.mkdir(parents=True, exist_ok=True)
                np.savez(out, images=imgs, masks=np.full(imgs.shape[:3], 255, np.uint8),
                         landmarks=np.zeros((frames, 68, 2), np.float32), frame_index=np.arange(frames, dtype=np.int32),
                         mouth=mouth.astype(np.float32))
                records.append(dict(path=f"synthetic/{key}.mp4", actor=actor, emotion=emotion, key=key,
                                    frames=frames, status="ok"))
    from sserd_core.neural import crop_geometry

    write_index(cache_dir, dict(root="synthetic", layout="plain", size=size, alignment="sserd-template",
                                crop_geometry=crop_geometry("sserd-template"), stride=1, max_frames=None, skipped={}),
                records)
    return cache_dir


class RandomStandinIdentityNet(nn.Module):
    """A TINY RANDOMLY-INITIALISED STAND-IN for a face-identity network (not ArcFace): images → 16-d embeddings."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                                 nn.Flatten(), nn.Linear(128, 16))

    def forward(self, x):
        return self.net(x)


class RandomStandinPerceptualNet(nn.Module):
    """A TINY RANDOMLY-INITIALISED STAND-IN for a perceptual (LPIPS-like) network: ``(x, y)`` → distances ``[B]``."""

    def __init__(self, seed: int = 1):
        super().__init__()
        torch.manual_seed(seed)
        self.f1 = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.f2 = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x, y):
        d = torch.zeros(x.shape[0], device=x.device)
        for fx, fy in ((x, y),):
            a1, b1 = self.f1(fx), self.f1(fy)
            a2, b2 = self.f2(a1), self.f2(b1)
            for a, b in ((a1, b1), (a2, b2)):
                a = a / (a.norm(dim=1, keepdim=True) + 1e-6)
                b = b / (b.norm(dim=1, keepdim=True) + 1e-6)
                d = d + (a - b).pow(2).sum(1).mean((1, 2))
        return d


def save_standin_loss_nets(folder) -> tuple[Path, Path]:
    """TorchScript files of the two random stand-ins (what a user would give as loss.identity_net / perceptual_net)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ident, perc = folder / "random_standin_identity.pt", folder / "random_standin_perceptual.pt"
    x = torch.zeros(1, 3, 64, 64)
    torch.jit.trace(RandomStandinIdentityNet().eval(), x).save(str(ident))
    torch.jit.trace(RandomStandinPerceptualNet().eval(), (x, x)).save(str(perc))
    return ident, perc


def tiny_config_text(cache, output_dir, ident, perc, pretrained=None, **train) -> str:
    """configs/tiny_cpu.toml with the cache, output folder, loss networks, optionally a pretrained model folder
    (instead of the tiny config's fresh model) and [train] overrides filled in."""
    import re

    text = TINY_CONFIG.read_text()
    if pretrained is not None:
        text = re.sub(r"(?s)\[model\.config\].*?\n\n", "", text)
        text = text.replace("[model]\n", f'[model]\npretrained = "{pretrained}"\n', 1)
    text = text.replace('cache = "cache/tiny"', f'cache = "{cache}"')
    text = text.replace('output_dir = "runs/tiny"', f'output_dir = "{output_dir}"')
    text = text.replace("[loss]", f'[loss]\nidentity_net = "{ident}"\nperceptual_net = "{perc}"', 1)
    for k, v in train.items():
        val = f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
        text, n = re.subn(rf"(?m)^{k} = .*$", f"{k} = {val}", text, count=1)
        if not n:
            text = text.replace("[train]\n", f"[train]\n{k} = {val}\n", 1)
    return text
