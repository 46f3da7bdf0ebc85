"""Helpers for the Space tests: start the real app, make small clips, inspect returned videos."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "sample.mp4"  # the astronaut, smiling while talking
SAMPLE_NEUTRAL = ROOT / "assets" / "sample_hopper.mp4"  # Grace Hopper, neutral while talking
REFERENCE = ROOT / "assets" / "astronaut_face.png"  # another person, smiling
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningSpace:
    url: str
    proc: subprocess.Popen
    work_dir: Path  # SSERD_WORK_DIR given to the app
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def job_dirs(self) -> list:
        return sorted(self.work_dir.glob("sserd-space-*/job-*"))

    def alive(self) -> bool:
        return self.proc.poll() is None and requests.get(self.url, timeout=10).status_code == 200


def start_space(tmp: Path, python: str = sys.executable, **env_overrides) -> RunningSpace:
    """Start ``python app.py`` (with ``python``, default this interpreter) on 127.0.0.1 and a free port;
    wait until it answers."""
    port = free_port()
    work = tmp / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(tmp / "gradio"), SSERD_WORK_DIR=str(work),
               MPLBACKEND="Agg", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    env.update({k: str(v) for k, v in env_overrides.items()})
    if python != sys.executable:  # another environment: nothing of this one may leak in
        for k in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(k, None)
        env["PYTHONNOUSERSITE"] = "1"
    log_path = tmp / "space.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([str(python), "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return RunningSpace(url, proc, work, log_path)
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"app.py did not answer on {url} within 180 s:\n{log_path.read_text()}")


def stop_space(space: RunningSpace) -> int:
    space.proc.terminate()
    try:
        return space.proc.wait(30)
    except subprocess.TimeoutExpired:
        space.proc.kill()
        return space.proc.wait(10)


@dataclass
class VideoFacts:
    n_frames: int
    width: int
    height: int
    has_audio: bool
    audio_seconds: float
    first_rgb: np.ndarray


def video_facts(path) -> VideoFacts:
    """Decode a whole file with PyAV: frame count, size, audio presence and decoded audio length."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        n, first = 0, None
        for f in c.decode(vs):
            if first is None:
                first = f.to_ndarray(format="rgb24")
            n += 1
        w, h = vs.codec_context.width, vs.codec_context.height
    audio_seconds, has_audio = 0.0, False
    with av.open(str(path)) as c:
        if c.streams.audio:
            has_audio = True
            a = c.streams.audio[0]
            samples = sum(f.samples for f in c.decode(a))
            audio_seconds = samples / a.codec_context.sample_rate
    return VideoFacts(n, w, h, has_audio, audio_seconds, first)


def frames_in_range(path, start: float, end: float) -> int:
    """How many video frames of ``path`` have a timestamp in [start, end) seconds (independent count)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        t0 = vs.start_time or 0
        return sum(1 for f in c.decode(vs) if start - 1e-6 <= float((f.pts - t0) * vs.time_base) < end - 1e-6)


def cut_clip(src, dst, seconds: float) -> Path:
    """Re-encode the first ``seconds`` of ``src`` (video + audio) into ``dst`` (H.264 + AAC MP4)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        fps = vin.average_rate or Fraction(25)
        vout = out.add_stream("libx264", rate=fps)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        aout = out.add_stream("aac", rate=ain.codec_context.sample_rate) if ain is not None else None
        n = int(round(seconds * fps))
        for i, f in enumerate(inp.decode(vin)):
            if i >= n:
                break
            nf = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
            nf.pts = i
            nf.time_base = Fraction(1, 1) / fps
            out.mux(vout.encode(nf))
        out.mux(vout.encode(None))
        if aout is not None:
            inp.seek(0)
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=ain.codec_context.sample_rate)
            limit = int(seconds * ain.codec_context.sample_rate)
            written = 0
            for f in inp.decode(ain):
                for r in resampler.resample(f):
                    if written >= limit:
                        break
                    keep = min(r.samples, limit - written)
                    arr = r.to_ndarray()[:, :keep]
                    nf = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format="fltp", layout="mono")
                    nf.sample_rate = ain.codec_context.sample_rate
                    nf.pts = written
                    written += keep
                    out.mux(aout.encode(nf))
            out.mux(aout.encode(None))
    return Path(dst)


def noise_clip(dst, seconds: float = 0.4, size: int = 128, fps: int = 25) -> Path:
    """A short clip of smooth coloured noise: a valid video with no face in it."""
    rng = np.random.default_rng(0)
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        base = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        for i in range(int(seconds * fps)):
            img = np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1), np.uint8))
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return Path(dst)


# ----------------------------------------------------------------------------- the Space as Hugging Face builds it

def front_matter(readme: Path = ROOT / "README.md") -> dict:
    """The YAML block at the very top of README.md: the Space's settings."""
    import yaml

    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's front matter (---)"
    block = text[4:text.index("\n---\n", 4)]
    return yaml.safe_load(block)


def space_requirements(meta: dict) -> list:
    """What a Gradio-SDK Space installs: the repository's requirements.txt, then the SDK's Gradio
    (``gradio[oauth]==sdk_version``), uvicorn and ``spaces`` (as the Space builder does)."""
    return ["-r", str(ROOT / "requirements.txt"), f"gradio[oauth]=={meta['sdk_version']}", "uvicorn>=0.14.0", "spaces"]


def build_space_venv(dest: Path, meta: dict) -> Path:
    """A fresh venv with exactly the Space's requirements (python ``meta['python_version']``); its python."""
    import shutil

    want = str(meta["python_version"])
    python = shutil.which(f"python{want}") or (sys.executable if f"{sys.version_info[0]}.{sys.version_info[1]}" == want
                                                else None)
    if python is None:
        raise RuntimeError(f"python{want} (the Space's python_version) is not installed here")
    subprocess.run([python, "-m", "venv", str(dest)], check=True)
    py = dest / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    out = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          *space_requirements(meta)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"pip failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return py
