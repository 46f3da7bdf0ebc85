"""The node pack inside a real ComfyUI server (started by this module), and in a real browser.

Needs the ComfyUI source tree (``$COMFYUI_DIR``, default ``../shared/comfyui``); the
server's venv is created on first use by ``scripts/setup_comfyui_venv.sh`` (~4 min once,
seconds after). The input folder gets a 2 s cut of ``assets/sample.mp4`` *named*
``sample.mp4`` and a reference face named ``reference_happy.png``, so the shipped
workflows run exactly as a user would run them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import comfyui_helpers as H
from sserd_core.controls import CONTROL_NAMES, CONTROLS, format_controls, parse_controls

pytestmark = pytest.mark.slow  # a real ComfyUI server and a browser

PACK_MODULE = f"custom_nodes.{H.PACK_NAME}"
CLIP_SECONDS = 2.0
SAMPLE = H.REPO / "assets" / "sample.mp4"

# node id -> (display name, required inputs, optional inputs, outputs); types as /object_info reports them
EXPECTED = {
    "SSERD_LoadVideo": ("Load Video (SSERD)",
                        {"file": "COMBO", "start_time": "FLOAT", "end_time": "FLOAT", "frame_cap": "INT",
                         "force_fps": "FLOAT"}, {},
                        [("video", "VIDEO"), ("audio", "AUDIO"), ("fps", "FLOAT"), ("frame_count", "INT"),
                         ("images", "IMAGE")]),
    "SSERD_DisentangleContent": ("Disentangle Content", {"video": "VIDEO", "face_index": "INT"}, {},
                                 [("content", "SSERD_CONTENT")]),
    "SSERD_ExtractEmotion": ("Extract Emotion", {"emotion": "COMBO", "intensity": "FLOAT", "curve": "STRING"},
                             {"reference_image": "IMAGE", "reference_video": "VIDEO"}, [("emotion", "SSERD_EMOTION")]),
    "SSERD_ExpressionControls": ("Expression Controls", {name: "FLOAT" for name in CONTROL_NAMES},
                                 {"keyframes": "STRING", "emotion": "SSERD_EMOTION", "content": "SSERD_CONTENT",
                                  "preview_time": "FLOAT"},
                                 [("emotion", "SSERD_EMOTION"), ("preview", "IMAGE"), ("note", "STRING")]),
    "SSERD_RenderFace": ("Render Face", {"content": "SSERD_CONTENT", "emotion": "SSERD_EMOTION", "preview_frames": "INT"},
                         {"model": "SSERD_MODEL", "other_faces": "SSERD_FACES"},
                         [("video", "VIDEO"), ("side_by_side", "VIDEO"), ("images", "IMAGE")]),
    "SSERD_MuxAudio": ("Mux Audio", {"video": "VIDEO"}, {"audio": "AUDIO"}, [("video", "VIDEO")]),
    "SSERD_AddFace": ("Add Face", {"content": "SSERD_CONTENT", "emotion": "SSERD_EMOTION"},
                      {"other_faces": "SSERD_FACES"},
                      [("faces", "SSERD_FACES")]),
    "SSERD_LoadModel": ("Load Model (SSERD)", {"backend": "COMBO", "repo_id": "STRING", "device": "COMBO",
                                               "grid_step": "INT", "interpolation": "COMBO"},
                        {"dtype": "COMBO", "batch_size": "INT", "noise_mode": "COMBO", "max_face_size": "INT"},
                        [("model", "SSERD_MODEL")]),
}
WORKFLOW_NAMES = ["sserd_label_edit", "sserd_cross_identity", "sserd_emotion_curve", "sserd_two_faces",
                  "sserd_expression_controls"]


# ---------------------------------------------------------------------- media the tests make

def write_clip(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``src`` (re-encoded video, its audio cut to match)."""
    from sserd_core import pipeline

    return pipeline.write_clip(pipeline.load_video(src, end=seconds), dst, (str(src), 0.0, seconds))


def write_no_face_clip(dst: Path, n: int = 20, size: int = 160) -> Path:
    """A moving colour gradient with a tone: a valid video with audio but no face."""
    from fractions import Fraction

    from sserd_core import media

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    silent = dst.with_name(".silent_" + dst.name)
    with media.VideoWriter(str(silent), size, size, Fraction(25)) as w:
        for i in range(n):
            rgb = np.stack([(xx + 4 * i) % 256, (yy * 1.5) % 256, np.full_like(xx, 96)], -1).astype(np.uint8)
            w.write(rgb, i / 25)
    sr = 22050
    t = np.arange(int(sr * n / 25)) / sr
    media.mux_audio(silent, media.AudioData((0.2 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32), sr), dst)
    silent.unlink()
    return dst


def write_corrupt_clip(src: Path, dst: Path) -> Path:
    """The first 4 kB of a real MP4 followed by garbage: a truncated, undecodable file."""
    head = src.read_bytes()[:4096]
    dst.write_bytes(head + np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    return dst


def reference_face() -> Path:
    """A smiling face of another identity (the project's asset; matplotlib's sample portrait as a stand-in)."""
    for name in ("reference_happy.png", "astronaut_face.png"):
        asset = H.REPO / "assets" / name
        if asset.exists():
            return asset
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


# ---------------------------------------------------------------------- the server

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (H.comfyui_dir() / "main.py").exists():
        if "COMFYUI_DIR" in os.environ:
            pytest.fail(f"COMFYUI_DIR={os.environ['COMFYUI_DIR']} has no main.py")
        pytest.skip(f"no ComfyUI source tree at {H.comfyui_dir()} (set COMFYUI_DIR to run the ComfyUI tests)")
    assert SAMPLE.exists(), "assets/sample.mp4 is missing"
    python = H.ensure_venv()
    base = tmp_path_factory.mktemp("comfyui")
    srv = H.ComfyServer(python, base)
    write_clip(SAMPLE, srv.input_dir / "sample.mp4", CLIP_SECONDS)
    # the cross-identity workflow: Grace Hopper's clip + the astronaut's smiling portrait
    write_clip(H.REPO / "assets" / "sample_hopper.mp4", srv.input_dir / "sample_hopper.mp4", CLIP_SECONDS)
    from PIL import Image

    Image.open(reference_face()).convert("RGB").save(srv.input_dir / "reference_happy.png")
    Image.open(H.REPO / "assets" / "astronaut_face.png").convert("RGB").save(srv.input_dir / "astronaut_face.png")
    write_no_face_clip(srv.input_dir / "no_face.mp4")
    from helpers import two_face_clip

    # the two-faces workflow: Grace Hopper large, the astronaut small, with sample.mp4's 2 s of audio
    two_face_clip(srv.input_dir / "two_faces.mp4", end=CLIP_SECONDS, audio=srv.input_dir / "sample.mp4")
    write_corrupt_clip(SAMPLE, srv.input_dir / "corrupt.mp4")
    # a checkpoint folder in models/sserd/ (its contents are never loaded by these tests)
    ckpt = base / "models" / "sserd" / "tiny_sserd"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"_class_name": "SSERDNet"}))
    # and a real (tiny, randomly initialised) neural SSERD model, saved as `sserd convert` saves one
    from models_helpers import tiny_net

    tiny_net(seed=3).save_pretrained(str(base / "models" / "sserd" / "tiny_neural"))
    # first-run dialogs of the frontend off, for the browser test
    settings = base / "user" / "default"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "comfy.settings.json").write_text(json.dumps(
        {"Comfy.TutorialCompleted": True, "Comfy.Notification.ShowVersionUpdates": False}))
    srv.start()
    yield srv
    srv.stop()
    H.ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(srv.log_path, H.ARTIFACTS / "comfyui_server.log")


