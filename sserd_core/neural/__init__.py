"""The neural SSERD backend (a package): align → encode → emotion edit → decode → un-align → blend.

:func:`load_editor` turns a converted model folder or a Hugging Face repo id into a
:class:`NeuralEditor`, which implements :class:`sserd_core.editor.FaceEditor` (the same
interface as the landmark backend), so ``sserd_core.pipeline.render_face`` /
``edit_video`` stream frames through it batch by batch and keep the source audio.

Per frame (batched): the face is cut out with the geometry the checkpoint was trained with
(:func:`alignment_matrix`: for the official model, the Umeyama fit of the 68 tracked landmarks
onto SSERD's template in a 256 px image followed by the official resize-to-320 + centre-crop-256,
a 1.25× zoom — one similarity, one resampling), encoded to W+ codes and StyleGANEX features,
edited by the emotion module with a reference's codes — per frame from a driving clip
(:class:`DrivingClip`, the paper's protocol), or one reference image for every frame — or a blend
of per-emotion prototype codes (a label or curve — an extension of this project; the paper always
drives with reference frames), decoded at ``output_size`` px (zero decoder noise by default,
``noise_mode``), and pasted back into the untouched frame with
:func:`sserd_core.blend.paste_back` through the inverse transform and a feathered face mask.

The package, one module per concern:

- :mod:`.align` — the crop geometry (:func:`alignment_matrix`, :func:`align_face`, :func:`face_mask`, the
  un-align maps); training crops with it too;
- :mod:`.driving` — :class:`DrivingClip` / :func:`load_driving_clip` (a reference video, frame by frame);
- :mod:`.editor` — :class:`NeuralEditor` and :func:`load_editor` (device and dtype choice included);
- :mod:`.prototypes` — :func:`compute_prototypes` (label prototypes encoded by the model);
- :mod:`.cli` — the ``sserd prototypes`` command.

Importing this package is cheap and needs no torch (so the CLI can register ``sserd prototypes``
on a base install); the names below load their module, and torch, on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "align": ("TEMPLATE_SIZE", "ZOOM_LOAD", "sserd_template", "compose_affine", "pixel_scale", "crop_zoom_matrix",
              "apply_affine", "template_in_crop", "crop_geometry", "similarity_fit", "ffhq_quad",
              "alignment_matrix", "invert_affine", "decoded_alignment", "align_face", "face_mask"),
    "driving": ("DRIVING_SYNC", "DrivingClip", "load_driving_clip"),
    "editor": ("NOISE_MODES", "pick_device", "pick_dtype", "NeuralEditor", "load_editor"),
    "prototypes": ("compute_prototypes",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _EXPORTS or name == "cli":  # a submodule, e.g. ``sserd_core.neural.editor``
        return importlib.import_module(f"{__name__}.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
