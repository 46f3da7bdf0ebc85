"""Audio: decode a range of a stream, and mux audio beside an already encoded video stream
(stream-copied when the container takes the codec, else re-encoded)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

from .. import stop
from .read import _open
from .write import atomic_output

# Audio codecs each output container can carry without re-encoding.
_COPYABLE_AUDIO = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    ".m4v": {"aac", "mp3", "alac", "ac3", "eac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".mkv": None,  # anything
    ".webm": {"opus", "vorbis"},
}
_AUDIO_CODEC = {".webm": "libopus"}  # everything else re-encodes to AAC


@dataclass
class AudioData:
    """Decoded audio: ``waveform`` float32 ``[channels, samples]`` in -1..1 at ``sample_rate`` Hz."""

    waveform: np.ndarray
    sample_rate: int


def read_audio(path: str | os.PathLike, start: float = 0.0, end: Optional[float] = None,
               stream: int = 0) -> Optional[AudioData]:
    """Decode audio stream ``stream`` (0 = the first) of ``path`` between ``start`` and ``end`` seconds
    (None if there is no such stream)."""
    with _open(path) as c:
        if len(c.streams.audio) <= stream:
            return None
        a = c.streams.audio[stream]
        sr = a.codec_context.sample_rate
        chunks = []
        t0 = a.start_time or 0
        for frame in c.decode(a):
            arr = frame.to_ndarray()
            if frame.format.is_planar:
                arr = arr.reshape(len(frame.layout.channels), -1)
            else:
                arr = arr.reshape(-1, len(frame.layout.channels)).T
            if arr.dtype.kind == "i":
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
            t = float((frame.pts - t0) * a.time_base) if frame.pts is not None else None
            chunks.append((t, arr.astype(np.float32)))
    if not chunks:
        return AudioData(np.zeros((1, 0), np.float32), sr)
    wave = np.concatenate([c for _, c in chunks], axis=1)
    first_t = chunks[0][0] or 0.0
    s = max(0, int(round((start - first_t) * sr)))
    e = wave.shape[1] if end is None else max(s, int(round((end - first_t) * sr)))
    return AudioData(np.ascontiguousarray(wave[:, s:e]), sr)


def mux_audio(video_path: str | os.PathLike, audio, output_path: str | os.PathLike, *,
              audio_start: float = 0.0, audio_end: Optional[float] = None, inputs: tuple = ()) -> Path:
    """Write ``output_path`` = the video stream of ``video_path`` (copied, not re-encoded) + ``audio``.

    ``audio`` is a media file path (every audio stream is kept: stream-copied when the
    output container can carry the codec and no trimming is asked for, else re-encoded),
    an :class:`AudioData`, or None (video only, with a warning). The video is cut to the
    audio's length never; the audio is cut to [``audio_start``, ``audio_end``).
    """
    out = Path(output_path)
    ext = out.suffix.lower()
    ain = None
    with atomic_output(out, inputs=tuple(inputs) + (video_path,)) as tmp:
        try:
            with av.open(str(video_path)) as vin, av.open(tmp, mode="w", format=_format_for(ext)) as oc:
                vsrc = vin.streams.video[0]
                vout = oc.add_stream_from_template(vsrc)
                if vsrc.average_rate:
                    vout.codec_context.framerate = vsrc.average_rate  # lets MKV/WebM store the frame rate
                adata = None
                ain = None
                encoded: list = []  # (output stream, AudioData) pairs that are encoded
                if isinstance(audio, AudioData):
                    adata = audio
                elif audio is not None:
                    ain = _open(audio)
                    if not ain.streams.audio:
                        ain.close()
                        ain = None
                        warnings.warn(f"{Path(audio).name} has no audio stream; the output has no audio.")
                if ain is not None:
                    _say_what_is_left_out(ain, Path(audio).name)
                copied: list = []  # (source stream, output stream) pairs that are stream-copied
                if ain is not None:
                    allowed = _COPYABLE_AUDIO.get(ext, set())
                    trimmed = audio_start > 0 or audio_end is not None
                    # every audio track is kept: each one stream-copied when the container takes its codec
                    # and nothing is cut, else decoded (and cut) and re-encoded
                    for k, asrc in enumerate(ain.streams.audio):
                        if (allowed is None or asrc.codec_context.name in allowed) and not trimmed:
                            copied.append((asrc, oc.add_stream_from_template(asrc)))
                        else:
                            data = read_audio(audio, audio_start, audio_end, stream=k)
                            if data is not None and data.waveform.shape[1] > 0:
                                encoded.append((_add_audio_encoder(oc, ext, data), data))
                if adata is not None and adata.waveform.shape[1] > 0:
                    encoded.append((_add_audio_encoder(oc, ext, adata), adata))
                aac = [d.codec_context.sample_rate for _, d in copied if d.codec_context.name == "aac"] + \
                    [st.codec_context.sample_rate for st, _ in encoded if st.codec_context.name == "aac"]
                if ext == ".mkv" and aac:
                    warnings.warn(f"{out.name}: Matroska cannot mark AAC's priming samples (the encoder delay, 1024 "
                                  "samples for FFmpeg's AAC encoder), so players start its audio that much late "
                                  f"({1024 / (aac[0] or 44100) * 1000:.0f} ms at {aac[0] / 1000:g} kHz); the samples "
                                  "are the source's otherwise. Write .mp4 or .mov for sample-identical audio.")
                # video packets (copied)
                for pkt in vin.demux(vsrc):
                    stop.check()
                    if pkt.size == 0 or pkt.pts is None:
                        continue
                    _move_packet(pkt, vout)
                    oc.mux(pkt)
                if copied:
                    route = {src.index: dst for src, dst in copied}
                    for pkt in ain.demux(*[src for src, _ in copied]):
                        stop.check()
                        if pkt.size == 0 or pkt.pts is None:
                            continue
                        _move_packet(pkt, route[pkt.stream.index])
                        oc.mux(pkt)
                for stream, data in encoded:
                    _encode_audio(oc, stream, data)
        finally:
            if ain is not None:
                ain.close()
    return out


def _say_what_is_left_out(container, name: str) -> None:
    """Warn when the source holds streams the output does not carry (subtitles, attachments such as fonts or
    cover art, data tracks): they are left out, not silently."""
    counts: dict = {}
    videos = 0
    for st in list(container.streams) + list(getattr(container.streams, "attachments", ())):
        kind = getattr(st, "type", "")
        if kind == "video":
            videos += 1
            if videos == 1:
                continue
            kind = "further video (cover art, a second angle)"
        if kind in ("subtitle", "attachment", "data") or kind.startswith("further video"):
            counts[kind] = counts.get(kind, 0) + 1
    if counts:
        what = ", ".join(f"{n} {k} stream{'s' if n != 1 else ''}" for k, n in counts.items())
        warnings.warn(f"{name} also holds {what}; the output carries its video and audio only (add them back with "
                      "ffmpeg if needed).")


def _move_packet(pkt, stream) -> None:
    """Re-home a demuxed packet on an output stream; its timestamps are rescaled when muxed."""
    if pkt.dts is None:  # Matroska stores presentation times only
        pkt.dts = pkt.pts
    tb = pkt.time_base
    pkt.stream = stream
    pkt.time_base = tb


def _format_for(ext: str) -> Optional[str]:
    return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".m4v": "mp4"}.get(ext)


def _add_audio_encoder(oc, ext: str, adata: AudioData):
    codec = _AUDIO_CODEC.get(ext, "aac")
    sr = adata.sample_rate if codec != "libopus" else 48000
    stream = oc.add_stream(codec, rate=sr)
    stream.layout = "stereo" if adata.waveform.shape[0] >= 2 else "mono"
    stream.bit_rate = 192000
    return stream


def _encode_audio(oc, stream, adata: AudioData) -> None:
    wave = adata.waveform
    if stream.layout.name == "stereo" and wave.shape[0] == 1:
        wave = np.repeat(wave, 2, axis=0)
    wave = np.ascontiguousarray(np.clip(wave[: 2 if stream.layout.name == "stereo" else 1], -1, 1).astype(np.float32))
    layout = stream.layout.name
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=stream.codec_context.sample_rate)
    hop = 1024 * 8
    pts = 0
    for s in range(0, wave.shape[1], hop):
        chunk = wave[:, s:s + hop]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = adata.sample_rate
        frame.pts = pts
        frame.time_base = Fraction(1, adata.sample_rate)
        pts += chunk.shape[1]
        for rf in resampler.resample(frame):
            for packet in stream.encode(rf):
                oc.mux(packet)
    for rf in resampler.resample(None):
        for packet in stream.encode(rf):
            oc.mux(packet)
    for packet in stream.encode(None):
        oc.mux(packet)