@pytest.fixture(scope="module")
def object_info(server):
    return server.object_info()


@pytest.fixture(scope="module")
def clip_frames(server):
    return H.probe(server.input_dir / "sample.mp4")["frames"]


def api_of(name: str, object_info: dict) -> dict:
    return H.ui_to_api(H.load_workflow(name), object_info)


def check_video(path: Path, frames: int, seconds: float) -> dict:
    assert path.exists() and path.suffix == ".mp4", path
    info = H.probe(path)
    assert info["frames"] == frames, info
    assert info["video_codec"] == "h264", info
    assert info["audio_codec"] == "aac", f"{path.name} has no audio: {info}"
    assert abs(info["audio_seconds"] - seconds) < 0.15, info
    return info


def saved(server, entry: dict) -> list[Path]:
    files = [f for f in server.output_files(entry) if f.suffix == ".mp4"]
    assert files, f"no video saved: {json.dumps(entry.get('outputs'))[:1000]}"
    return files


# ---------------------------------------------------------------------- /object_info

def test_pack_loads_without_import_errors(server):
    log = server.log()
    pack_lines = [line for line in log.splitlines() if H.PACK_NAME in line]
    assert any(line.strip().endswith(f"custom_nodes/{H.PACK_NAME}") for line in pack_lines), log[-3000:]
    assert not [line for line in pack_lines if "IMPORT FAILED" in line or "Cannot import" in line
                or "Error while calling comfy_entrypoint" in line], "\n".join(pack_lines)
    assert f"{H.PACK_NAME}/nodes" not in log and f"{H.PACK_NAME}/sserd_core" not in log, \
        "a traceback through the pack in the server log"


def test_object_info_lists_every_node_with_its_sockets(object_info):
    ours = sorted(k for k, v in object_info.items() if v["python_module"] == PACK_MODULE)
    assert ours == sorted(EXPECTED)
    for node_id, (display, required, optional, outputs) in EXPECTED.items():
        info = object_info[node_id]
        assert info["display_name"] == display
        assert info["category"] == "SSERD"
        assert info["description"]
        got_req = {k: v[0] for k, v in info["input"]["required"].items()}
        got_opt = {k: v[0] for k, v in info["input"].get("optional", {}).items()}
        assert got_req == required, node_id
        assert got_opt == optional, node_id
        assert list(zip(info["output_name"], info["output"])) == outputs, node_id
        for name, spec in {**info["input"]["required"], **info["input"].get("optional", {})}.items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert all(info["output_tooltips"]), f"{node_id} has an output without tooltip"
    assert object_info["SSERD_ExtractEmotion"]["input"]["required"]["emotion"][1]["options"] == [
        "neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised"]
    assert "sample.mp4" in object_info["SSERD_LoadVideo"]["input"]["required"]["file"][1]["options"]
    assert object_info["SSERD_LoadVideo"]["input"]["required"]["file"][1].get("video_upload") is True


def test_no_node_id_collides_with_core(object_info):
    # ComfyUI silently drops a pack's node whose id a core node already has; every id is
    # prefixed, and each of ours is served from the pack, not from core.
    for node_id in EXPECTED:
        assert node_id.startswith("SSERD_")
        assert object_info[node_id]["python_module"] == PACK_MODULE
    core = {k for k, v in object_info.items() if not v["python_module"].startswith("custom_nodes.")}
    assert {"LoadVideo", "SaveVideo", "CreateVideo", "GetVideoComponents", "LoadImage"} <= core
    assert not core & set(EXPECTED)


def test_workflows_are_the_packs_templates(server):
    templates = server.get("/workflow_templates")
    assert sorted(templates.get(H.PACK_NAME, [])) == sorted(WORKFLOW_NAMES)
    for name in WORKFLOW_NAMES:
        served = server.get(f"/api/workflow_templates/{H.PACK_NAME}/{name}.json")
        assert served == H.load_workflow(name)


def test_models_folder_is_registered(server):
    assert "sserd" in server.get("/models")


# ---------------------------------------------------------------------- prompts

@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_workflow_runs_to_a_playable_mp4_with_audio(server, object_info, clip_frames, name):
    entry = server.run(api_of(name, object_info))
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    files = saved(server, entry)
    assert len(files) == (2 if name == "sserd_cross_identity" else 1)
    source = server.input_dir / {"sserd_cross_identity": "sample_hopper.mp4", "sserd_two_faces": "two_faces.mp4"}.get(
        name, "sample.mp4")
    for f in files:
        check_video(f, clip_frames, CLIP_SECONDS)
        # the audio is the input file's, bit for bit: Mux Audio copies the stream it came from
        assert audio_samples(f).tobytes() == audio_samples(source).tobytes(), f.name
        assert audio_packets(f) == audio_packets(source), f.name
    outputs = entry["outputs"]
    render = next(v for v in outputs.values() if "sserd_render" in v)
    summary = render["sserd_render"][0]
    assert summary["frames"] == clip_frames
    assert len(render["sserd_previews"]) == 8
    for p in render["sserd_previews"]:
        assert (server.temp_dir / p["subfolder"] / p["filename"]).exists()
    if name == "sserd_expression_controls":  # no Extract Emotion: the controls alone, shown with a preview
        shown = next(v for v in outputs.values() if "sserd_controls" in v)
        assert shown["sserd_controls"][0]["controls"] == "brow_inner=0.5, smile=-0.8", shown
        assert len(shown["images"]) == 1 and (server.temp_dir / shown["images"][0]["subfolder"]
                                               / shown["images"][0]["filename"]).exists()
        return
    emotion = next(v for v in outputs.values() if "sserd_emotion" in v)["sserd_emotion"][0]
    expected_source = {"sserd_label_edit": "label", "sserd_cross_identity": "reference",
                       "sserd_emotion_curve": "curve", "sserd_two_faces": "label"}[name]
    assert emotion["source"] == expected_source
    if name == "sserd_emotion_curve":
        assert [k[0] for k in emotion["keyframes"]] == [0.0, 2.0, 4.5, 7.0]
    if name == "sserd_two_faces":  # face 0 happy, face 1 (through Add Face) sad
        assert [(f["face_index"], f["target"][4], f["target"][5]) for f in summary["faces"]] == [(0, 1.0, 0.0),
                                                                                              (1, 0.0, 1.0)]


