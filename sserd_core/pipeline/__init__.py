"""The one pipeline: the node graph in code.

::

    load_video ──► disentangle_content ──► render_face ──► mux_audio ──► file
                                              ▲
    label / reference / curve ─► extract_emotion

:func:`edit_video` chains the stages; the CLI, the ComfyUI nodes and the Gradio Space
call these functions and nothing else. Every stage streams: frames are decoded,
processed and encoded one at a time; only per-frame landmarks (68×2 floats) are kept
for the whole clip.

Progress is reported through ``progress(stage, done, total)``; a progress callback may
raise (e.g. ComfyUI's interrupt) to stop a job — no partial output file is left behind.

This module is the public face of the package; one module per job behind it:

- :mod:`.stages` — :func:`load_video`, :func:`disentangle_content` (:func:`disentangle_faces`: several faces in
  one pass), :func:`extract_emotion`, :func:`mux_audio`;
- :mod:`.faces` — a different target per face: :class:`FaceTarget`, :class:`FaceEdit`, the ``N=TARGET`` text;
- :mod:`.render` — :func:`render_face`, the render stage;
- :mod:`.preview` — :func:`preview_frame`, one frame of an edit at once (a form's live preview);
- :mod:`.job` — :func:`edit_video` and :func:`edit`, one whole edit, checked first, all or nothing;
- :mod:`.options` — :class:`EditOptions`; :mod:`.results` — :class:`Outputs` (where a job writes),
  :class:`RenderResult`, :class:`EditResult`, :class:`Preview`;
- :mod:`.backends` — :func:`make_editor`, the backend factory;
- :mod:`.workers` — the frame-worker scheduler (:func:`default_threads`, ordered results, one BLAS thread);
- :mod:`.frame_cache` — the frames the tracking pass keeps for the render pass;
- :mod:`.clip` — :func:`write_clip`, a clip's range as a file of its own.
"""

from .. import media
from ..errors import SSERDError
from .backends import default_editor, make_editor
from .clip import write_clip
from .frame_cache import FRAME_TAIL_BYTES
from .job import edit, edit_video
from .options import EditOptions
from .preview import FramePreview, frame_at, preview_frame
from .render import render_face
from .results import EditResult, Outputs, Preview, RenderResult
from .faces import FaceEdit, FaceTarget
from .stages import (ProgressFn, as_emotion, disentangle_content, disentangle_faces, extract_emotion, load_video,
                     mux_audio)
from .workers import EDIT_COST_PER_FACE_SHARE, default_threads

__all__ = ["EDIT_COST_PER_FACE_SHARE", "FRAME_TAIL_BYTES", "EditOptions", "EditResult", "FaceEdit", "FaceTarget",
           "FramePreview", "frame_at", "preview_frame", "Outputs", "Preview", "ProgressFn", "RenderResult",
           "SSERDError", "as_emotion", "default_editor", "default_threads", "disentangle_content", "disentangle_faces",
           "edit", "edit_video", "extract_emotion", "load_video", "make_editor", "media", "mux_audio", "render_face",
           "write_clip"]
