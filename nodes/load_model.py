"""Load Model (SSERD): choose the face-editing backend."""

from __future__ import annotations

import os

import torch

import folder_paths
import comfy.model_management
from comfy_api.latest import io

from sserd_core import pipeline, validate
from sserd_core.errors import SSERDError

from ._common import CATEGORY, ModelType

BUILTIN = "landmark (built-in)"
MODEL_FOLDER = "sserd"


def register_model_folder() -> None:
    """Make ``models/sserd/`` a ComfyUI model folder (extra_model_paths.yaml may add more)."""
    if MODEL_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[MODEL_FOLDER] = (
            [os.path.join(folder_paths.models_dir, MODEL_FOLDER)], set(folder_paths.supported_pt_extensions))


def checkpoints() -> list[str]:
    """Models under ``models/sserd/``: converted model folders (with a ``config.json``) and
    weight files that are not part of such a folder (an official ``.pt`` gets a message
    saying how to convert it)."""
    folders = set()
    for root in folder_paths.get_folder_paths(MODEL_FOLDER):
        if os.path.isdir(root):
            folders |= {name for name in os.listdir(root) if os.path.isfile(os.path.join(root, name, "config.json"))}
    files = {f for f in folder_paths.get_filename_list(MODEL_FOLDER)
             if f.replace(os.sep, "/").split("/", 1)[0] not in folders}
    return sorted(folders | files)


def device_for(choice: str) -> str:
    return "cpu" if choice == "cpu" else str(comfy.model_management.get_torch_device())


DEFAULTS = pipeline.EditOptions()  # the core's one set of defaults (the CLI and the Space use them too)
#: the neural inputs' defaults as the widgets show them: a widget cannot be empty, so "auto" and 0 stand for None
#: (EditOptions reads them so too)
NEURAL_DEFAULTS = {"dtype": DEFAULTS.dtype or "auto", "batch_size": DEFAULTS.batch_size or 0,
                   "noise_mode": DEFAULTS.noise_mode, "max_face_size": DEFAULTS.max_face_size or 0}


def make_editor(backend: str = BUILTIN, repo_id: str = "", device: str = "auto",
                grid_step: int = DEFAULTS.grid_step, interpolation: str = DEFAULTS.interpolation,
                dtype: str = NEURAL_DEFAULTS["dtype"], batch_size: int = NEURAL_DEFAULTS["batch_size"],
                noise_mode: str = NEURAL_DEFAULTS["noise_mode"], max_face_size: int = NEURAL_DEFAULTS["max_face_size"]):
    """The :class:`~sserd_core.editor.FaceEditor` for the node's settings, through the core's one
    :func:`sserd_core.pipeline.make_editor` (same defaults as the CLI and the Space: same pixels). ``dtype``,
    ``batch_size``, ``noise_mode`` and ``max_face_size`` are the neural backend's (the landmark editor ignores
    them); "auto" and 0 mean automatic."""
    neural = validate.neural_options(dtype, batch_size, noise_mode, max_face_size)  # a bad value: one line, first
    dev = device_for(device)
    source = repo_id.strip() if repo_id and repo_id.strip() else None
    if source is None and backend != BUILTIN:
        source = folder_paths.get_full_path(MODEL_FOLDER, backend)
        if source is None:
            for root in folder_paths.get_folder_paths(MODEL_FOLDER):
                if os.path.isdir(os.path.join(root, backend)):
                    source = os.path.join(root, backend)
                    break
        if source is None:
            raise SSERDError(f"SSERD checkpoint '{backend}' not found in models/{MODEL_FOLDER}/.")
    if source is None:
        return pipeline.make_editor("landmark", dev, grid_step=grid_step, interpolation=interpolation)
    if dev != "cpu" and os.path.isdir(source):
        # make room on the GPU the way ComfyUI's own loaders do: unload other models
        # until the checkpoint (plus the same again for activations) fits
        weights = sum(os.path.getsize(os.path.join(source, f)) for f in os.listdir(source)
                      if f.endswith(".safetensors"))
        comfy.model_management.free_memory(2 * weights, torch.device(dev))
    return pipeline.make_editor(source, dev, **neural)


class LoadModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        register_model_folder()
        return io.Schema(
            node_id="SSERD_LoadModel",
            display_name="Load Model (SSERD)",
            category=CATEGORY,
            description="The face-editing backend for Render Face: the built-in landmark editor (runs anywhere, "
                        "no downloads), or a neural SSERD checkpoint from models/sserd/ or a Hugging Face repo id.",
            inputs=[
                io.Combo.Input("backend", options=[BUILTIN] + checkpoints(), default=BUILTIN,
                               tooltip="The built-in landmark editor, or a neural SSERD checkpoint (file or "
                                       "diffusers-style folder) found in ComfyUI/models/sserd/."),
                io.String.Input("repo_id", default="",
                                tooltip="Optional Hugging Face repo id (or local folder) of a neural SSERD "
                                        "checkpoint; overrides 'backend' when set. Must already be in the local "
                                        "Hugging Face cache when offline."),
                io.Combo.Input("device", options=["auto", "cpu"], default="auto",
                               tooltip="'auto' = ComfyUI's compute device (the GPU if ComfyUI uses one); "
                                       "'cpu' forces the CPU."),
                io.Int.Input("grid_step", default=DEFAULTS.grid_step, min=1, max=16,
                             tooltip="Landmark editor: the warp is computed every N pixels and interpolated. "
                                     "Smaller = slower, marginally finer."),
                io.Combo.Input("interpolation", options=["bicubic", "bilinear"], default=DEFAULTS.interpolation,
                               tooltip="Landmark editor: pixel interpolation of the warp."),
                io.Combo.Input("dtype", options=list(validate.DTYPES), default=NEURAL_DEFAULTS["dtype"], optional=True,
                               tooltip="Neural checkpoint: compute precision. 'auto' = bf16 on a GPU (fp16 where bf16 "
                                       "is unsupported), fp32 on the CPU; fp16/bf16 halve the memory."),
                io.Int.Input("batch_size", default=NEURAL_DEFAULTS["batch_size"],
                             min=DEFAULTS.LIMITS["batch_size"][0], max=DEFAULTS.LIMITS["batch_size"][1], optional=True,
                             tooltip="Neural checkpoint: frames per network call. 0 = automatic (8 on a GPU, 2 on "
                                     "the CPU); more is faster on a GPU while its memory allows."),
                io.Combo.Input("noise_mode", options=list(validate.NOISE_MODES), default=NEURAL_DEFAULTS["noise_mode"],
                               optional=True,
                               tooltip="Neural checkpoint: the decoder's per-pixel noise. 'zero' = none (steady "
                                       "video); 'random' = fresh each frame (the official test scripts); 'const' = "
                                       "the model's stored noise."),
                io.Int.Input("max_face_size", default=NEURAL_DEFAULTS["max_face_size"],
                             min=DEFAULTS.LIMITS["max_face_size"][0], max=DEFAULTS.LIMITS["max_face_size"][1],
                             step=32, optional=True,
                             tooltip="Neural checkpoint: decode the face only up to this many pixels wide. 0 = the "
                                     "model's full size (1024 for the official model); 256 is ~10x cheaper and "
                                     "loses nothing when the face is at most that wide in the video."),
            ],
            outputs=[
                ModelType.Output("model", display_name="model", tooltip="The backend, for Render Face's model input."),
            ],
        )

    @classmethod
    def execute(cls, backend=BUILTIN, repo_id="", device="auto", grid_step=DEFAULTS.grid_step,
                interpolation=DEFAULTS.interpolation, dtype=NEURAL_DEFAULTS["dtype"],
                batch_size=NEURAL_DEFAULTS["batch_size"], noise_mode=NEURAL_DEFAULTS["noise_mode"],
                max_face_size=NEURAL_DEFAULTS["max_face_size"]) -> io.NodeOutput:
        return io.NodeOutput(make_editor(backend, repo_id, device, grid_step, interpolation, dtype, batch_size,
                                         noise_mode, max_face_size))
