"""Load Video (SSERD): a video from ComfyUI's input folder, as a file-backed core ``VIDEO``.

The range (start / end / frame cap) is not cut into a new file: the ``VIDEO`` is the source
file plus the range (:class:`~nodes._clip.SSERDClip`), so Render Face decodes the source's
frames once and encodes once. Only a frame-rate change writes frames, losslessly.
"""

from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from sserd_core import media
from sserd_core.errors import SSERDError

from ._clip import load_clip, tag_audio
from ._common import CATEGORY, ComfyProgress, audio_to_core, connected_fingerprint, output_connected
from ._images import ImageBatch


def input_file(file: str) -> str:
    """The path of ``file`` as the file combo (or an annotated ``name [output]`` value) gives it.

    Refuses names that resolve outside ComfyUI's input (or output / temp) folder — ``../``,
    absolute paths, a symlink pointing out — so a prompt cannot read arbitrary files.
    """
    name, base = folder_paths.annotated_filepath(str(file))
    base = base or folder_paths.get_input_directory()
    path = os.path.join(base, name)
    root = os.path.realpath(base)
    if os.path.commonpath([os.path.realpath(path), root]) != root:
        raise SSERDError(f"'{file}' is not a file inside ComfyUI's input folder; upload the video there and pick it "
                         "from the list.")
    return path


def _input_videos() -> list[str]:
    """The videos in the input folder that :func:`input_file` accepts: a symlink that points out of the folder
    is not offered (it would only be refused when run)."""
    d = folder_paths.get_input_directory()
    root = os.path.realpath(d)
    files = [f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))
             and os.path.commonpath([os.path.realpath(os.path.join(d, f)), root]) == root]
    return sorted(folder_paths.filter_files_content_types(files, ["video"]))


class LoadVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_LoadVideo",
            display_name="Load Video (SSERD)",
            category=CATEGORY,
            description="Load a talking-face video from ComfyUI's input folder (or upload one). The video stays "
                        "on disk and is streamed frame by frame; frames are decoded into an IMAGE batch only if "
                        "the images output is connected.",
            inputs=[
                io.Combo.Input("file", options=_input_videos(), upload=io.UploadType.video,
                               tooltip="A video file in ComfyUI's input folder (MP4, MOV, MKV, WebM). Use the "
                                       "upload button to add one."),
                io.Float.Input("start_time", default=0.0, min=0.0, max=86400.0, step=0.1,
                               tooltip="Start of the clip to use, in seconds from the beginning of the file."),
                io.Float.Input("end_time", default=0.0, min=0.0, max=86400.0, step=0.1,
                               tooltip="End of the clip to use, in seconds; 0 = to the end of the file."),
                io.Int.Input("frame_cap", default=0, min=0, max=1_000_000,
                             tooltip="Use at most this many frames from the start time; 0 = no limit."),
                io.Float.Input("force_fps", default=0.0, min=0.0, max=240.0, step=1.0,
                               tooltip="Resample to this frame rate (frames are dropped or repeated); "
                                       "0 = keep the file's own frame rate."),
            ],
            outputs=[
                io.Video.Output("video", display_name="video",
                                tooltip="The selected clip as a file-backed VIDEO (with its audio). SSERD nodes read "
                                        "the range straight from the source file (nothing re-encoded)."),
                io.Audio.Output("audio", display_name="audio",
                                tooltip="The clip's audio track (None if the file has no audio)."),
                io.Float.Output("fps", display_name="fps", tooltip="Frame rate of the clip, frames per second."),
                io.Int.Output("frame_count", display_name="frame_count",
                              tooltip="Number of frames in the clip."),
                io.Image.Output("images", display_name="images",
                                tooltip="All frames as an IMAGE batch [N, H, W, 3] float 0..1. Only decoded when "
                                        "connected: 10 s of 720p is 3 GB of memory."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, file, start_time=0.0, end_time=0.0, frame_cap=0, force_fps=0.0) -> io.NodeOutput:
        path = input_file(file)
        clip = load_clip(path, start_time, end_time if end_time > 0 else None, frame_cap, force_fps,
                         ComfyProgress() if force_fps > 0 else None)
        info = clip.info
        audio = None
        if clip.audio is not None:
            # always decoded (small next to frames): ComfyUI caches this node's outputs by its inputs alone,
            # so an output left out because nothing used it would still be missing once something does
            src, a_start, a_end = clip.audio
            audio = tag_audio(audio_to_core(media.read_audio(src, a_start, a_end)), src, a_start, a_end)
        images = ImageBatch.from_video(info) if output_connected(cls, 4) else None
        return io.NodeOutput(clip, audio, info.fps_float, info.n_frames, images)

    @classmethod
    def fingerprint_inputs(cls, file, **kwargs):
        try:
            mtime = os.path.getmtime(input_file(file))
        except (SSERDError, OSError):
            return float("nan")  # validate_inputs reports it
        return mtime, connected_fingerprint((4,))  # the images output is built only when connected

    @classmethod
    def validate_inputs(cls, file):  # only `file`: ComfyUI files the message under every input this takes
        try:
            path = input_file(file)
        except SSERDError as exc:
            return str(exc)
        if not os.path.isfile(path):
            return f"Video file not found in the input folder: {file}"
        return True
