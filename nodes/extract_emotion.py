"""Extract Emotion: the target emotion from a label + intensity, a reference face, or a curve."""

from __future__ import annotations

from comfy_api.latest import io

from sserd_core import pipeline
from sserd_core.emotion import EMOTIONS

from ._clip import SSERDClip
from ._common import CATEGORY, EmotionType, video_path
from ._images import image_to_rgb

OPTIONS = pipeline.EditOptions  # the inputs' defaults and ranges are the core's own


def emotion_ui(spec) -> dict:
    """What the node shows: the keyframes' emotion vectors (bars) and a one-line description."""
    return {"labels": list(EMOTIONS), "source": spec.source, "text": spec.describe(),
            "keyframes": [[float(t), [round(float(x), 4) for x in v]] for t, v in spec.keyframes]}


class ExtractEmotion(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_ExtractEmotion",
            display_name="Extract Emotion",
            category=CATEGORY,
            description="The emotion the edited face should show. A connected reference image or video wins "
                        "(its measured emotion is transferred, cross-identity); else a non-empty curve; else "
                        "the emotion label at the given intensity. The node shows the resulting emotion as bars.",
            inputs=[
                io.Combo.Input("emotion", options=list(EMOTIONS), default=OPTIONS.FORM_LABEL,
                               tooltip="Target emotion label (used when no reference and no curve is given)."),
                io.Float.Input("intensity", default=OPTIONS.intensity, min=OPTIONS.LIMITS["intensity"][0],
                               max=OPTIONS.LIMITS["intensity"][1], step=0.05,
                               display_mode=io.NumberDisplay.slider,
                               tooltip="How strongly the label's emotion is shown: 0 = neutral, 1 = full."),
                io.String.Input("curve", default="", multiline=True,
                                placeholder="0:neutral, 1.5:happy@0.9, 3:sad@0.6",
                                tooltip="Optional emotion curve over time: comma-separated TIME:EMOTION[@INTENSITY] "
                                        "keyframes, TIME in seconds from the clip start; linear in between. "
                                        "Overrides the label when not empty."),
                io.Image.Input("reference_image", optional=True,
                               tooltip="Optional photo of anyone's face showing the wanted emotion; its measured "
                                       "emotion becomes the target (first image of the batch)."),
                io.Video.Input("reference_video", optional=True,
                               tooltip="Optional driving clip: a video of anyone's face. Its emotion is measured "
                                       "on every frame and each source frame shows the clip's emotion at the same "
                                       "time (looping when the clip is shorter) — the paper's cross-ID protocol; "
                                       "a neural model encodes the clip's frames. Used when no reference image "
                                       "is connected."),
            ],
            outputs=[
                EmotionType.Output("target_emotion", display_name="emotion",
                                   tooltip="The target emotion (over time), for Render Face."),
            ],
        )

    @classmethod
    def execute(cls, emotion=OPTIONS.FORM_LABEL, intensity=OPTIONS.intensity, curve="", reference_image=None,
                reference_video=None) -> io.NodeOutput:
        if reference_image is not None:
            spec = pipeline.extract_emotion(reference=image_to_rgb(reference_image))
        elif isinstance(reference_video, SSERDClip) and not reference_video.whole:
            # a range of a file (Load Video (SSERD) with start/end/cap): that range drives the edit
            spec = pipeline.extract_emotion(reference=reference_video.info)
        elif reference_video is not None:
            spec = pipeline.extract_emotion(reference=video_path(reference_video))
        elif curve and curve.strip():
            spec = pipeline.extract_emotion(curve=curve)
        else:
            spec = pipeline.extract_emotion(label=emotion, intensity=intensity)
        return io.NodeOutput(spec, ui={"sserd_emotion": [emotion_ui(spec)]})
