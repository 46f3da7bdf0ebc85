"""The comfyui-sserd ComfyUI nodes: thin wrappers over :mod:`sserd_core.pipeline`.

One module per stage of the graph::

    Load Video (SSERD) ─► Disentangle Content ─► Render Face ─► Mux Audio ─► (core Save Video)
                                 Extract Emotion ──┘ ▲ ▲
                                   Load Model (SSERD) ┘ └ Add Face (another face: its track + emotion)

Expression Controls (13 sliders over the action units, a one-frame preview from the content track) adds to
Extract Emotion's target, or stands alone; its EMOTION goes wherever Extract Emotion's does.

Only imported inside ComfyUI (it needs ``comfy_api``); the repo-root ``__init__.py``
exposes :func:`comfy_entrypoint` to ComfyUI's loader.
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .add_face import AddFace
from .disentangle import DisentangleContent
from .expression_controls import ExpressionControls
from .extract_emotion import ExtractEmotion
from .load_model import LoadModel, register_model_folder
from .load_video import LoadVideo
from .mux_audio import MuxAudio
from .render_face import RenderFace

NODES: list[type[io.ComfyNode]] = [LoadVideo, DisentangleContent, ExtractEmotion, ExpressionControls, RenderFace,
                                   MuxAudio, LoadModel, AddFace]


class SSERDExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> SSERDExtension:
    register_model_folder()
    return SSERDExtension()