def test_side_by_side_is_twice_as_wide(server):
    files = sorted((server.output_dir / "sserd").glob("cross_identity_*.mp4"))
    sbs = [f for f in files if "side_by_side" in f.name]
    edit = [f for f in files if "side_by_side" not in f.name]
    assert sbs and edit
    assert H.probe(sbs[-1])["width"] == 2 * H.probe(edit[-1])["width"]


def test_core_load_video_to_sserd_to_core_save_video(server, clip_frames):
    """Core LoadVideo → SSERD nodes → core SaveVideo; core AUDIO (GetVideoComponents) into Mux
    Audio; Render Face's IMAGE output into core CreateVideo."""
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "sample.mp4"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "SSERD_DisentangleContent", "inputs": {"video": ["1", 0], "face_index": 0}},
        "4": {"class_type": "SSERD_ExtractEmotion", "inputs": {"emotion": "sad", "intensity": 0.7, "curve": ""}},
        "5": {"class_type": "SSERD_RenderFace", "inputs": {"content": ["3", 0], "emotion": ["4", 0], "preview_frames": 0}},
        "6": {"class_type": "SSERD_MuxAudio", "inputs": {"video": ["5", 0], "audio": ["2", 1]}},
        "7": {"class_type": "SaveVideo", "inputs": {"video": ["6", 0], "filename_prefix": "interop/core_save",
                                                   "format": "auto", "codec": "auto"}},
        "8": {"class_type": "CreateVideo", "inputs": {"images": ["5", 2], "fps": 25.0, "audio": ["2", 1]}},
        "9": {"class_type": "SaveVideo", "inputs": {"video": ["8", 0], "filename_prefix": "interop/from_images",
                                                   "format": "mp4", "codec": "h264"}},
        # an in-memory core VIDEO (Create Video) into an SSERD node
        "10": {"class_type": "SSERD_MuxAudio", "inputs": {"video": ["8", 0], "audio": ["2", 1]}},
        "11": {"class_type": "SaveVideo", "inputs": {"video": ["10", 0], "filename_prefix": "interop/in_memory",
                                                    "format": "auto", "codec": "auto"}},
    }
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    files = {f.name.split("_0")[0]: f for f in saved(server, entry)}
    assert set(files) == {"core_save", "from_images", "in_memory"}
    check_video(files["core_save"], clip_frames, CLIP_SECONDS)
    check_video(files["in_memory"], clip_frames, CLIP_SECONDS)
    from_images = H.probe(files["from_images"])
    assert from_images["frames"] == clip_frames and from_images["audio_codec"] is not None
    # the IMAGE batch holds the edited frames: the re-encoded copy matches the SSERD file
    a, b = first_frame(files["core_save"]), first_frame(files["from_images"])
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 4.0
    src = first_frame(server.input_dir / "sample.mp4")
    assert np.abs(a.astype(int) - src.astype(int)).mean() > 0.2, "the edit changed nothing"


def first_frame(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def audio_samples(path: Path) -> np.ndarray:
    """Every decoded sample of the first audio stream, [channels, samples] as the decoder gives them."""
    import av

    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(len(f.layout.channels), -1) for f in c.decode(audio=0)], axis=1)


def audio_packets(path: Path) -> list:
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def all_frames(path: Path) -> list:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_load_video_range_cap_and_frame_rate(server):
    prompt = {
        "1": {"class_type": "SSERD_LoadVideo", "inputs": {"file": "sample.mp4", "start_time": 0.4, "end_time": 0.0,
                                                          "frame_cap": 20, "force_fps": 12.5}},
        "2": {"class_type": "SaveVideo", "inputs": {"video": ["1", 0], "filename_prefix": "trim/clip",
                                                   "format": "auto", "codec": "auto"}},
        # its IMAGE and AUDIO outputs, through core Create Video
        "3": {"class_type": "CreateVideo", "inputs": {"images": ["1", 4], "fps": ["1", 2], "audio": ["1", 1]}},
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "trim/images",
                                                   "format": "mp4", "codec": "h264"}},
    }
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    files = {f.name.split("_0")[0]: f for f in saved(server, entry)}
    info = H.probe(files["clip"])
    # 20 frames at 25 fps from 0.4 s = 0.8 s; at 12.5 fps that is 10 frames
    assert info["frames"] == 10 and abs(info["fps"] - 12.5) < 1e-6, info
    assert abs(info["audio_seconds"] - 0.8) < 0.1, info
    images = H.probe(files["images"])
    assert images["frames"] == 10 and abs(images["fps"] - 12.5) < 1e-6 and images["audio_codec"], images


@pytest.mark.parametrize("force_fps", [0.0, 12.5])
def test_an_edit_of_a_range_is_encoded_once_from_the_source(server, force_fps, tmp_path):
    """Load Video (SSERD) with a range (and a frame-rate change) writes no lossy clip: Render Face
    decodes the source's frames and encodes once, so the result is one libx264 veryfast crf 18
    encode of the same edit of the decoded source frames, and outside the face it is as close to
    the source as a direct decode-and-encode with those settings (see tests/generation_helpers.py)."""
    from generation_helpers import check_one_generation, one_generation

    prompt = edit_prompt("sample.mp4", "happy", 0.8, prefix=f"once/edit_{int(force_fps)}")
    prompt["1"]["inputs"].update(start_time=0.4, frame_cap=20, force_fps=force_fps)
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    edited = saved(server, entry)[0]
    # Render Face's default editor: pipeline.make_editor's landmark editor on ComfyUI's device (the CPU here);
    # the single-encode reference is rendered with the server's own python (same libraries)
    report = one_generation(edited, server.input_dir / "sample.mp4", start=0.4, max_frames=20, fps=force_fps,
                            emotion="happy@0.8", device="cpu", python=str(server.python), scratch=tmp_path)
    H.ARTIFACTS.mkdir(exist_ok=True)
    (H.ARTIFACTS / f"comfyui_one_generation_fps{int(force_fps)}.json").write_text(json.dumps(report, indent=1))
    assert report["frames"] == (10 if force_fps else 20)
    check_one_generation(report, f"ComfyUI, force_fps={force_fps}")
    # the sound is the source's range (cut, so encoded once from the decoded samples)
    assert abs(H.probe(edited)["audio_seconds"] - report["frames"] / (force_fps or 25.0)) < 0.1


