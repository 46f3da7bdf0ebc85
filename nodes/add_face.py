"""Add Face: one more face of the same video with its own emotion, for Render Face's ``other_faces``."""

from __future__ import annotations

from comfy_api.latest import io

from sserd_core import pipeline
from sserd_core.pipeline.faces import check_same_clip

from ._common import CATEGORY, ContentType, EmotionType, FacesType


class AddFace(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_AddFace",
            display_name="Add Face",
            category=CATEGORY,
            description="A different emotion for another face of the same video: this face's content track (a "
                        "Disentangle Content set to its face index) and its target emotion. Chain one Add Face per "
                        "face (each into the next one's other_faces) and connect the last to Render Face's other_faces: every face is then edited on its "
                        "own track in the same render; frames where a face is not visible keep it as it is.",
            inputs=[
                ContentType.Input("content", tooltip="This face's content track: Disentangle Content on the same "
                                                     "video, with this face's index (0 = largest)."),
                EmotionType.Input("emotion", tooltip="The emotion this face should show (Extract Emotion)."),
                FacesType.Input("other_faces", optional=True,
                                tooltip="Faces added before (another Add Face's output), to edit together with this "
                                        "one."),
            ],
            outputs=[
                FacesType.Output("faces", display_name="faces",
                                 tooltip="These faces with their emotions, for Render Face's other_faces (or the "
                                         "next Add Face)."),
            ],
        )

    @classmethod
    def execute(cls, content, emotion, other_faces=None) -> io.NodeOutput:
        added = (*(other_faces or ()), pipeline.FaceEdit(content, emotion))
        if len(added) > 1:
            check_same_clip(added[0].content, added[1:])
        return io.NodeOutput(added)
