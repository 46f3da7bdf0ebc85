"""Expression Controls: named sliders over the action units (−1…+1, 0 = the source), with a one-frame preview."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import folder_paths
from comfy_api.latest import io, ui

from sserd_core import pipeline
from sserd_core.controls import CONTROLS, N_CONTROLS, RANGE, format_controls, parse_controls

from sserd_core.errors import SSERDError

from ._common import CATEGORY, ContentType, EmotionType, connected_fingerprint, output_connected

#: the step of the sliders (the controls themselves take any value in RANGE)
STEP = 0.05
#: ``preview_time`` below 0: the middle frame where the face is tracked (pipeline.preview_frame's own choice)
AUTO_TIME = -1.0

KEYFRAMES_HELP = ("Optional control keyframes over time, e.g. '0: smile=0; 2: smile=0.8 brow_lower=-0.3' (seconds "
                  "from the clip's start; a control a keyframe does not name is 0 there; linear in between, held "
                  "before the first and after the last), or one constant set 'smile=0.6, brow_inner=0.4'. When not "
                  "empty it REPLACES the sliders (they are ignored, and the node says so). Names: "
                  + ", ".join(c.name for c in CONTROLS) + ".")


def control_values(values: dict) -> np.ndarray:
    """The sliders' values, ``float32 [N_CONTROLS]`` in :data:`CONTROLS` order (a missing one is 0)."""
    return np.array([float(values.get(c.name, 0.0) or 0.0) for c in CONTROLS], np.float32)


def controls_text(sliders: np.ndarray, keyframes: str = "") -> str:
    """The controls as the text :class:`~sserd_core.pipeline.EditOptions` takes: the keyframes when given (checked
    here: a bad text is one readable error), else the sliders as one constant set (``""`` when all are 0)."""
    if keyframes and keyframes.strip():
        return format_controls(parse_controls(keyframes))
    return format_controls([(0.0, sliders)]) if np.any(sliders) else ""


def target(emotion, text: str):
    """The EMOTION the node outputs: ``emotion`` (a label / reference / curve from Extract Emotion) with the controls
    on top, or the controls alone on the source's own expression (``EditOptions(controls=text)``'s target)."""
    if emotion is None:
        # all at 0 and no keyframes: the source's own expression, unchanged (format_controls' "all 0" keyframe)
        return pipeline.extract_emotion(controls=text or format_controls([(0.0, np.zeros(N_CONTROLS, np.float32))]))
    if not text:
        return emotion  # nothing to add: the connected emotion as it is
    return emotion.with_controls(text)  # what extract_emotion(label=..., controls=text) makes


def preview_index(content, preview_time: float) -> Optional[int]:
    """The frame nearest ``preview_time`` seconds from the clip's start (None: :data:`AUTO_TIME`, the middle
    tracked frame)."""
    if preview_time is None or preview_time < 0:
        return None
    return int(np.argmin(np.abs(np.asarray(content.times, np.float64) - float(preview_time))))


def note_text(spec, preview, sliders_ignored: bool, found: bool = True) -> str:
    """What the node says: the target, the share of each control's motion the preview frame shows, the
    saturation note (a control held back by the believability bounds), whether the sliders were ignored, and
    whether the preview frame has no tracked face (``found`` False)."""
    lines = [f"Target: {spec.describe()}."]
    if sliders_ignored:
        lines.append("The keyframes are used; the sliders are ignored.")
    if preview is not None:
        shown = preview.shown_text()
        lines.append(f"Preview: frame {preview.index} ({preview.time:.2f} s)"
                     + (f"; shown: {shown}." if shown else "."))
        if not found:
            lines.append("No face is tracked on this frame: it is left as it is. Choose another preview_time.")
        if preview.note:
            lines.append(preview.note)
    return "\n".join(lines)