def edit_prompt(file: str, emotion: str = "happy", intensity: float = 0.8, prefix: str = "sserd/edit") -> dict:
    return {
        "1": {"class_type": "SSERD_LoadVideo", "inputs": {"file": file, "start_time": 0.0, "end_time": 0.0,
                                                          "frame_cap": 0, "force_fps": 0.0}},
        "2": {"class_type": "SSERD_DisentangleContent", "inputs": {"video": ["1", 0], "face_index": 0}},
        "3": {"class_type": "SSERD_ExtractEmotion", "inputs": {"emotion": emotion, "intensity": intensity, "curve": ""}},
        "4": {"class_type": "SSERD_RenderFace", "inputs": {"content": ["2", 0], "emotion": ["3", 0], "preview_frames": 2}},
        "5": {"class_type": "SSERD_MuxAudio", "inputs": {"video": ["4", 0], "audio": ["1", 1]}},
        "6": {"class_type": "SaveVideo", "inputs": {"video": ["5", 0], "filename_prefix": prefix,
                                                   "format": "auto", "codec": "auto"}},
    }


def two_face_prompt(prefix: str = "sserd/two_faces", first: str = "happy", second: str = "sad") -> dict:
    """Face 0 ``first`` and face 1 ``second`` on the two-face clip: a Disentangle Content and an Extract Emotion per
    face, the second face through Add Face into Render Face's other_faces."""
    prompt = edit_prompt("two_faces.mp4", first, 1.0, prefix=prefix)
    prompt["7"] = {"class_type": "SSERD_DisentangleContent", "inputs": {"video": ["1", 0], "face_index": 1}}
    prompt["8"] = {"class_type": "SSERD_ExtractEmotion", "inputs": {"emotion": second, "intensity": 1.0, "curve": ""}}
    prompt["9"] = {"class_type": "SSERD_AddFace", "inputs": {"content": ["7", 0], "emotion": ["8", 0]}}
    prompt["4"]["inputs"]["other_faces"] = ["9", 0]
    return prompt


def test_two_faces_each_with_its_own_emotion(server, tmp_path):
    """Add Face → Render Face's other_faces gives the API's edit of both faces (the same frames), with audio; the
    node shows each face's target and what was measured on it."""
    from generation_helpers import decode_rgb

    from sserd_core import pipeline

    entry = server.run(two_face_prompt())
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    out = saved(server, entry)[0]
    clip = server.input_dir / "two_faces.mp4"
    check_video(out, H.probe(clip)["frames"], CLIP_SECONDS)
    api = pipeline.edit(clip, tmp_path / "api.mp4", pipeline.EditOptions(emotion="happy", faces=("1=sad",)))
    got, ref = np.stack(decode_rgb(out)), np.stack(decode_rgb(api.output))
    assert got.shape == ref.shape and np.array_equal(got, ref)
    summary = next(v for v in entry["outputs"].values() if "sserd_render" in v)["sserd_render"][0]
    faces = summary["faces"]
    assert [f["face_index"] for f in faces] == [0, 1]
    assert faces[0]["target"][4] == 1.0 and faces[1]["target"][5] == 1.0
    # the same face twice, or tracks of two different clips: one readable node error
    bad = two_face_prompt(prefix="sserd/bad")
    bad["7"]["inputs"]["face_index"] = 0
    entry = server.run(bad)
    assert entry["status"]["status_str"] == "error"
    assert "Face 0 is given two targets" in json.dumps(H.status_messages(entry))


def test_the_three_front_ends_default_to_edit_options(object_info):
    """The CLI's flags, the Space's form and the ComfyUI nodes' inputs (as the server lists them) start from the
    same values: EditOptions' own. Render Face's preview_frames (8) is the node's display of source | edited
    frames inside the node, not an option of the edit, and is not compared."""
    from test_front_end_defaults import (COMPARED, as_options, cli_defaults, controls_shown, core_defaults,
                                         space_defaults)

    from sserd_core.pipeline import EditOptions

    def inp(node, name):
        req = object_info[node]["input"]
        return {**req.get("required", {}), **req.get("optional", {})}[name][1]

    intensity = inp("SSERD_ExtractEmotion", "intensity")
    comfy = {"emotion shown": inp("SSERD_ExtractEmotion", "emotion")["default"], "intensity": intensity["default"],
             "intensity range": (intensity["min"], intensity["max"]), "sync": EditOptions.sync,  # clip time
             "face_index": inp("SSERD_DisentangleContent", "face_index")["default"],
             "start": inp("SSERD_LoadVideo", "start_time")["default"] or None,  # 0 = the beginning
             "end": inp("SSERD_LoadVideo", "end_time")["default"] or None,  # 0 = the end
             "backend": "landmark" if inp("SSERD_LoadModel", "backend")["default"].startswith("landmark") else None,
             "controls": controls_shown([inp("SSERD_ExpressionControls", n)["default"] for n in CONTROL_NAMES],
                                        inp("SSERD_ExpressionControls", "keyframes")["default"]),
             **as_options(*(inp("SSERD_LoadModel", k)["default"]
                            for k in ("dtype", "batch_size", "noise_mode", "max_face_size")))}
    cli, space = cli_defaults(), space_defaults()
    table = {k: (cli[k], comfy[k], space[k]) for k in COMPARED}
    H.ARTIFACTS.mkdir(exist_ok=True)
    (H.ARTIFACTS / "front_end_defaults.json").write_text(json.dumps(
        {"columns": ["cli", "comfyui", "space"], **{k: list(v) for k, v in table.items()}}, indent=1, default=str))
    core = core_defaults(shown_label=True)
    assert comfy == core and space == core, table
    assert {k: v for k, v in cli.items() if k in COMPARED} == core_defaults(shown_label=False)


def test_outputs_connected_after_a_cached_run_are_built(server, clip_frames):
    """ComfyUI caches a node's outputs by its inputs: Render Face run with only ``video`` connected, then the
    same graph with ``images`` and ``side_by_side`` connected too, must give real frames and a real file (not
    the first run's cached None)."""
    prompt = edit_prompt("sample.mp4", emotion="sad", intensity=0.6, prefix="cache/first")
    first = server.run(prompt)
    assert first["status"]["status_str"] == "success", H.status_messages(first)
    prompt["6"]["inputs"]["filename_prefix"] = "cache/first"  # the same prompt: everything above Save is cached
    prompt["7"] = {"class_type": "CreateVideo", "inputs": {"images": ["4", 2], "fps": 25.0}}
    prompt["8"] = {"class_type": "SaveVideo", "inputs": {"video": ["7", 0], "filename_prefix": "cache/images",
                                                        "format": "mp4", "codec": "h264"}}
    prompt["9"] = {"class_type": "SaveVideo", "inputs": {"video": ["4", 1], "filename_prefix": "cache/sbs",
                                                        "format": "auto", "codec": "auto"}}
    second = server.run(prompt)
    assert second["status"]["status_str"] == "success", H.status_messages(second)
    files = {f.name.split("_0")[0]: f for f in saved(server, second)}
    assert {"images", "sbs"} <= set(files), files
    assert H.probe(files["images"])["frames"] == clip_frames
    assert H.probe(files["sbs"])["width"] == 2 * H.probe(server.input_dir / "sample.mp4")["width"]
    # and the unchanged graph is still served from the cache: no second render
    third = server.run(prompt)
    assert third["status"]["status_str"] == "success", H.status_messages(third)
    cached = [m for m in third["status"]["messages"] if m[0] == "execution_cached"]
    assert cached and "4" in cached[0][1]["nodes"], H.status_messages(third)


