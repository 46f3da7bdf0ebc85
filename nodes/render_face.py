"""Render Face: re-render the clip with the face showing the target emotion, speech kept."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import folder_paths
import comfy.model_management
from comfy_api.latest import io, ui

from sserd_core import pipeline
from sserd_core.emotion import EMOTIONS

from ._common import (CATEGORY, ComfyProgress, ContentType, EmotionType, FacesType, ModelType, connected_fingerprint,
                      file_video, output_connected, temp_path)
from ._images import ImageBatch
from .load_model import make_editor


def _mean(rows: np.ndarray) -> list:
    ok = ~np.isnan(rows).any(1)
    return [round(float(x), 4) for x in (rows[ok].mean(0) if ok.any() else np.zeros(rows.shape[1]))]


class RenderFace(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_RenderFace",
            display_name="Render Face",
            category=CATEGORY,
            description="Re-render every frame with the face showing the target emotion while the mouth keeps "
                        "the source's speech movements; the rest of the frame is untouched. Streams frame by "
                        "frame to a video file (no audio: add it with Mux Audio). Cancel stops it within a "
                        "frame and leaves no partial file.",
            inputs=[
                ContentType.Input("content", tooltip="The content track from Disentangle Content."),
                EmotionType.Input("emotion", tooltip="The target emotion from Extract Emotion."),
                ModelType.Input("model", optional=True,
                                tooltip="Optional backend from Load Model (SSERD); default: the built-in landmark "
                                        "editor on ComfyUI's device."),
                io.Int.Input("preview_frames", default=8, min=0, max=64,
                             tooltip="How many evenly spaced frames (source | edited) to show in the node after "
                                     "the render; 0 = none."),
                FacesType.Input("other_faces", optional=True,
                                tooltip="Optional: more faces of the same video, each with its own emotion (Add "
                                        "Face). Each frame's faces are edited in turn, each on its own track; a "
                                        "face not visible on a frame stays as it is there, the others are edited."),
            ],
            outputs=[
                io.Video.Output("video", display_name="video",
                                tooltip="The edited video (file-backed, video only — connect Mux Audio for sound)."),
                io.Video.Output("side_by_side", display_name="side_by_side",
                                tooltip="Source | edited side by side (video only). Written only when connected."),
                io.Image.Output("images", display_name="images",
                                tooltip="Edited frames as an IMAGE batch [N, H, W, 3] float 0..1. Only built when "
                                        "connected (memory grows with clip length)."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        """The cache key's extra part: which optional outputs (side_by_side, images) are connected."""
        return connected_fingerprint((1, 2))

    @classmethod
    def execute(cls, content, emotion, model=None, preview_frames=8, other_faces=None) -> io.NodeOutput:
        editor = model if model is not None else make_editor()
        out = temp_path("sserd_render")
        cmp = temp_path("sserd_side_by_side") if output_connected(cls, 1) else None
        preview_sub = f"sserd/previews_{uuid.uuid4().hex[:12]}" if preview_frames > 0 else None
        preview_dir = Path(folder_paths.get_temp_directory()) / preview_sub if preview_sub else None
        video = content.video
        batch = ImageBatch(content.n_frames, video.height, video.width) if output_connected(cls, 2) else None
        progress = ComfyProgress(content.n_frames)

        def sink(index, rgb):
            progress.show(rgb)
            if batch is not None:
                batch.put(index, rgb)

        # the node shows what the edit measured (its summary), so measure is on here
        result = pipeline.render_face(content, emotion, pipeline.Outputs(out, side_by_side=cmp, previews=preview_dir),
                                      pipeline.EditOptions(preview_n=preview_frames, measure=True), editor=editor,
                                      progress=progress, frame_sink=sink, other_faces=other_faces or ())
        comfy.model_management.soft_empty_cache()
        # source | edited frames, as ComfyUI names a file it shows (in its temp folder), with their time
        previews = [dict(ui.SavedResult(p.compare.name, preview_sub, io.FolderType.temp), index=p.index,
                         time=round(p.time, 3)) for p in result.previews]
        summary = {"labels": list(EMOTIONS), "frames": int(result.n_frames), "seconds": round(result.seconds, 2),
                   "backend": getattr(editor, "name", type(editor).__name__),
                   "target": _mean(result.target), "source": _mean(result.source_emotion),
                   "edited": _mean(result.edited_emotion)}
        if result.faces:  # several faces: what was asked and measured on each
            summary["faces"] = [{"face_index": f.face_index, "target": _mean(f.target), "source": _mean(f.source_emotion),
                                 "edited": _mean(f.edited_emotion)} for f in result.faces]
        return io.NodeOutput(file_video(out), file_video(cmp) if cmp else None,
                             batch.result() if batch is not None else None,
                             ui={"sserd_render": [summary], "sserd_previews": previews})
