"""ComfyUI entry point of the comfyui-sserd node pack.

ComfyUI imports this file when the repository sits in ``ComfyUI/custom_nodes/`` (git
clone, ComfyUI-Manager or the Comfy registry). It is not part of the pip package
(``sserd_core``), and it does nothing outside ComfyUI, so ``import sserd_core``, the CLI,
the Space and pip installs never touch it.

- ``comfy_entrypoint``: the comfy_api v3 extension that lists the nodes (``nodes/``).
- ``WEB_DIRECTORY``: the frontend extension (``web/``: emotion picker, emotion bars,
  in-node preview of edited frames).
- ``workflows/``: served by ComfyUI as this pack's workflow templates.
"""

import importlib.util
import os
import sys

WEB_DIRECTORY = "./web"

if importlib.util.find_spec("comfy_api") is not None and __package__:
    # Installed with `pip install -r requirements.txt` (what ComfyUI-Manager does), the
    # core library is not a site-package: import it from this checkout.
    if importlib.util.find_spec("sserd_core") is None:
        sys.path.append(os.path.dirname(os.path.abspath(__file__)))
    from .nodes import comfy_entrypoint  # noqa: E402,F401

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
else:
    __all__ = ["WEB_DIRECTORY"]