@pytest.mark.parametrize("file,node_type,words", [
    ("no_face.mp4", "SSERD_DisentangleContent", "No face found in no_face.mp4"),
    ("corrupt.mp4", "SSERD_LoadVideo", "corrupt.mp4"),
])
def test_bad_input_gives_a_readable_node_error(server, file, node_type, words):
    temp_before = set(server.temp_dir.rglob("*")) if server.temp_dir.exists() else set()
    entry = server.run(edit_prompt(file, prefix="bad/out"))
    assert entry["status"]["status_str"] == "error"
    err = H.execution_error(entry)
    assert err is not None, H.status_messages(entry)
    assert err["node_type"] == node_type
    assert words in err["exception_message"]
    assert "\n" not in err["exception_message"].strip(), "the message should be one readable line"
    assert server.alive()
    assert not (server.output_dir / "bad").exists()
    assert H.partial_files(server.temp_dir, server.output_dir) == []
    new_in_temp = set(server.temp_dir.rglob("*")) - temp_before if server.temp_dir.exists() else set()
    assert not [p for p in new_in_temp if p.is_file() and "sserd_render" in p.name], new_in_temp


@pytest.mark.parametrize("file", ["../../../../../../etc/hostname", "/etc/hostname", "outside_link.mp4"])
def test_load_video_cannot_read_outside_the_input_folder(server, file):
    link = server.input_dir / "outside_link.mp4"
    if not link.exists():
        link.symlink_to("/etc/hostname")
    with pytest.raises(H.PromptRejected) as info:  # refused when the prompt is validated: nothing runs
        server.run(edit_prompt(file, prefix="bad/traversal"))
    text = json.dumps(info.value.body)
    assert "not a file inside ComfyUI" in text, text[:2000]
    assert text.count("not a file inside ComfyUI") == 1, text[:3000]  # said once, under the file input only
    # and a link that points out of the input folder is not offered in the list in the first place
    offered = server.get("/object_info/SSERD_LoadVideo")["SSERD_LoadVideo"]["input"]["required"]["file"][1]["options"]
    assert "outside_link.mp4" not in offered and "sample.mp4" in offered, offered
    assert server.alive()


def test_reference_video_without_a_face_is_a_readable_error(server):
    prompt = edit_prompt("sample.mp4", prefix="bad/reference")
    prompt["8"] = {"class_type": "LoadVideo", "inputs": {"file": "no_face.mp4"}}
    prompt["3"]["inputs"]["reference_video"] = ["8", 0]
    entry = server.run(prompt)
    err = H.execution_error(entry)
    assert err is not None and err["node_type"] == "SSERD_ExtractEmotion", H.status_messages(entry)
    assert "No face found" in err["exception_message"]


def test_load_model_lists_models_folder_and_reports_what_it_cannot_load(server, object_info):
    backends = object_info["SSERD_LoadModel"]["input"]["required"]["backend"][1]["options"]
    assert backends == ["landmark (built-in)", "tiny_neural", "tiny_sserd"]
    prompt = edit_prompt("sample.mp4", prefix="bad/model")
    prompt["7"] = {"class_type": "SSERD_LoadModel", "inputs": {"backend": "tiny_sserd", "repo_id": "", "device": "auto",
                                                             "grid_step": 4, "interpolation": "bicubic"}}
    prompt["4"]["inputs"]["model"] = ["7", 0]
    entry = server.run(prompt)
    err = H.execution_error(entry)
    assert err is not None and err["node_type"] == "SSERD_LoadModel", H.status_messages(entry)
    assert "tiny_sserd" in err["exception_message"] and "\n" not in err["exception_message"].strip()
    assert server.alive()


def test_neural_checkpoint_from_models_folder_renders(server):
    """Load Model (SSERD) → a neural SSERD model folder in models/sserd/ drives Render Face
    (reference-image target: no emotion prototypes needed)."""
    prompt = edit_prompt("sample.mp4", prefix="neural/edit")
    prompt["1"]["inputs"]["frame_cap"] = 6  # the network runs ~1 s a frame on a CI CPU
    prompt["7"] = {"class_type": "SSERD_LoadModel", "inputs": {"backend": "tiny_neural", "repo_id": "", "device": "cpu",
                                                             "grid_step": 4, "interpolation": "bicubic",
                                                             "dtype": "fp32", "batch_size": 4, "noise_mode": "const"}}
    prompt["8"] = {"class_type": "LoadImage", "inputs": {"image": "reference_happy.png"}}
    prompt["3"]["inputs"]["reference_image"] = ["8", 0]
    prompt["4"]["inputs"]["model"] = ["7", 0]
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    out = saved(server, entry)[0]
    check_video(out, 6, 6 / 25)
    render = next(v for v in entry["outputs"].values() if "sserd_render" in v)["sserd_render"][0]
    assert render["backend"] == "neural"
    # the (untrained) network repainted the face: the frame differs from the source there
    assert np.abs(first_frame(out).astype(int) - first_frame(server.input_dir / "sample.mp4").astype(int)).mean() > 1.0


def test_server_keeps_working_after_errors(server, clip_frames):
    entry = server.run(edit_prompt("sample.mp4", "surprised", 0.6, prefix="after_errors/edit"))
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    check_video(saved(server, entry)[0], clip_frames, CLIP_SECONDS)


# ---------------------------------------------------------------------- Expression Controls

def controls_prompt(file: str = "sample.mp4", keyframes: str = "", prefix: str = "controls/edit",
                    **values) -> dict:
    """Load Video → Disentangle → Expression Controls (the sliders ``values``, the content track for its preview)
    → Render Face → Mux Audio → Save Video."""
    prompt = edit_prompt(file, prefix=prefix)
    sliders = {name: float(values.get(name, 0.0)) for name in CONTROL_NAMES}
    prompt["3"] = {"class_type": "SSERD_ExpressionControls",
                   "inputs": {**sliders, "keyframes": keyframes, "content": ["2", 0], "preview_time": -1.0}}
    return prompt


