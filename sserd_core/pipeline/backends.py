"""The backend factory: the one place a backend is chosen."""

from __future__ import annotations

from typing import Optional

from .. import validate
from ..editor import FaceEditor
from ..errors import SSERDError
from .options import EditOptions


def is_landmark(backend: Optional[str]) -> bool:
    """Whether ``backend`` names the built-in landmark editor (None and "" do too)."""
    return not backend or str(backend).strip().lower() in ("landmark", "landmark (built-in)")


def default_editor() -> FaceEditor:
    """The editor used when none is given: :func:`make_editor`'s defaults (the landmark editor on the CPU)."""
    return make_editor()


def make_editor(backend: Optional[str] = "landmark", device: Optional[str] = None, *,
                grid_step: int = EditOptions.grid_step, interpolation: str = EditOptions.interpolation,
                dtype: Optional[str] = EditOptions.dtype, batch_size: Optional[int] = EditOptions.batch_size,
                noise_mode: str = EditOptions.noise_mode, max_face_size: Optional[int] = EditOptions.max_face_size,
                **neural_options) -> FaceEditor:
    """The one place a backend is chosen (CLI, ComfyUI, Space and evaluation all call it, so the same
    options give the same pixels everywhere).

    ``backend``: ``"landmark"`` (or None / "") — the built-in editor; anything else is a converted
    neural SSERD model folder or a Hugging Face repo id. ``device``: ``cpu`` / ``cuda[:N]`` / ``mps``
    (None: CPU for the landmark editor, the best available for the neural one), checked before any
    loading. ``grid_step`` / ``interpolation``: the landmark warp's flow grid (px) and resampling.
    ``dtype`` / ``batch_size`` / ``noise_mode`` / ``max_face_size``: the neural network's precision, frames per
    call, decoder noise and largest decoded face (:class:`EditOptions`; checked for both backends, used by the
    neural one only); they and any other ``neural_options`` (e.g. ``cache_dir``) go to
    :func:`sserd_core.neural.load_editor`.
    """
    device = validate.device(device)
    neural_options.update(validate.neural_options(dtype, batch_size, noise_mode, max_face_size))
    if is_landmark(backend):
        from ..landmark.render import LandmarkEditor

        if interpolation not in ("bicubic", "bilinear"):
            raise SSERDError(f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}.")
        return LandmarkEditor(device=device, grid_step=validate.count("grid_step", grid_step, lo=1),
                              interpolation=interpolation)
    try:
        from ..neural import load_editor
    except ImportError as exc:
        raise SSERDError(f"The neural backend is not available ({exc}). Install with: "
                         "pip install 'comfyui-sserd[neural]'.") from exc
    try:
        return load_editor(str(backend), device=device, **neural_options)
    except ModuleNotFoundError as exc:  # an optional package the neural backend loads when it is used
        raise SSERDError(f"The neural backend needs the optional package '{exc.name}', which is not installed: "
                         "pip install 'comfyui-sserd[neural]' (into the Python that runs this).") from exc
