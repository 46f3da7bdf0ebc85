"""The neural SSERD networks (diffusers ``ModelMixin`` + ``ConfigMixin`` classes).

- :class:`~sserd_core.models.sserd.SSERDNet` — the whole model (what a converted
  checkpoint folder holds);
- :class:`~sserd_core.models.encoder.PSPEncoder`,
  :class:`~sserd_core.models.stylegan2.StyleGANEXGenerator`,
  :class:`~sserd_core.models.emotion_module.EmotionModule` — its parts;
- :mod:`~sserd_core.models.convert` — official checkpoint → ``save_pretrained`` folder;
- :mod:`~sserd_core.models.hub` — local folder / Hugging Face Hub resolution, push.
- :mod:`~sserd_core.models.prototypes` — label emotion prototypes of a model folder (read, average, write).

Importing this package is cheap: the classes (and ``diffusers``, which they need) load on
first use, so ``sserd convert``'s CLI registration does not import them.
"""

import importlib

_LAZY = {"SSERDNet": ".sserd", "PSPEncoder": ".encoder", "StyleGANEXGenerator": ".stylegan2",
         "EmotionModule": ".emotion_module"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