def test_expression_controls_sliders_as_the_server_lists_them(object_info):
    info = object_info["SSERD_ExpressionControls"]
    assert info["input_order"]["required"] == list(CONTROL_NAMES)  # the forms' order, brows first
    for c in CONTROLS:
        spec = info["input"]["required"][c.name][1]
        assert (spec["default"], spec["min"], spec["max"], spec["step"], spec["display"]) == (0.0, -1.0, 1.0, 0.05,
                                                                                             "slider"), spec
        assert c.label in spec["tooltip"] and c.minus in spec["tooltip"], spec["tooltip"]
    optional = info["input"]["optional"]
    assert optional["keyframes"][1]["multiline"] and optional["keyframes"][1]["default"] == ""
    assert "REPLACES the sliders" in optional["keyframes"][1]["tooltip"]
    assert optional["preview_time"][1]["default"] == -1.0


def test_expression_controls_edit_the_clip_with_its_frames_and_audio(server, clip_frames):
    """smile -0.8, brow_inner +0.5 on the smiling speaker: the face changes, far from it nothing does; every frame
    and the audio are kept; the node shows one frame (source | edited) that is the render's own frame."""
    from sserd_core import pipeline

    entry = server.run(controls_prompt(smile=-0.8, brow_inner=0.5))
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    out = saved(server, entry)[0]
    source = server.input_dir / "sample.mp4"
    check_video(out, clip_frames, CLIP_SECONDS)
    assert audio_samples(out).tobytes() == audio_samples(source).tobytes()
    shown = entry["outputs"]["3"]
    controls = shown["sserd_controls"][0]
    assert controls["controls"] == "brow_inner=0.5, smile=-0.8", controls
    assert "the source's own expression; controls: brow_inner +0.50, smile -0.80" in controls["text"], controls
    assert "shown: brow_inner" in controls["text"] and "smile" in controls["text"], controls
    (img,) = shown["images"]
    assert img["type"] == "temp"
    from PIL import Image

    preview = np.asarray(Image.open(server.temp_dir / img["subfolder"] / img["filename"]).convert("RGB"))
    edited, src = all_frames(out), all_frames(source)
    h, w = src[0].shape[:2]
    assert preview.shape == (h, 2 * w, 3)
    i = controls["index"]
    # the preview's edited half is the render's frame i (up to the render's H.264 encoding)
    assert np.abs(preview[:, w:].astype(int) - edited[i].astype(int)).mean() < 2.0
    assert np.abs(preview[:, :w].astype(int) - src[i].astype(int)).mean() < 2.0
    # the face moved, the corners of the frame did not
    track = pipeline.disentangle_content(pipeline.load_video(source))
    x0, y0 = track.landmarks[i].min(0).astype(int)
    x1, y1 = track.landmarks[i].max(0).astype(int)
    diff = np.abs(edited[i].astype(int) - src[i].astype(int)).max(-1)
    assert diff[y0:y1, x0:x1].mean() > 1.0, "the controls changed nothing on the face"
    assert np.percentile(diff[:16, :16], 99) <= 3 and np.percentile(diff[-16:, -16:], 99) <= 3


def test_expression_controls_bad_keyframes_are_a_readable_error(server):
    entry = server.run(controls_prompt(keyframes="0: smile=0; 1: smiel=0.8", prefix="bad/controls", smile=0.3))
    assert entry["status"]["status_str"] == "error"
    err = H.execution_error(entry)
    assert err is not None and err["node_type"] == "SSERD_ExpressionControls", H.status_messages(entry)
    msg = err["exception_message"].strip()
    assert "Unknown expression control 'smiel'" in msg and "Did you mean smile?" in msg, msg
    assert "\n" not in msg, "the message should be one readable line"
    assert not (server.output_dir / "bad" / "controls").exists()
    assert server.alive()


def test_expression_controls_add_to_an_emotion_and_keyframes_replace_the_sliders(server):
    """Extract Emotion → Expression Controls: the label with the controls on top (what EditOptions(emotion=...,
    controls=...) asks for); keyframes given, the sliders are ignored and the node says so."""
    keyframes = "0: smile=0; 1: brow_lower=-0.3"
    prompt = controls_prompt(keyframes=keyframes, prefix="controls/label", smile=0.9)
    prompt["7"] = {"class_type": "SSERD_ExtractEmotion", "inputs": {"emotion": "happy", "intensity": 0.5, "curve": ""}}
    prompt["3"]["inputs"]["emotion"] = ["7", 0]
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    controls = entry["outputs"]["3"]["sserd_controls"][0]
    assert controls["controls"] == format_controls(parse_controls(keyframes)), controls  # the keyframes, not 0.9
    assert controls["text"].startswith("Target: happy 0.50; controls over time"), controls
    assert "the sliders are ignored" in controls["text"], controls


def test_interrupt_stops_render_face_and_leaves_no_partial_file(server):
    import websocket

    client = uuid.uuid4().hex
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId={client}", timeout=60)
    try:
        before = set(server.output_dir.rglob("*"))
        prompt = edit_prompt("sample.mp4", "angry", 0.9, prefix="interrupted/edit")
        prompt_id = server.queue(prompt, client_id=client)
        t_interrupt = None
        rendered = 0
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            msg = ws.recv()
            if not isinstance(msg, str):
                continue  # binary preview frames
            m = json.loads(msg)
            data = m.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if m["type"] == "progress" and data.get("node") == "4" and t_interrupt is None and data["value"] >= 3:
                rendered = data["value"]
                server.interrupt()
                t_interrupt = time.monotonic()
            if m["type"] in ("execution_interrupted", "execution_error", "execution_success"):
                break
        stopped = time.monotonic()
    finally:
        ws.close()
    assert t_interrupt is not None, "Render Face never reported progress"
    assert m["type"] == "execution_interrupted", m
    assert m["data"]["node_id"] == "4"
    H.ARTIFACTS.mkdir(exist_ok=True)
    (H.ARTIFACTS / "comfyui_interrupt.json").write_text(json.dumps(
        {"frames_rendered_before_interrupt": rendered, "seconds_to_stop": round(stopped - t_interrupt, 3)}))
    assert stopped - t_interrupt < 2.0, f"took {stopped - t_interrupt:.2f} s to stop"
    assert rendered < H.probe(server.input_dir / "sample.mp4")["frames"]
    assert H.partial_files(server.temp_dir, server.output_dir) == []
    assert set(server.output_dir.rglob("*")) == before, "an interrupted prompt saved something"
    entry = server.wait(prompt_id)
    assert any(kind == "execution_interrupted" for kind, _ in H.status_messages(entry))
    # and the next prompt runs
    ok = server.run(edit_prompt("sample.mp4", "angry", 0.9, prefix="after_interrupt/edit"))
    assert ok["status"]["status_str"] == "success", H.status_messages(ok)


# ---------------------------------------------------------------------- the page, in Chromium

CHROMEDRIVER = Path("/usr/bin/chromedriver")
EXTENSION_URL = f"/extensions/{H.PACK_NAME}/"


