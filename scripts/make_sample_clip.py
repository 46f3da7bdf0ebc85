"""Synthesise assets/sample.mp4: a talking-face clip with real speech audio, made by this project.

Provenance and licence (see assets/README.md):
- face (``--face astronaut``, the default, writes assets/sample.mp4): assets/astronaut_face.png,
  a crop of scikit-image's ``astronaut`` image — NASA portrait of astronaut Eileen Collins,
  public domain; upscaled to 448×448;
- face (``--face hopper``, writes assets/sample_hopper.mp4): matplotlib's bundled
  ``sample_data/grace_hopper.jpg`` — official U.S. Navy portrait of Rear Admiral Grace M.
  Hopper, a work of the U.S. federal government, public domain;
- speech: synthesised here with espeak-ng (GPL-3.0 program; its output audio is not
  covered by the GPL) from a sentence written for this project;
- animation: the portrait's lower lip and jaw are moved with a thin-plate-spline warp
  driven by the speech loudness (and a second band for lip rounding), the mouth interior
  is painted in, and a small head motion is added. No third-party video is used.

Run (needs espeak-ng and matplotlib): python scripts/make_sample_clip.py [--seconds-max 5]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import cv2
import matplotlib.cbook as cbook
import numpy as np
from PIL import Image

from sserd_core import media
from sserd_core.geometry import canonical_transform, displacement_to_frame
from sserd_core.face import detect_landmarks
from sserd_core.landmark.render import face_ring, tps_eval, tps_fit

TEXT = "Hello! This is a short test of expression editing. The words stay the same, only the feeling changes."
FACES = {
    # name: (loader, crop box y0, y1, x0, x1 or None, upscale to)
    "astronaut": "assets/astronaut_face.png",
    "hopper": "grace_hopper",
}
ROOT = Path(__file__).resolve().parents[1]


def speech(path: Path) -> media.AudioData:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), TEXT], check=True)
    return media.read_audio(path)


def envelopes(audio: media.AudioData, fps: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth opening 0..1 (loudness) and rounding 0..1 (low-band share) from the speech."""
    x = audio.waveform.mean(0)
    sr = audio.sample_rate
    hop = sr / fps
    open_, round_ = np.zeros(n), np.zeros(n)
    for i in range(n):
        seg = x[int(i * hop): int((i + 1) * hop + hop)]
        if len(seg) < 16:
            continue
        open_[i] = np.sqrt(np.mean(seg ** 2))
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        freqs = np.fft.rfftfreq(len(seg), 1 / sr)
        low, high = spec[(freqs > 200) & (freqs < 900)].sum(), spec[(freqs >= 900) & (freqs < 4000)].sum()
        round_[i] = low / (low + high + 1e-9)
    open_ = np.clip(open_ / (np.percentile(open_, 95) + 1e-9), 0, 1)
    open_ = np.convolve(open_, [0.25, 0.5, 0.25], mode="same")
    round_ = np.clip((round_ - np.median(round_)) * 3, 0, 1) * (open_ > 0.15)
    return open_, round_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--face", choices=sorted(FACES), default="astronaut")
    ap.add_argument("--out", default=None, help="default: assets/sample.mp4 (astronaut) or assets/sample_hopper.mp4")
    ap.add_argument("--fps", type=int, default=25)
    args = ap.parse_args()
    if args.face == "hopper":
        img = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
        img = np.ascontiguousarray(img[8:456, 40:488])  # 448 x 448 portrait crop around the face
        args.out = args.out or str(ROOT / "assets" / "sample_hopper.mp4")
    else:
        im = Image.open(ROOT / FACES["astronaut"]).convert("RGB").resize((448, 448), Image.LANCZOS)
        img = np.asarray(im).copy()
        args.out = args.out or str(ROOT / "assets" / "sample.mp4")
    lm0 = detect_landmarks(img)[0].astype(np.float64)
    T = canonical_transform(lm0)
    iod = 1.0 / np.linalg.norm(T[0, :2])
    with tempfile.TemporaryDirectory() as td:
        audio = speech(Path(td) / "speech.wav")
    dur = audio.waveform.shape[1] / audio.sample_rate + 0.3
    n = int(dur * args.fps)
    opening, rounding = envelopes(audio, args.fps, n)
    ring = face_ring(lm0.astype(np.float32)).astype(np.float64)
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    out_video = Path(args.out).with_suffix(".video.mp4")
    rng = np.random.default_rng(7)
    jitter = rng.normal(0, 1, (n, 3)).cumsum(0)
    jitter -= np.linspace(0, 1, n)[:, None] * jitter[-1]
    with media.VideoWriter(str(out_video), W, H, Fraction(args.fps), crf=20, preset="medium") as vw:
        for i in range(n):
            o, r = opening[i] * 0.22, rounding[i]
            d = np.zeros((68, 2), np.float32)  # canonical displacement of the speech gesture
            d[[65, 66, 67], 1] = o
            d[[55, 56, 57, 58, 59], 1] = o * 1.05
            d[[5, 6, 7, 8, 9, 10, 11], 1] = o * np.array([.3, .6, .85, 1, .85, .6, .3])
            d[[48, 60], 1] = d[[54, 64], 1] = o * 0.45
            d[[48, 60], 0], d[[54, 64], 0] = 0.05 * r, -0.05 * r  # rounding narrows the mouth
            d[[61, 63], 1] = 0.0
            dst = lm0 + displacement_to_frame(T, d)
            ctrl_dst = np.vstack([dst, ring])
            ctrl_src = np.vstack([lm0, ring])
            s = float(np.linalg.norm(ring.max(0) - ring.min(0)))
            params = tps_fit(ctrl_dst / s, ctrl_src / s)
            gy, gx = np.mgrid[0:H:4, 0:W:4].astype(np.float64)
            m = tps_eval(params, np.stack([gx.ravel(), gy.ravel()], 1) / s) * s
            mx = cv2.resize(m[:, 0].reshape(gx.shape).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
            my = cv2.resize(m[:, 1].reshape(gx.shape).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
            frame = cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            if o > 0.01:  # paint the newly opened gap between the old and the new lower inner lip
                inner = np.vstack([lm0[[60, 67, 66, 65, 64]], dst[[64, 65, 66, 67, 60]]]).astype(np.float32)
                mask = np.zeros((H, W), np.float32)
                cv2.fillPoly(mask, [np.round(inner * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
                mask = cv2.GaussianBlur(mask, (5, 5), 0)[..., None]
                dark = np.array([70, 22, 25], np.float32)
                frame = (frame * (1 - mask) + dark * mask).astype(np.uint8)
            # gentle head motion: translation and roll
            ang = 0.6 * np.sin(i / n * 2 * np.pi) + 0.15 * jitter[i, 2]
            M = cv2.getRotationMatrix2D((W / 2, H / 2), ang, 1.0)
            M[:, 2] += (3 * np.sin(i / 17.0) + 0.3 * jitter[i, 0], 2 * np.sin(i / 23.0) + 0.3 * jitter[i, 1])
            frame = cv2.warpAffine(frame, M, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            vw.write(frame, i / args.fps)
    media.mux_audio(out_video, audio, args.out)
    out_video.unlink()
    print("wrote", args.out, f"{n} frames, {dur:.2f} s")


if __name__ == "__main__":
    main()
