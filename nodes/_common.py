"""Shared glue between ComfyUI and :mod:`sserd_core.pipeline` (no model math here).

- socket types of the pack (``SSERD_CONTENT``, ``SSERD_EMOTION``, ``SSERD_MODEL``, ``SSERD_FACES``);
- turning a core ``VIDEO`` (``VideoInput``) into a file path the pipeline streams from;
- core ``AUDIO`` ⇄ :class:`sserd_core.media.AudioData`;
- a pipeline ``progress(stage, done, total)`` callback that drives ComfyUI's progress bar
  (which is also ComfyUI's interrupt point: it raises when the user presses Cancel);
- asking whether an output socket is connected, so expensive optional outputs (``IMAGE``
  batches, ``AUDIO`` tensors, side-by-side files) are only built when something uses them.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Optional

import numpy as np
import torch

import folder_paths
import comfy.model_management
import comfy.utils
from comfy_api.latest import io, InputImpl, Input

from sserd_core.media import AudioData

CATEGORY = "SSERD"

ContentType = io.Custom("SSERD_CONTENT")
EmotionType = io.Custom("SSERD_EMOTION")
ModelType = io.Custom("SSERD_MODEL")
FacesType = io.Custom("SSERD_FACES")  # a tuple of sserd_core.pipeline.FaceEdit: more faces, each with its emotion

#: a live preview of the frame being rendered is sent at most this often (seconds)
PREVIEW_EVERY_S = 0.5


def temp_path(stem: str, suffix: str = ".mp4") -> Path:
    """A fresh file path under ComfyUI's temp folder (emptied by ComfyUI at start-up)."""
    d = Path(folder_paths.get_temp_directory()) / "sserd"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{stem}_{uuid.uuid4().hex[:12]}{suffix}"


def video_path(video: Input.Video) -> str:
    """A file path for a core ``VIDEO``.

    File-backed videos (core Load Video, every SSERD node) give their path as is; an
    in-memory video (e.g. core Create Video from an ``IMAGE`` batch) is written once to
    ComfyUI's temp folder so the pipeline can stream it.
    """
    from ._clip import SSERDClip  # (that module builds on this one)

    if isinstance(video, (InputImpl.VideoFromFile, SSERDClip)):  # a ranged SSERDClip writes its range once
        src = video.get_stream_source()
        if isinstance(src, (str, os.PathLike)):
            return str(src)
    path = temp_path("video_input")
    video.save_to(str(path))
    return str(path)


def file_video(path) -> InputImpl.VideoFromFile:
    return InputImpl.VideoFromFile(str(path))


def audio_to_core(audio: Optional[AudioData]) -> Optional[dict]:
    """:class:`AudioData` ``[C, T]`` → core ``AUDIO`` ``{"waveform": [1, C, T], "sample_rate"}``."""
    if audio is None:
        return None
    return {"waveform": torch.from_numpy(np.ascontiguousarray(audio.waveform)).unsqueeze(0),
            "sample_rate": int(audio.sample_rate)}


def audio_from_core(audio: Optional[dict]) -> Optional[AudioData]:
    """Core ``AUDIO`` → :class:`AudioData` (first item of the batch, float32 ``[C, T]``)."""
    if audio is None:
        return None
    wave = audio["waveform"]
    if wave.ndim == 3:
        wave = wave[0]
    return AudioData(wave.detach().to("cpu", torch.float32).numpy(), int(audio["sample_rate"]))


def consumed_outputs(prompt: Optional[dict], node_id) -> frozenset:
    """The output indices of node ``node_id`` that some node of ``prompt`` (API form) takes as an input."""
    used = set()
    for node in (prompt or {}).values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) == str(node_id):
                used.add(int(value[1]))
    return frozenset(used)


def output_connected(cls, index: int) -> bool:
    """Whether output ``index`` of the running node feeds any node in the prompt.

    Uses the hidden ``PROMPT`` / ``UNIQUE_ID`` inputs; answers True when they are not
    available (e.g. the node is called outside ComfyUI's executor), so nothing is lost.
    A node that uses this must also key ComfyUI's cache on it (:func:`connected_fingerprint`).
    """
    prompt = getattr(cls.hidden, "prompt", None)
    me = getattr(cls.hidden, "unique_id", None)
    if not prompt or me is None:
        return True
    return index in consumed_outputs(prompt, me)


def connected_fingerprint(optional: tuple) -> Optional[tuple]:
    """For a node's ``fingerprint_inputs``: which of its ``optional`` outputs the running prompt connects.

    ComfyUI caches a node's outputs by its inputs. A node that builds an output only when it is
    connected (:func:`output_connected`) would otherwise hand the cached ``None`` of an earlier run to a
    node connected to that output since. ComfyUI gives ``fingerprint_inputs`` no hidden inputs, so the
    prompt is read from the server's running queue by the executing context's prompt id. None (the
    cache keyed on the inputs alone) when there is no such prompt.
    """
    try:
        from comfy_execution.utils import get_executing_context
        from server import PromptServer
    except ImportError:
        return None
    ctx = get_executing_context()
    server = getattr(PromptServer, "instance", None)
    if ctx is None or server is None:
        return None
    running, _ = server.prompt_queue.get_current_queue_volatile()
    prompt = next((item[2] for item in running if len(item) > 2 and item[1] == ctx.prompt_id), None)
    if prompt is None:
        return None
    return ("connected", tuple(sorted(consumed_outputs(prompt, ctx.node_id) & set(optional))))


class ComfyProgress:
    """``progress(stage, done, total)`` for the pipeline, shown on the node's progress bar.

    Every call passes through ``comfy.utils.ProgressBar`` — whose hook raises
    ``InterruptProcessingException`` when the user cancels — and also checks the
    interrupt flag itself, so a cancel stops the pipeline at the next frame and the
    pipeline's atomic outputs leave no partial file. ``show(rgb)`` queues a frame to be
    sent as the node's live preview (at most every :data:`PREVIEW_EVERY_S` seconds).
    """

    def __init__(self, total: int = 1):
        self.bar = comfy.utils.ProgressBar(max(1, int(total)))
        self._preview = None
        self._last_preview = 0.0

    def show(self, rgb: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_preview >= PREVIEW_EVERY_S:
            self._preview = rgb
            self._last_preview = now

    def __call__(self, stage: str, done: int, total: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        preview = None
        if self._preview is not None:
            from PIL import Image

            preview = ("JPEG", Image.fromarray(self._preview), 512)
            self._preview = None
        self.bar.update_absolute(done, max(1, int(total)), preview)
