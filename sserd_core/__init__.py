"""sserd_core: speech-preserving facial expression manipulation for video (SSERD).

Framework-free core of comfyui-sserd. The one pipeline is in :mod:`sserd_core.pipeline`:
``load_video → disentangle_content → extract_emotion → render_face → mux_audio``, and
:func:`sserd_core.pipeline.edit_video` chains them. The CLI (``sserd``), the ComfyUI
nodes and the Gradio Space all call these functions.
"""

__version__ = "0.1.0"

from .errors import SSERDError  # noqa: E402


def __getattr__(name):  # EMOTIONS and EmotionSpec load numpy: only when asked for (the CLI starts faster)
    if name in ("EMOTIONS", "EmotionSpec"):
        from . import emotion

        return getattr(emotion, name)
    raise AttributeError(f"module 'sserd_core' has no attribute {name!r}")


__all__ = ["EMOTIONS", "EmotionSpec", "SSERDError", "__version__"]