@pytest.fixture(scope="module")
def browser(server):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium or not CHROMEDRIVER.exists():
        pytest.skip("Debian's chromium and chromium-driver are not installed: apt-get install -y chromium chromium-driver")
    os.environ["SE_AVOID_STATS"] = "true"  # selenium must not phone home or fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1920,1080", "--no-first-run", "--disable-sync", "--disable-default-apps",
                "--disable-background-networking", "--disable-component-update",
                # the page may only talk to the test server: every other host name is unresolvable
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    drv.set_script_timeout(120)
    try:
        drv.get(server.url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if drv.execute_script("return !!(window.app && window.app.graph && window.app.extensions"
                                  " && window.app.extensions.some(e => e.name === 'sserd.emotion'))"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the ComfyUI page did not load the pack's extension")
        drv.sserd_logs = []
        yield drv
    finally:
        drv.quit()


def page_logs(drv) -> list:
    drv.sserd_logs.extend(drv.get_log("browser"))
    return drv.sserd_logs


def load_in_page(drv, workflow: dict) -> dict:
    """Load a UI-format workflow like a user dropping the file; what the page then knows."""
    return drv.execute_async_script("""
        const [wf, done] = arguments;
        (async () => {
          await window.app.loadGraphData(wf);
          await new Promise(r => setTimeout(r, 300));
          const nodes = window.app.graph._nodes;
          const known = t => !!LiteGraph.registered_node_types[t];
          const prompt = await window.app.graphToPrompt();
          done({
            types: nodes.map(n => n.type),
            unknown: nodes.filter(n => !known(n.type)).map(n => n.type),
            has_errors: nodes.filter(n => n.has_errors).map(n => n.type),
            missing_dialog: document.body.innerText.includes('Missing'),
            prompt: prompt.output,
          });
        })().catch(e => done({error: String(e && e.stack || e)}));
    """, workflow)


def normalise_page_prompt(prompt: dict, object_info: dict) -> dict:
    """The page's prompt without what the server ignores (titles, frontend-only preview widgets)."""
    out = {}
    for node_id, node in prompt.items():
        info = object_info[node["class_type"]]["input"]
        known = {**info.get("required", {}), **info.get("optional", {})}
        out[node_id] = {"class_type": node["class_type"],
                        "inputs": {k: v for k, v in node["inputs"].items() if k in known}}
    return out


def test_page_loads_every_workflow_with_known_nodes_and_the_same_prompt(browser, object_info):
    for name in WORKFLOW_NAMES:
        wf = H.load_workflow(name)
        got = load_in_page(browser, wf)
        assert "error" not in got, got.get("error")
        assert got["unknown"] == [] and got["has_errors"] == [], (name, got)
        assert not got["missing_dialog"], f"{name}: the page shows a missing-nodes dialog"
        assert sorted(got["types"]) == sorted(n["type"] for n in wf["nodes"])
        # the API prompt the tests send is the one the page sends for the same workflow
        assert normalise_page_prompt(got["prompt"], object_info) == H.ui_to_api(wf, object_info), name
    errors = [e for e in page_logs(browser) if EXTENSION_URL in e["message"] and e["level"] in ("SEVERE", "WARNING")]
    assert errors == []


# What the page shows, in canvas units and client pixels: each node's box (title bar included),
# where the view puts it, and where the frontend's toolbar ends. Waits for the media players and
# image previews to load first (they grow Load Video, Load Image and Save Video).
LAYOUT_JS = """
  const [wf, done] = arguments;
  (async () => {
    const app = window.app;
    if (wf) await app.loadGraphData(wf);
    const t0 = Date.now();
    await new Promise(r => setTimeout(r, 800));
    while (Date.now() - t0 < 15000 && ([...document.querySelectorAll('video')].some(v => v.readyState < 2)
           || app.graph._nodes.some(n => (n.imgs || []).some(i => !i.complete))))
      await new Promise(r => setTimeout(r, 250));
    await new Promise(r => setTimeout(r, 500));
    app.canvas.draw(true, true);
    const rect = document.querySelector('#graph-canvas').getBoundingClientRect();
    const sides = [...document.querySelectorAll('.side-tool-bar-container, .side-bar-panel')]
      .map(e => e.getBoundingClientRect()).filter(r => r.width > 0 && r.left < rect.left + 200).map(r => r.right);
    const bars = ['.comfyui-body-top', '.comfyui-menu', '.workflow-tabs-container', '.actionbar']
      .flatMap(s => [...document.querySelectorAll(s)]).map(e => e.getBoundingClientRect())
      .filter(r => r.height > 0 && r.top < rect.top + 200).map(r => r.bottom);
    const emo = app.graph._nodes.find(n => n.type === 'SSERD_ExtractEmotion');
    done({
      nodes: app.graph._nodes.map(n => ({id: n.id, type: n.type, box: [...n.getBounding()]})),
      offset: [...app.canvas.ds.offset], scale: app.canvas.ds.scale, canvas_top: rect.top,
      canvas_left: Math.max(rect.left, ...sides),
      toolbar_bottom: Math.max(rect.top, ...bars), picker: emo?.sserdPicker?.shown ?? null,
    });
  })().catch(e => done({error: String(e && e.stack || e)}));
"""
#: room above a title bar for the pack's badge ("comfyui-sserd") that the frontend draws there
BADGE_PX = 20
#: the narrowest window a workflow must open in whole: every node's right edge inside it
MIN_WINDOW_PX = 1600


def check_layout(layout: dict, what: str) -> None:
    """No node overlaps another (title bars included); every title bar and badge lies below the toolbar."""
    assert "error" not in layout, layout.get("error")
    boxes = layout["nodes"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            (ax, ay, aw, ah), (bx, by, bw, bh) = a["box"], b["box"]
            overlap = min(ax + aw, bx + bw) - max(ax, bx) > 0 and min(ay + ah, by + bh) - max(ay, by) > 0
            assert not overlap, f"{what}: {a['type']} {a['box']} overlaps {b['type']} {b['box']}"
    top = min(n["box"][1] for n in boxes)
    top_px = layout["canvas_top"] + (top + layout["offset"][1]) * layout["scale"]
    assert top_px >= layout["toolbar_bottom"] + BADGE_PX, \
        f"{what}: the top row's title bars start at y={top_px:.0f} px, under the toolbar (ends {layout['toolbar_bottom']:.0f})"
    right = max(n["box"][0] + n["box"][2] for n in boxes)
    right_px = layout["canvas_left"] + (right + layout["offset"][0]) * layout["scale"]
    widest = max(boxes, key=lambda n: n["box"][0] + n["box"][2])["type"]
    assert right_px <= MIN_WINDOW_PX - 10, \
        f"{what}: {widest} ends at x={right_px:.0f} px, cut off in a {MIN_WINDOW_PX} px wide window"


def test_page_opens_every_workflow_below_the_toolbar_with_no_node_over_another(browser):
    for name in WORKFLOW_NAMES:
        layout = browser.execute_async_script(LAYOUT_JS, H.load_workflow(name))
        check_layout(layout, name)


def test_page_picker_shows_the_target_that_wins(browser):
    """Extract Emotion's picker shows what the node will use: the label, else the curve, else the
    reference (in the server's order) — never "happy 1.00" when a curve or a reference overrides it."""
    want = {"sserd_label_edit": ("label", "Emotion picker"), "sserd_emotion_curve": ("curve", "The curve wins"),
            "sserd_cross_identity": ("reference", "The reference image wins")}
    for name, (kind, title) in want.items():
        shown = browser.execute_async_script(LAYOUT_JS, H.load_workflow(name))["picker"]
        assert shown["kind"] == kind and shown["title"].startswith(title), (name, shown)
    # typing a curve in the label workflow switches the picker to it; clicks no longer change the unused label
    load_in_page(browser, H.load_workflow("sserd_label_edit"))
    got = browser.execute_script("""
        const app = window.app, emo = app.graph._nodes.find(n => n.type === 'SSERD_ExtractEmotion');
        const w = emo.sserdPicker, get = n => emo.widgets.find(x => x.name === n);
        const views = [w.view()];
        get('curve').value = '0:neutral, 1:happy@0.9, 2:angry@0.5';
        views.push(w.view());
        app.canvas.draw(true, true);
        const L = w.layout;
        const clicked = w.mouse({type: 'pointerdown'}, [L.barX + 0.3 * L.barW, L.top + 4.5 * 17], emo);
        const label = [get('emotion').value, get('intensity').value];
        get('curve').value = '';
        views.push(w.view());
        return {kinds: views.map(v => v.kind), titles: views.map(v => v.title), keys: views[1].keyframes.length,
                drawn: w.shown, clicked, label};
    """)
    assert got["kinds"] == ["label", "curve", "label"], got
    assert got["keys"] == 3 and got["drawn"]["kind"] == "curve" and "sad" not in got["titles"][1], got
    assert got["clicked"] is False and got["label"] == ["sad", 0.8], got


def test_page_runs_a_workflow_and_shows_the_edit_in_the_nodes(browser, server):
    """Queue from the page; the Render Face node shows source | edited frames, Extract Emotion
    and Render Face show emotion bars; the emotion picker sets emotion + intensity. After the run no
    live preview frame is left under Render Face, no node covers another, and the saved file's audio
    is the input's, sample for sample."""
    load_in_page(browser, H.load_workflow("sserd_label_edit"))
    before = set((server.output_dir / "sserd").glob("label_edit_*.mp4"))
    state = browser.execute_async_script("""
        const done = arguments[0];
        (async () => {
          const app = window.app;
          const { api } = await import('/scripts/api.js');
          const byType = t => app.graph._nodes.find(n => n.type === t);
          const render = byType('SSERD_RenderFace'), emo = byType('SSERD_ExtractEmotion');
          let live = 0;
          api.addEventListener('b_preview_with_metadata', e => { if (e.detail.displayNodeId == render.id) live++; });
          await app.queuePrompt(0, 1);
          const t0 = Date.now();
          while (Date.now() - t0 < 100000) {
            const imgs = render.sserdPreview?.images || [];
            const q = await (await fetch('/queue')).json();
            if (imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0) && emo.sserdPicker?.measured
                && render.sserdSummary?.data && !q.queue_running.length && !q.queue_pending.length) break;
            await new Promise(r => setTimeout(r, 250));
          }
          // scrub to the 4th preview frame, as a pointer moving over the preview would
          const p = render.sserdPreview;
          if (p.box) p.mouse({type: 'pointermove'}, [p.box.x + p.box.w * 3.5 / p.images.length, p.box.y + 5], render);
          app.canvas.setDirty(true, true);
          // let the video players of Load Video / Save Video show their first frame
          const t1 = Date.now();
          while (Date.now() - t1 < 10000 && [...document.querySelectorAll('video')].some(v => v.readyState < 2))
            await new Promise(r => setTimeout(r, 250));
          await new Promise(r => setTimeout(r, 2000));
          app.canvas.draw(true, true);
          done({
            previews: p.images.length, loaded: p.images.filter(i => i.naturalWidth > 0).length,
            preview_size: p.images.length ? [p.images[0].naturalWidth, p.images[0].naturalHeight] : null,
            index: p.index, measured: emo.sserdPicker.measured, render: render.sserdSummary.data?.title,
            picker: emo.sserdPicker.shown,
            live_frames_during_run: live, live_left: Object.keys(app.nodePreviewImages || {}),
            render_imgs: (render.imgs || []).length, render_widgets: render.widgets.map(w => w.name),
          });
        })().catch(e => done({error: String(e && e.stack || e)}));
    """)
    assert "error" not in state, state.get("error")
    assert state["previews"] == 8 and state["loaded"] == 8, state
    w, h = state["preview_size"]
    assert w == 2 * h, "preview frames are source | edited side by side"
    assert state["index"] == 3
    assert state["measured"]["text"] == "sad 0.80"
    assert state["picker"] == {"kind": "label", "title": "Last run: sad 0.80"}, state["picker"]
    assert "frames" in state["render"]
    # the live preview was shown while rendering, and is gone now
    assert state["live_frames_during_run"] > 0, state
    assert state["live_left"] == [] and state["render_imgs"] == 0, state
    assert "$$canvas-image-preview" not in state["render_widgets"], state["render_widgets"]
    # grown nodes (Disentangle's bars, Render Face's preview, Save Video's player) still overlap nothing
    check_layout(browser.execute_async_script(LAYOUT_JS, None), "sserd_label_edit after a run")
    H.ARTIFACTS.mkdir(exist_ok=True)
    shot = H.ARTIFACTS / "comfyui_graph.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000
    # the file the page's run saved carries the input's audio stream unchanged
    new = sorted(set((server.output_dir / "sserd").glob("label_edit_*.mp4")) - before)
    assert len(new) == 1, new
    source = server.input_dir / "sample.mp4"
    assert audio_samples(new[0]).tobytes() == audio_samples(source).tobytes()
    assert audio_packets(new[0]) == audio_packets(source)
    # the picker: a click on the 'sad' bar at 60 % of its length picks sad @ 0.6
    picked = browser.execute_script("""
        const emo = window.app.graph._nodes.find(n => n.type === 'SSERD_ExtractEmotion');
        const w = emo.sserdPicker, L = w.layout;
        const row = 5;  // sad
        w.mouse({type: 'pointerdown'}, [L.barX + 0.6 * L.barW, L.top + (row + 0.5) * 17], emo);
        const get = n => emo.widgets.find(x => x.name === n).value;
        return [get('emotion'), get('intensity')];
    """)
    assert picked == ["sad", 0.6]
    errors = [e for e in page_logs(browser) if EXTENSION_URL in e["message"] or "sserd" in e["message"].lower()]
    assert [e for e in errors if e["level"] in ("SEVERE", "WARNING")] == [], errors