def _save_preview(rgb: np.ndarray) -> dict:
    """source | edited as a PNG in ComfyUI's temp folder, named as the node's ``ui.images`` entry."""
    from PIL import Image

    sub = "sserd"
    d = Path(folder_paths.get_temp_directory()) / sub
    d.mkdir(parents=True, exist_ok=True)
    name = f"controls_preview_{uuid.uuid4().hex[:12]}.png"
    Image.fromarray(rgb).save(d / name, compress_level=1)
    return dict(ui.SavedResult(name, sub, io.FolderType.temp))


def _slider(c) -> io.Float.Input:
    return io.Float.Input(c.name, default=0.0, min=RANGE[0], max=RANGE[1], step=STEP,
                          display_mode=io.NumberDisplay.slider,
                          tooltip=f"{c.label} ({c.au}). +1: {c.action} at the strength of a strong posed "
                                  f"expression; -1: {c.minus}; 0: the source as it is.")


class ExpressionControls(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_ExpressionControls",
            display_name="Expression Controls",
            category=CATEGORY,
            description="Move each part of the face yourself: 13 controls over the facial action units, each -1..+1 "
                        "with 0 = the source. No control moves the jaw or the lip opening (the speech). Alone, they "
                        "change the source's own expression; with an emotion connected (Extract Emotion) they add "
                        "to it. Connect Disentangle Content's track to see one frame (source | edited) at once, "
                        "before Render Face renders the clip. A control held back by the believability bounds is "
                        "said in the note.",
            inputs=[
                *[_slider(c) for c in CONTROLS],
                io.String.Input("keyframes", default="", multiline=True, optional=True,
                                placeholder="0: smile=0; 2: smile=0.8 brow_lower=-0.3", tooltip=KEYFRAMES_HELP),
                EmotionType.Input("emotion", optional=True,
                                  tooltip="Optional emotion to add the controls to (a label, reference or curve from "
                                          "Extract Emotion); its own controls, if any, are replaced. Not connected: "
                                          "the source's own expression, changed only by the controls."),
                ContentType.Input("content", optional=True,
                                  tooltip="Optional content track from Disentangle Content (the tracked face; "
                                          "nothing is tracked again here): shows one edited frame."),
                io.Float.Input("preview_time", default=AUTO_TIME, min=AUTO_TIME, max=100000.0, step=0.04,
                               optional=True,
                               tooltip="The frame to preview, in seconds from the clip's start (the nearest frame); "
                                       "-1 = the middle frame where the face is tracked."),
            ],
            outputs=[
                EmotionType.Output("target_emotion", display_name="emotion",
                                   tooltip="The target emotion with the controls, for Render Face."),
                io.Image.Output("preview", display_name="preview",
                                tooltip="One frame, source | edited side by side, [1, H, 2W, 3] (needs content)."),
                io.String.Output("note", display_name="note",
                                 tooltip="The target, the share of each control's motion the preview frame shows, "
                                         "and which controls saturate (held back by the believability bounds)."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        """The cache key's extra part: whether the preview output is connected (it needs a content track)."""
        return connected_fingerprint((1,))

    @classmethod
    def execute(cls, keyframes: str = "", emotion=None, content=None, preview_time: float = AUTO_TIME,
                **sliders) -> io.NodeOutput:
        values = control_values(sliders)
        text = controls_text(values, keyframes)
        spec = target(emotion, text)
        if content is None and output_connected(cls, 1):
            raise SSERDError("The preview output needs a face to show: connect Disentangle Content's content to "
                             "Expression Controls (or disconnect its preview output).")
        preview = pipeline.preview_frame(content, spec, preview_index(content, preview_time)) \
            if content is not None else None
        found = preview is None or bool(content.found[preview.index])
        note = note_text(spec, preview, bool(keyframes and keyframes.strip()) and bool(np.any(values)), found)
        shown = {"text": note, "controls": text}
        if preview is None:
            return io.NodeOutput(spec, None, note, ui={"sserd_controls": [shown]})
        rgb = preview.side_by_side()
        image = torch.from_numpy(np.ascontiguousarray(rgb)).float().div_(255.0).unsqueeze(0)
        shown.update(index=preview.index, time=round(preview.time, 3))
        return io.NodeOutput(spec, image, note, ui={"images": [_save_preview(rgb)], "sserd_controls": [shown]})
