"""A real ComfyUI server for the tests of the node pack, and what the tests need around it.

The server is the unmodified ComfyUI tree at ``$COMFYUI_DIR`` (default
``<repo>/../shared/comfyui``), run read-only with ``--base-directory`` pointing at a temp
folder whose ``custom_nodes/comfyui-sserd`` is a symlink to this checkout. It runs in its
own venv (``$COMFYUI_VENV``, default ``<repo>/.venv-comfyui``) made by
``scripts/setup_comfyui_venv.sh`` — the environment a ComfyUI user has (PyPI torch +
torchvision, ComfyUI's requirements, this pack's requirements.txt).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

import requests

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "comfyui-sserd"
WORKFLOWS = REPO / "workflows"
ARTIFACTS = REPO / "test-artifacts"

#: socket types that carry a widget value (not a link) in the UI format
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
#: frontend-only node types that never reach the server
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


def comfyui_dir() -> Path:
    return Path(os.environ.get("COMFYUI_DIR", REPO.parent / "shared" / "comfyui")).resolve()


def comfyui_venv() -> Path:
    return Path(os.environ.get("COMFYUI_VENV", REPO / ".venv-comfyui"))


def ensure_venv() -> Path:
    """Create the server's venv if needed (idempotent, seconds when it exists); its python."""
    subprocess.run(["bash", str(REPO / "scripts" / "setup_comfyui_venv.sh")], check=True,
                   env={**os.environ, "COMFYUI_DIR": str(comfyui_dir()), "COMFYUI_VENV": str(comfyui_venv())})
    return comfyui_venv() / "bin" / "python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """One ComfyUI process on a free loopback port, with its own base directory."""

    def __init__(self, python: Path, base: Path):
        self.python = python
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "comfyui.log"
        self.proc: Optional[subprocess.Popen] = None
        (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
        for sub in ("input", "output", "temp", "models/sserd", "user"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        link = base / "custom_nodes" / PACK_NAME
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def temp_dir(self) -> Path:
        return self.base / "temp"

    def start(self, timeout: float = 180.0) -> "ComfyServer":
        cmd = [str(self.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--database-url", f"sqlite:///{self.base}/comfyui.db"]
        # offline like CI: nothing may reach a model hub; no .pyc files in the read-only ComfyUI tree
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        env.pop("VIRTUAL_ENV", None)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=str(comfyui_dir()), stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # ------------------------------------------------------------------ HTTP API
    def get(self, path: str, **kw):
        r = requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)
        r.raise_for_status()
        return r.json()

    def object_info(self) -> dict:
        return self.get("/object_info")

    def queue(self, prompt: dict, client_id: Optional[str] = None) -> str:
        """POST /prompt; returns the prompt id (raises with the server's validation errors)."""
        body = {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex}
        r = requests.post(self.url + "/prompt", json=body, timeout=30)
        if r.status_code != 200:
            raise PromptRejected(r.status_code, r.json() if r.headers.get("content-type", "").startswith(
                "application/json") else r.text)
        return r.json()["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        """Poll /history until the prompt has finished (success or error); its history entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.get(f"/history/{prompt_id}")
            entry = h.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"].get("status_str") in ("success", "error") or entry["status"].get("completed")):
                return entry
            if not self.alive():
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log()[-4000:]}")
            time.sleep(0.3)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        return self.wait(self.queue(prompt), timeout)

    def interrupt(self) -> None:
        requests.post(self.url + "/interrupt", json={}, timeout=10).raise_for_status()

    def output_files(self, entry: dict) -> list[Path]:
        """Files the prompt's output nodes reported (images/videos in their ``ui``)."""
        files = []
        for out in entry.get("outputs", {}).values():
            for key in ("images", "videos", "gifs"):
                for item in out.get(key, []) or []:
                    if isinstance(item, dict) and "filename" in item:
                        root = {"output": self.output_dir, "temp": self.temp_dir, "input": self.input_dir}[
                            item.get("type", "output")]
                        files.append(root / item.get("subfolder", "") / item["filename"])
        return files


class PromptRejected(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"/prompt answered {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


def status_messages(entry: dict) -> list:
    return entry.get("status", {}).get("messages", [])


def execution_error(entry: dict) -> Optional[dict]:
    for kind, data in status_messages(entry):
        if kind == "execution_error":
            return data
    return None


# ---------------------------------------------------------------------- workflow formats

def load_workflow(name_or_path) -> dict:
    p = Path(name_or_path)
    if not p.is_absolute() and not p.exists():
        p = WORKFLOWS / (str(name_or_path) if str(name_or_path).endswith(".json") else f"{name_or_path}.json")
    return json.loads(p.read_text())


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """Convert a UI-format workflow (what a user drags into ComfyUI) to the API format /prompt takes.

    Does what the frontend's ``graphToPrompt`` does for plain graphs: note nodes are
    dropped, muted/bypassed nodes too, linked inputs become ``[source_id, slot]`` and widget
    values are matched to the node type's widget inputs in ``/object_info`` order
    (a ``control_after_generate`` widget stores one extra value, an upload button none).
    """
    links = {l[0]: l for l in workflow.get("links", [])}
    api = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in FRONTEND_ONLY or node.get("mode", 0) in (2, 4):
            continue
        if kind not in object_info:
            raise KeyError(f"node type {kind} (node {node['id']}) is not known to the server")
        info = object_info[kind]
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        order = info["input_order"].get("required", []) + info["input_order"].get("optional", [])
        linked = {}
        for inp in node.get("inputs", []) or []:
            if inp.get("link") is not None:
                src = links[inp["link"]]
                linked[inp["name"]] = [str(src[1]), int(src[2])]
        values = list(node.get("widgets_values") or [])
        inputs, vi = {}, 0
        for name in order:
            spec = specs[name]
            typ, opts = spec[0], (spec[1] if len(spec) > 1 else {})
            if (isinstance(typ, list) or typ in WIDGET_TYPES) and not opts.get("forceInput"):
                if vi < len(values):
                    inputs[name] = values[vi]
                vi += 1
                if opts.get("control_after_generate"):
                    vi += 1
            if name in linked:
                inputs[name] = linked[name]
        api[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return api


def set_inputs(api: dict, class_type: str, **values) -> dict:
    """Set widget values of every node of ``class_type`` in an API-format prompt (in place)."""
    hit = False
    for node in api.values():
        if node["class_type"] == class_type:
            node["inputs"].update(values)
            hit = True
    assert hit, f"no {class_type} node in the prompt"
    return api


# ---------------------------------------------------------------------- media checks

def probe(path: Path) -> dict:
    """Frame count (decoded), fps, size, and the audio stream of a media file (PyAV)."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        n = sum(1 for _ in c.decode(vs))
        info = {"frames": n, "fps": float(vs.average_rate or 0), "width": vs.codec_context.width,
                "height": vs.codec_context.height, "video_codec": vs.codec_context.name,
                "audio_codec": None, "audio_seconds": 0.0}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            samples = sum(f.samples for f in c.decode(a))
            info.update(audio_codec=a.codec_context.name, audio_seconds=samples / a.codec_context.sample_rate)
    return info


def partial_files(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if ".partial" in p.name or "sserd-partial" in p.name]


def copy_to(src: Path, dst_dir: Path, name: Optional[str] = None) -> Path:
    dst = dst_dir / (name or src.name)
    shutil.copyfile(src, dst)
    return dst
