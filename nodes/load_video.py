"""Load Video (SSERD): a video from ComfyUI's input folder, as a file-backed core ``VIDEO``."""

from __future__ import annotations

import os
from fractions import Fraction

import folder_paths
from comfy_api.latest import io

from sserd_core import media, pipeline
from sserd_core.errors import SSERDError

from ._common import CATEGORY, ComfyProgress, audio_to_core, file_video, output_connected, temp_path
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
    d = folder_paths.get_input_directory()
    files = [f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))]
    return sorted(folder_paths.filter_files_content_types(files, ["video"]))


def conform(path: str, start: float, end, max_frames: int, fps: float, progress) -> str:
    """Write the selected range (and, if ``fps`` > 0, that frame rate) of ``path`` to a new
    temp file with its audio, so every downstream node — SSERD or not — sees exactly it.

    Frames stream through one at a time; a new rate keeps, for each output time
    ``k / fps``, the source frame shown at that moment (frames are dropped or repeated).
    """
    info = pipeline.load_video(path, start=start or None, end=end, max_frames=max_frames or None)
    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else info.fps
    silent, out = temp_path("sserd_clip_video"), temp_path("sserd_clip")
    try:
        with media.VideoWriter(str(silent), info.width, info.height, rate) as writer:
            k, held, t_end = 0, None, 0.0
            for fr in media.iter_frames(info):
                if fps <= 0:
                    writer.write(fr.rgb, fr.time)
                else:
                    while held is not None and k / float(rate) < fr.time - 1e-6:
                        writer.write(held, k / float(rate))
                        k += 1
                    held = fr.rgb
                t_end = fr.time + 1.0 / info.fps_float
                progress("trimming", fr.index + 1, info.n_frames)
            while held is not None and k / float(rate) < t_end - 1e-6:
                writer.write(held, k / float(rate))
                k += 1
        duration = t_end
        pipeline.mux_audio(silent, path if info.has_audio else None, out,
                           audio_start=info.start, audio_end=info.start + duration, inputs=(path,))
    finally:
        if silent.exists():
            silent.unlink()
    return str(out)


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
                                tooltip="The selected clip as a file-backed VIDEO (with its audio)."),
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
        end = end_time if end_time > 0 else None
        if start_time > 0 or end is not None or frame_cap > 0 or force_fps > 0:
            path = conform(path, start_time, end, frame_cap, force_fps, ComfyProgress())
        info = pipeline.load_video(path)
        audio = audio_to_core(media.read_audio(path)) if output_connected(cls, 1) else None
        images = ImageBatch.from_video(info) if output_connected(cls, 4) else None
        return io.NodeOutput(file_video(path), audio, info.fps_float, info.n_frames, images)

    @classmethod
    def fingerprint_inputs(cls, file, **kwargs):
        try:
            return os.path.getmtime(input_file(file))
        except (SSERDError, OSError):
            return float("nan")  # validate_inputs reports it

    @classmethod
    def validate_inputs(cls, file, **kwargs):
        try:
            path = input_file(file)
        except SSERDError as exc:
            return str(exc)
        if not os.path.isfile(path):
            return f"Video file not found in the input folder: {file}"
        return True
