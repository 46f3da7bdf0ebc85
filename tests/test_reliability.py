"""Nothing lost, ever (issue 12): a hostile tester's inputs and faults against `sserd edit` and the API.

Every case checks what a user sees and keeps: the exit code, exactly one ``error:`` line
(no traceback), the set of files in the output folder before and after (nothing
published on failure, no temporary left), and the input's hash (never modified).
The case ids are listed in docs/RELIABILITY.md (a test below keeps the two in step).
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import ASTRONAUT_FACE, ROOT, SAMPLE, SAMPLE_HOPPER, sample_frames, write_clip

from sserd_core import media, pipeline, validate
from sserd_core.emotion import EmotionSpec
from sserd_core.errors import MediaError, SSERDError
from sserd_core.outputs import PARTIAL_SUFFIX, OutputSet, stale_partials

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def sserd(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "sserd_core.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=ENV, **kw)


def md5(p) -> str:
    return hashlib.md5(Path(p).read_bytes()).hexdigest()


def listing(folder) -> set:
    """Every path under ``folder`` (hidden ones included), relative."""
    folder = Path(folder)
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def one_error_line(r) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1, r.stderr
    return errs[0]


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """1 s of the sample (25 frames, with audio): the full pipeline runs in a few seconds."""
    p = tmp_path_factory.mktemp("clips") / "short.mp4"
    media.mux_audio(_silent(p, sample_frames(end=1.0)), SAMPLE, p, audio_start=0.0, audio_end=1.0)
    return p


def _silent(p: Path, frames) -> Path:
    silent = p.with_name(p.stem + "_v.mp4")
    h, w = frames[0][0].shape[:2]
    write_clip(silent, frames, (w, h))
    return silent


# ------------------------------------------------------------------ argument and input errors, checked before work

BAD_ARGS = [
    # (case id, extra args, words one of which the error line contains)
    ("end-inf", ["--emotion", "sad", "--end", "inf"], ["finite"]),
    ("end-nan", ["--emotion", "sad", "--end", "nan"], ["finite"]),
    ("start-nan", ["--emotion", "sad", "--start", "nan"], ["finite"]),
    ("start-negative", ["--emotion", "sad", "--start", "-1"], ["at least 0"]),
    ("end-before-start", ["--emotion", "sad", "--start", "2", "--end", "1"], ["after the start"]),
    ("device-bogus", ["--emotion", "sad", "--device", "bogus"], ["unknown device"]),
    ("device-cuda-missing", ["--emotion", "sad", "--device", "cuda"], ["no cuda gpu"]),
    ("face-index-negative", ["--emotion", "sad", "--face-index", "-1"], ["0 or more"]),
    ("curve-nan-time", ["--curve", "0:happy,nan:sad"], ["finite"]),
    ("curve-garbage", ["--curve", "soon:happy"], ["must be numbers"]),
    ("intensity-out-of-range", ["--emotion", "sad", "--intensity", "1.5"], ["between 0 and 1", "at most 1"]),
    ("intensity-nan", ["--emotion", "sad", "--intensity", "nan"], ["finite", "between 0 and 1"]),
    ("unknown-emotion", ["--emotion", "sleepy"], ["unknown emotion"]),
    ("no-emotion", [], ["say what emotion"]),
    ("two-targets", ["--emotion", "sad", "--curve", "0:happy"], ["only one"]),
    ("preview-negative", ["--emotion", "sad", "--preview", "-2"], ["0 or more"]),
    ("reference-missing", ["--reference", "nope.png"], ["not found"]),
    ("plot-bad-extension", ["--emotion", "sad", "--plot", "plot.xyz"], ["plot"]),
    ("plot-in-missing-folder-bad-ext", ["--emotion", "sad", "--plot", "nofolder/plot.xyz"], ["plot"]),
    ("threads-too-many", ["--emotion", "sad", "--threads", "1000"], ["between 1 and 16"]),
]


@pytest.mark.parametrize("case,extra,words", BAD_ARGS, ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments_fail_fast_with_one_line_and_leave_nothing(tmp_path, short_clip, case, extra, words):
    if case == "device-cuda-missing":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    src = tmp_path / "in.mp4"
    shutil.copy(short_clip, src)
    before, h = listing(tmp_path), md5(src)
    t0 = time.monotonic()
    r = sserd("edit", src, "-o", tmp_path / "o.mp4", "-q", *extra, cwd=tmp_path)
    took = time.monotonic() - t0
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = one_error_line(r)
    assert any(w in err.lower() for w in words), err
    assert listing(tmp_path) == before and md5(src) == h
    assert took < 30, f"{case} took {took:.0f} s: it should fail before decoding"


BAD_OUTPUTS = [
    ("output-is-input", lambda d, src: [src], ["input file"]),
    ("output-bad-extension", lambda d, src: [d / "newdir" / "k.xyz"], ["must end in"]),
    ("output-is-a-folder", lambda d, src: [d], ["folder"]),
    ("output-read-only-folder", lambda d, src: ["/sys/o.mp4"], ["cannot write", "permission", "not permitted"]),
    ("output-read-only-new-folder", lambda d, src: ["/sys/newdir/o.mp4"], ["cannot write", "permission", "not permitted"]),
]


@pytest.mark.parametrize("case,out,words", BAD_OUTPUTS, ids=[c[0] for c in BAD_OUTPUTS])
def test_bad_outputs_are_refused_before_the_work(tmp_path, short_clip, case, out, words):
    src = tmp_path / "in.mp4"
    shutil.copy(short_clip, src)
    before, h = listing(tmp_path), md5(src)
    r = sserd("edit", src, "-o", *out(tmp_path, src), "--emotion", "sad", "-q", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    err = one_error_line(r)
    assert any(w in err.lower() for w in words), err
    assert listing(tmp_path) == before and md5(src) == h  # no new empty folder either
    assert "tracking" not in r.stderr


BAD_INPUTS = [
    ("input-missing", lambda d: d / "missing.mp4", ["not found"]),
    ("input-not-a-video", lambda d: (d / "notes.mp4").write_bytes(os.urandom(5000)) and d / "notes.mp4",
     ["not a readable", "corrupt", "cannot", "no video"]),
    ("input-empty-file", lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4",
     ["not a readable", "corrupt", "cannot", "empty", "no video"]),
]


@pytest.mark.parametrize("case,make,words", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_unreadable_inputs_one_line(tmp_path, case, make, words):
    src = make(tmp_path)
    before = listing(tmp_path)
    r = sserd("edit", src, "-o", tmp_path / "o.mp4", "--emotion", "sad", "-q", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    err = one_error_line(r)
    assert any(w in err.lower() for w in words), err
    assert listing(tmp_path) == before


# ------------------------------------------------------------------ data loss (the critical cases)

def test_an_input_named_like_an_intermediate_is_never_deleted(tmp_path, short_clip):
    src = tmp_path / ".x.video.mp4"            # the name the old fixed intermediate used
    shutil.copy(short_clip, src)
    h = md5(src)
    r = sserd("edit", src, "-o", tmp_path / "x.mp4", "--emotion", "sad", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert src.exists() and md5(src) == h
    assert listing(tmp_path) == {".x.video.mp4", "x.mp4"}


def test_bystander_files_with_intermediate_like_names_are_untouched(tmp_path, short_clip):
    bystanders = {".x.video.mp4": b"mine 1", ".x.sbs.mp4": b"mine 2", "x.sserd-partial": b"mine 3",
                  ".x.partial.mp4": b"mine 4"}
    for name, data in bystanders.items():
        (tmp_path / name).write_bytes(data)
    r = sserd("edit", short_clip, "-o", tmp_path / "x.mp4", "--emotion", "sad", "--side-by-side", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name, data in bystanders.items():
        assert (tmp_path / name).read_bytes() == data, name
    assert listing(tmp_path) == set(bystanders) | {"x.mp4", "x_side_by_side.mp4"}


def test_two_concurrent_jobs_writing_mp4_and_mkv_of_one_name(tmp_path, short_clip):
    cmd = [sys.executable, "-m", "sserd_core.cli", "edit", str(short_clip), "--emotion", "happy", "-q", "-o"]
    procs = [subprocess.Popen(cmd + [str(tmp_path / f"x{ext}")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for ext in (".mp4", ".mkv")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert listing(tmp_path) == {"x.mp4", "x.mkv"}
    a, b = media.probe_video(tmp_path / "x.mp4"), media.probe_video(tmp_path / "x.mkv")
    assert a.n_frames == b.n_frames == 25 and a.has_audio and b.has_audio


# ------------------------------------------------------------------ every file a job reads is safe from its outputs

def _setup_reads(d: Path, clip: Path) -> None:
    """In ``d``: the source ``in.mp4``, a reference clip ``ref.mp4``, a reference image ``face.png``, a model folder
    ``model/`` with a file in it, links of each kind to them, and a folder ``sub/``."""
    shutil.copy(clip, d / "in.mp4")
    shutil.copy(clip, d / "ref.mp4")
    shutil.copy(ASTRONAUT_FACE, d / "face.png")
    (d / "model").mkdir()
    (d / "model" / "model_index.json").write_text("{}")
    (d / "sub").mkdir()
    (d / "link_ref.mp4").symlink_to(d / "ref.mp4")
    os.link(d / "ref.mp4", d / "hard_ref.mp4")
    os.link(d / "in.mp4", d / "hard_in.mp4")
    os.link(d / "face.png", d / "hard_face.png")
    (d / "link_model").symlink_to(d / "model")


READS_AS_OUTPUTS = [
    # (case id, arguments after `edit in.mp4`, words one of which the error line contains)
    ("output-is-reference-clip", ["-o", "ref.mp4", "--reference", "ref.mp4"], ["the reference"]),
    ("output-symlink-to-reference", ["-o", "link_ref.mp4", "--reference", "ref.mp4"], ["the reference"]),
    ("output-dotdot-to-reference", ["-o", "sub/../ref.mp4", "--reference", "ref.mp4"], ["the reference"]),
    ("output-hard-link-of-reference", ["-o", "hard_ref.mp4", "--reference", "ref.mp4"], ["the reference"]),
    ("output-hard-link-of-input", ["-o", "hard_in.mp4", "--emotion", "sad"], ["input"]),
    ("plot-is-reference-image", ["-o", "o.mp4", "--reference", "face.png", "--plot", "face.png"], ["the reference"]),
    ("plot-hard-link-of-reference-image", ["-o", "o.mp4", "--reference", "face.png", "--plot", "hard_face.png"],
     ["the reference"]),
    ("side-by-side-is-reference", ["-o", "o.mp4", "--reference", "o_side_by_side.mp4", "--side-by-side"],
     ["the reference"]),
    ("output-inside-model-folder", ["-o", "model/o.mp4", "--emotion", "sad", "--model", "model"], ["model folder"]),
    ("output-inside-model-folder-via-symlink", ["-o", "link_model/o.mp4", "--emotion", "sad", "--model", "model"],
     ["model folder"]),
    ("preview-folder-is-model-folder", ["-o", "m.mp4", "--emotion", "sad", "--preview", "2", "--model", "m_preview"],
     ["model folder"]),
]


@pytest.mark.parametrize("case,args,words", READS_AS_OUTPUTS, ids=[c[0] for c in READS_AS_OUTPUTS])
def test_no_output_may_replace_a_file_the_job_reads(tmp_path, short_clip, case, args, words):
    _setup_reads(tmp_path, short_clip)
    if case == "side-by-side-is-reference":
        shutil.copy(short_clip, tmp_path / "o_side_by_side.mp4")
    if case == "preview-folder-is-model-folder":
        (tmp_path / "m_preview").mkdir()
        (tmp_path / "m_preview" / "model_index.json").write_text("{}")
    before = {n: md5(tmp_path / n) for n in listing(tmp_path) if (tmp_path / n).is_file()}
    r = sserd("edit", "in.mp4", "-q", *args, cwd=tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = one_error_line(r)
    assert any(w in err.lower() for w in words), err
    after = {n: md5(tmp_path / n) for n in listing(tmp_path) if (tmp_path / n).is_file()}
    assert after == before  # every file as it was, nothing new
    assert "tracking" not in r.stderr


def test_api_refuses_the_reference_as_an_output_before_any_work(tmp_path, short_clip, monkeypatch):
    _setup_reads(tmp_path, short_clip)
    calls = []
    monkeypatch.setattr(pipeline.stages, "track_faces", lambda *a, **k: calls.append(1), raising=True)
    h = md5(tmp_path / "ref.mp4")
    for out, cmp_, plot in [(tmp_path / "hard_ref.mp4", None, None), (tmp_path / "o.mp4", tmp_path / "link_ref.mp4", None)]:
        with pytest.raises(SSERDError, match="the reference"):
            pipeline.edit(tmp_path / "in.mp4", pipeline.Outputs(out, side_by_side=cmp_, plot=plot),
                          pipeline.EditOptions(reference=str(tmp_path / "ref.mp4")), emotion="sad")
    with pytest.raises(SSERDError, match="the reference"):
        pipeline.edit(tmp_path / "in.mp4", pipeline.Outputs(tmp_path / "o.mp4", plot=tmp_path / "sub" / ".." / "face.png"),
                      pipeline.EditOptions(reference=str(tmp_path / "face.png")), emotion="sad")
    assert not calls and md5(tmp_path / "ref.mp4") == h and not (tmp_path / "o.mp4").exists()


# ------------------------------------------------------------------ outputs never replace what the job did not create

def test_previews_never_replace_a_users_file(tmp_path, short_clip):
    (tmp_path / "out_preview").mkdir()
    mine = tmp_path / "out_preview" / "frame_00000.png"
    mine.write_bytes(b"a user's picture")
    before = listing(tmp_path)
    r = sserd("edit", short_clip, "-o", tmp_path / "out.mp4", "--emotion", "sad", "--preview", "2", "-q")
    assert r.returncode == 1, r.stderr
    assert "already exists" in one_error_line(r)
    assert mine.read_bytes() == b"a user's picture" and listing(tmp_path) == before
    assert "tracking" not in r.stderr
    # a preview file the job would not write (another frame) stays, and the job adds its own beside it
    mine.rename(tmp_path / "out_preview" / "frame_00007.png")
    r = sserd("edit", short_clip, "-o", tmp_path / "out.mp4", "--emotion", "sad", "--preview", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out_preview" / "frame_00007.png").read_bytes() == b"a user's picture"
    assert {"out_preview/frame_00000.png", "out_preview/frame_00024.png"} <= listing(tmp_path)


def test_two_outputs_of_one_job_may_not_collide(tmp_path, short_clip):
    r = sserd("edit", short_clip, "-o", tmp_path / "o.mp4", "--emotion", "sad", "--preview", "2",
              "--plot", tmp_path / "o_preview" / "frame_00000.png", "-q")
    assert r.returncode == 1, r.stderr
    err = one_error_line(r)
    assert "same path" in err, err
    assert listing(tmp_path) == set()


def test_named_outputs_are_replaced_and_keep_their_permissions(tmp_path, short_clip):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"an earlier output")
    os.chmod(out, 0o640)
    r = sserd("edit", short_clip, "-o", out, "--emotion", "sad", "-q")
    assert r.returncode == 0, r.stderr
    assert media.probe_video(out).n_frames == 25
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)


# ------------------------------------------------------------------ the world changes while the job runs

def _during_render(action, at=10):
    """A progress callback that runs ``action()`` once, when the render reaches frame ``at``."""
    state = {"done": False}

    def progress(stage, done, total):
        if stage == "rendering" and done >= at and not state["done"]:
            state["done"] = True
            action()
    return progress


CHANGES_BEFORE_PUBLISHING = [
    # (case id, what the user does mid-job, what must still be there afterwards)
    ("plot-path-becomes-a-folder", lambda d: (d / "p.png").mkdir(), {"p.png"}),
    ("output-path-becomes-a-folder", lambda d: (d / "o.mp4").mkdir(), {"o.mp4"}),
    ("preview-file-appears", lambda d: ((d / "o_preview").mkdir(), (d / "o_preview" / "frame_00024.png").write_bytes(b"mine")),
     {"o_preview", "o_preview/frame_00024.png"}),
    ("preview-folder-becomes-a-file", lambda d: (d / "o_preview").write_bytes(b"mine"), {"o_preview"}),
]


@pytest.mark.parametrize("case,change,left", CHANGES_BEFORE_PUBLISHING, ids=[c[0] for c in CHANGES_BEFORE_PUBLISHING])
def test_a_destination_changed_during_the_job_publishes_nothing(tmp_path, short_clip, case, change, left):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SSERDError, match="nothing was written|Nothing was published"):
        pipeline.edit_video(short_clip, pipeline.Outputs(out / "o.mp4", side_by_side=out / "o_side_by_side.mp4",
                                                         previews=out / "o_preview", plot=out / "p.png"), "sad",
                            pipeline.EditOptions(preview_n=2), progress=_during_render(lambda: change(out)))
    assert listing(out) == left, case
    if case == "preview-file-appears":
        assert (out / "o_preview" / "frame_00024.png").read_bytes() == b"mine"


def test_a_rename_failing_midway_puts_back_what_was_replaced(tmp_path, short_clip, monkeypatch):
    """All or nothing even when a rename fails after others succeeded: the earlier output comes back."""
    out = tmp_path / "o.mp4"
    out.write_bytes(b"an earlier output")
    from sserd_core import outputs

    real_replace, calls = os.replace, {"n": 0}

    def replace(a, b, *args, **kw):
        if str(b).startswith(str(tmp_path)) and PARTIAL_SUFFIX not in str(b):  # a publishing rename
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.EIO, "Input/output error", str(b))
        return real_replace(a, b, *args, **kw)

    monkeypatch.setattr(outputs.os, "replace", replace, raising=True)
    with pytest.raises(SSERDError, match="Nothing was published"):
        pipeline.edit_video(short_clip, pipeline.Outputs(out, side_by_side=tmp_path / "o_sbs.mp4", plot=tmp_path / "p.png"),
                            "sad")
    assert out.read_bytes() == b"an earlier output"
    assert listing(tmp_path) == {"o.mp4"}


def _rewrite_with(src: Path, other: Path):
    """What `cp other src` does: the same file (inode), truncated and written again."""
    def action():
        with open(src, "r+b") as f:
            f.truncate(0)
            f.write(other.read_bytes())
    return action


def _replace_with(src: Path, other: Path):
    """What `mv other src` does: another file (inode) under the same name."""
    def action():
        tmp = src.with_name("incoming.tmp")
        shutil.copy(other, tmp)
        os.replace(tmp, src)
    return action


INPUT_CHANGES = [("input-rewritten-in-place", _rewrite_with), ("input-replaced-by-another-file", _replace_with)]


@pytest.mark.parametrize("case,how", INPUT_CHANGES, ids=[c[0] for c in INPUT_CHANGES])
def test_an_input_that_changes_during_the_job_fails_it(tmp_path, short_clip, case, how):
    src = tmp_path / "in.mp4"
    shutil.copy(short_clip, src)
    other = tmp_path / "other.mp4"
    media.mux_audio(_silent(other, sample_frames(SAMPLE_HOPPER, end=0.6)), SAMPLE, other, audio_start=2.0, audio_end=2.6)
    (tmp_path / "other_v.mp4").unlink()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SSERDError, match="changed while the job was reading it"):
        pipeline.edit_video(src, pipeline.Outputs(out / "o.mp4", side_by_side=out / "o_sbs.mp4"), "sad",
                            progress=_during_render(how(src, other)))
    assert listing(out) == set()


# ------------------------------------------------------------------ all or nothing: each output step fails in turn

def _fail_encode(monkeypatch):
    real = media.VideoWriter._encode
    calls = {"n": 0}

    def encode(self, rgb, t):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, rgb, t)

    monkeypatch.setattr(media.VideoWriter, "_encode", encode, raising=True)


def _fail_mux(nth):
    def patch(monkeypatch):
        real = pipeline.mux_audio
        calls = {"n": 0}

        def mux(*a, **k):
            calls["n"] += 1
            if calls["n"] == nth:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*a, **k)

        monkeypatch.setattr(pipeline.job, "mux_audio", mux, raising=True)
    return patch


def _fail_plot(monkeypatch):
    from sserd_core import plots

    def boom(*a, **k):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "plot_emotion_over_time", boom, raising=True)


def _fail_previews(monkeypatch):
    real = media.write_image
    calls = {"n": 0}

    def write(path, rgb):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, rgb)

    monkeypatch.setattr(media, "write_image", write, raising=True)


FAULTS = [("encode", _fail_encode), ("mux", _fail_mux(1)), ("side-by-side-mux", _fail_mux(2)),
          ("plot", _fail_plot), ("previews", _fail_previews)]


@pytest.mark.parametrize("step,inject", FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failing_output_step_publishes_nothing_and_leaves_nothing(tmp_path, short_clip, monkeypatch, step, inject):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("a user's file")
    before = listing(out_dir)
    inject(monkeypatch)
    with pytest.raises((SSERDError, RuntimeError)) as info:
        pipeline.edit_video(short_clip, pipeline.Outputs(out_dir / "o.mp4", side_by_side=out_dir / "o_sbs.mp4",
                                                         previews=out_dir / "o_preview", plot=out_dir / "o_plot.png"),
                            EmotionSpec.from_label("sad"), pipeline.EditOptions(preview_n=4))
    assert listing(out_dir) == before, step
    if step != "plot":
        assert isinstance(info.value, SSERDError) and "disk space" in str(info.value)


def test_all_outputs_appear_together_when_every_step_succeeds(tmp_path, short_clip):
    out_dir = tmp_path / "new" / "folder"          # made by the job
    r = pipeline.edit_video(short_clip, pipeline.Outputs(out_dir / "o.mp4", side_by_side=out_dir / "o_sbs.mp4",
                                                     previews=out_dir / "o_preview", plot=out_dir / "o_plot.png"),
                            "sad", pipeline.EditOptions(preview_n=2))
    assert listing(out_dir) == {"o.mp4", "o_sbs.mp4", "o_plot.png", "o_preview", "o_preview/frame_00000.png",
                                "o_preview/frame_00000_compare.png", "o_preview/frame_00024.png",
                                "o_preview/frame_00024_compare.png"}
    assert r.output == out_dir / "o.mp4"
    # the result says where each preview is, which frame and when: the first and the last frame (25 fps)
    assert [(p.index, p.time) for p in r.render.previews] == [(0, 0.0), (24, pytest.approx(24 / 25, abs=1e-3))]
    assert all(p.edited.exists() and p.compare.exists() for p in r.render.previews)


def test_a_real_full_disk_fails_with_one_line_and_leaves_nothing(tmp_path, short_clip):
    """A real write error from the OS: the file-size limit (RLIMIT_FSIZE) makes writes fail like a full disk."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = sserd("edit", short_clip, "-o", out_dir / "o.mp4", "--emotion", "sad", "-q", cwd=tmp_path, preexec_fn=limit)
    assert r.returncode == 1, r.stderr
    err = one_error_line(r)
    assert "disk space" in err.lower(), err
    assert str(out_dir) in err and PARTIAL_SUFFIX not in err, err  # the output's folder, not the staging one
    assert listing(out_dir) == set()


def test_a_failed_job_removes_the_folders_it_created(tmp_path, short_clip, monkeypatch):
    _fail_plot(monkeypatch)
    with pytest.raises(RuntimeError):
        pipeline.edit_video(short_clip, pipeline.Outputs(tmp_path / "a" / "b" / "o.mp4", plot=tmp_path / "a" / "p.png"), "sad")
    assert listing(tmp_path) == set()


# ------------------------------------------------------------------ signals

_STAGE_HOOK = textwrap.dedent("""
    import sys, time
    from sserd_core import pipeline, cli
    stage = sys.argv.pop(1)

    def hold(name):
        print("STAGE " + name, file=sys.stderr, flush=True)
        for _ in range(600):  # a slow stage: the main thread returns to Python often, as the real stages do
            time.sleep(0.1)

    if stage == "tracking":
        real_track = pipeline.stages.track_faces
        def track(frames, *a, **k):
            def slow():
                for i, f in enumerate(frames):
                    if i == 10:
                        hold("tracking")
                    yield f
            return real_track(slow(), *a, **k)
        pipeline.stages.track_faces = track
    elif stage == "rendering":
        # hold on the main thread while frames are being published (the frame workers keep editing
        # around it): --plot makes the pipeline measure every edited frame there
        from sserd_core import expression
        real_measure = expression.measure_frame
        n = {"i": 0}
        def measure(*a, **k):
            n["i"] += 1
            if n["i"] == 20:
                hold("rendering")
            return real_measure(*a, **k)
        expression.measure_frame = measure
    elif stage == "muxing":
        real_mux = pipeline.job.mux_audio
        def mux(*a, **k):
            out = real_mux(*a, **k)   # the muxed output exists (staged), not yet published
            hold("muxing")
            return out
        pipeline.job.mux_audio = mux
    sys.exit(cli.main())
""")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("stage", ["tracking", "rendering", "muxing"])
def test_signals_at_every_stage_leave_nothing(tmp_path, short_clip, stage, sig):
    hook = tmp_path / "hook.py"
    hook.write_text(_STAGE_HOOK)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    src = tmp_path / "in.mp4"
    shutil.copy(short_clip, src)
    h = md5(src)
    p = subprocess.Popen([sys.executable, str(hook), stage, "edit", str(src), "-o", str(out_dir / "o.mp4"),
                          "--emotion", "sad", "--side-by-side", "--preview", "2", "--plot", str(out_dir / "p.png"),
                          "-q"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 300
    seen = ""
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        seen += line
        if line.startswith("STAGE"):
            break
    assert f"STAGE {stage}" in seen, seen
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    err = seen + err
    num = int(getattr(signal, sig))
    assert p.returncode == 128 + num, (p.returncode, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and sig in lines[0] and "no output was written" in lines[0], err
    assert listing(out_dir) == set()
    assert listing(tmp_path) == {"hook.py", "out", "in.mp4"} and md5(src) == h


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """4 s at 720p with audio (100 frames): long enough to be signalled while tracking, rendering and muxing.
    The square sample is scaled to 720 px high and padded to 1280 wide: stretched to 1280x720 instead, its
    face was too wide for the detector and every job on it ended as 'No face found' after tracking."""
    p = tmp_path_factory.mktemp("long") / "long720.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "4", "-vf", "scale=-2:720,pad=1280:720:(ow-iw)/2:0",
                    "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(p)], check=True)
    return p


def _case_id(case) -> str:
    """A table row's id: its first value (a ``pytest.param`` row keeps its values in ``.values``)."""
    return case.values[0] if hasattr(case, "marks") else case[0]


# The job says where it is: _BURST_HOOK runs the CLI and prints "AT <stage>" (from the main thread, without
# waiting) as the command starts (its signal handlers installed, nothing imported or opened yet), when the
# progress of a stage reaches a frame, or as muxing starts. A burst timed in seconds lands wherever a machine's
# speed puts the job: on the clip this test once used, every job ended by itself at about 10 s, and the "late"
# burst at 10 s met a job that had already failed; on a loaded machine, 0.25 s can be before the handlers.
_BURST_HOOK = textwrap.dedent("""
    import sys
    from sserd_core import cli
    stage, frame = sys.argv.pop(1), int(sys.argv.pop(1))

    def mark():
        print("AT " + stage, file=sys.stderr, flush=True)

    real_edit = cli.cmd_edit
    def edit(args):
        if stage == "start":
            mark()
        return real_edit(args)
    cli.cmd_edit = edit
    real_factory = cli._progress_factory
    def factory(quiet, stream=None):
        real = real_factory(quiet, stream)
        def progress(name, done, total):
            if name == stage and done == frame:
                mark()
            real(name, done, total)
        progress.close = real.close
        return progress
    cli._progress_factory = factory
    if stage == "muxing":
        from sserd_core import pipeline
        real_mux, marked = pipeline.job.mux_audio, []
        def mux(*a, **k):
            if not marked:
                marked.append(True)
                mark()
            return real_mux(*a, **k)
        pipeline.job.mux_audio = mux
    sys.exit(cli.main())
""")

SIGNAL_BURSTS = [
    # (case id, signals, ms apart, (stage, frame) as the job reports it)
    ("burst-5x5ms-early", 5, 5, ("start", 0)),  # while the pipeline is imported, the models start loading
    ("burst-5x5ms-tracking", 5, 5, ("tracking face", 10)),
    ("burst-50x2ms-tracking", 50, 2, ("tracking face", 10)),
    ("burst-5x5ms-rendering", 5, 5, ("rendering", 20)),
    ("burst-50x2ms-rendering", 50, 2, ("rendering", 50)),
    ("burst-50x2ms-late", 50, 2, ("rendering", 98)),  # over the last frames, the encoders' flush and the mux
    ("burst-50x2ms-muxing", 50, 2, ("muxing", 1)),
]


@pytest.mark.parametrize("case,count,gap_ms,when", SIGNAL_BURSTS,
                         ids=[_case_id(c) for c in SIGNAL_BURSTS])
def test_a_burst_of_signals_stops_the_job_once_and_cleanly(tmp_path, long_clip, case, count, gap_ms, when):
    """Any number of SIGTERMs at any moment: exit 143, one line, nothing left, no 'Exception ignored' (each case
    twice: a native crash shows up as exit 139 or -11)."""
    hook = tmp_path / "hook.py"
    hook.write_text(_BURST_HOOK)
    for run in range(2):
        out_dir = tmp_path / f"run{run}"
        job = ["edit", str(long_clip), "-o", str(out_dir / "o.mp4"), "--emotion", "sad", "--side-by-side",
               "--preview", "4", "-q"]
        p = subprocess.Popen([sys.executable, str(hook), when[0], str(when[1]), *job], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV)
        seen = ""
        while not seen.endswith(f"AT {when[0]}\n"):
            line = p.stderr.readline()
            assert line, (case, run, p.wait(timeout=60), seen)  # the job ended before it got there
            seen += line
        sent = 0
        for _ in range(count):
            if p.poll() is not None:
                break
            p.send_signal(signal.SIGTERM)
            sent += 1
            time.sleep(gap_ms / 1000)
        out, err = p.communicate(timeout=120)
        err = seen + err
        if f"wrote {out_dir / 'o.mp4'}" in out:  # done before the first signal came (muxing takes ~0.1 s): exit 0,
            # or the default SIGTERM while the interpreter exits after the command has returned
            print(f"{case}, run {run}: the job finished before the burst (exit {p.returncode})")
            assert p.returncode in (0, -signal.SIGTERM) and "error:" not in err, (case, run, p.returncode, err)
            assert {"o.mp4", "o_side_by_side.mp4", "o_preview"} <= listing(out_dir), listing(out_dir)
            continue
        assert sent, (case, run, p.returncode, err)  # the burst met a running job
        assert p.returncode == 128 + signal.SIGTERM, (case, run, p.returncode, err)
        assert "Exception ignored" not in err and "Traceback" not in err, err
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and "SIGTERM" in lines[0], err
        if "outputs were complete" in lines[0]:  # the first signal came during the final renames
            names = listing(out_dir)
            assert {"o.mp4", "o_side_by_side.mp4", "o_preview"} <= names, names
            assert not [n for n in names if PARTIAL_SUFFIX in n], names
        else:
            assert "no output was written and no temporary file is left" in lines[0], err
            assert listing(out_dir) == set(), listing(out_dir)


@pytest.fixture(scope="module")
def faceless_clip(tmp_path_factory) -> Path:
    """Half a second of grey at 25 fps (12 frames): there is no face to find."""
    p = tmp_path_factory.mktemp("faceless") / "grey.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=gray:s=320x240:r=25:d=0.48", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(p)], check=True)
    return p


@pytest.mark.parametrize("how", ["signal", "unraised"])
def test_a_stop_at_any_moment_of_tracking_is_the_stop_never_no_face(faceless_clip, monkeypatch, how):
    """The decoder thread asks for a stop as it hands on frame k, for every k: as the first frame is decoded,
    during tracking, and after the last frame, as the frames end. Tracking a clip with no face then always ends
    as the stop (``Interrupted``), never as "No face found" or "declares N frames but only M". ``signal``: a
    SIGTERM to the process, raised in the main thread by the CLI's handler; ``unraised``: the handler's
    exception lost where it could not be raised (a finaliser), the stop only recorded."""
    from sserd_core import stop
    from sserd_core.errors import Interrupted, NoFaceError

    video = pipeline.load_video(faceless_clip)
    n = video.n_frames
    assert n == 12
    with pytest.raises(NoFaceError):  # unstopped, the clip has no face (and dlib and OpenCV are loaded: a signal in
        pipeline.disentangle_content(video)  # an extension module's initialisation breaks it for the process)
    real = media.iter_frames
    handlers, hook = {s: signal.getsignal(s) for s in stop.SIGNALS}, sys.unraisablehook

    def ask():
        if how == "signal":
            os.kill(os.getpid(), signal.SIGTERM)  # the decoder thread blocks it: the main thread takes it
        else:
            try:
                stop._handler(signal.SIGTERM, None)
            except Interrupted:
                pass

    for k in range(n + 1):
        tracked = threading.Event()

        def frames(*a, k=k, tracked=tracked, **kw):
            for f in real(*a, **kw):
                if f.index == k:
                    ask()
                yield f
            if k == n:
                tracked.wait(30)  # the tracker has had every frame: only the end of the frames is still to come
                ask()

        monkeypatch.setattr(media, "iter_frames", frames)
        saved = stop.install()
        try:
            with pytest.raises(Interrupted):
                pipeline.disentangle_content(video, progress=lambda stage, done, total: done == n and tracked.set())
        finally:
            stop.uninstall(saved)
            for s, h in handlers.items():
                signal.signal(s, h)
            sys.unraisablehook = hook


def test_a_stop_that_cuts_the_dlib_import_short_is_the_stop_not_a_missing_package(monkeypatch):
    """A signal during dlib's first import (pybind11 reports the handler's exception as "ImportError:
    initialization failed") is the stop, not "dlib is not installed"."""
    from sserd_core import face, stop
    from sserd_core.errors import Interrupted, NoFaceError

    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` fails as the cut-short import does
    monkeypatch.setattr(face, "_detector_bytes", [])
    monkeypatch.setattr(face, "_loaded", [])
    with pytest.raises(NoFaceError, match="not installed"):  # no stop: the package is missing
        face._new_detector()
    handlers, hook = {s: signal.getsignal(s) for s in stop.SIGNALS}, sys.unraisablehook
    saved = stop.install()
    try:
        with pytest.raises(Interrupted):
            stop._handler(signal.SIGTERM, None)  # the signal, its exception lost in the import
        with pytest.raises(Interrupted):
            face._new_detector()
        with pytest.raises(Interrupted):
            face._models()
    finally:
        stop.uninstall(saved)
        for s, h in handlers.items():
            signal.signal(s, h)
        sys.unraisablehook = hook


_PRELOAD_CUT_SHORT = textwrap.dedent("""
    import os, signal, sys, threading
    from sserd_core import cli
    real_start, cut = threading.Thread.start, []
    def start(self):
        if self.name == "sserd-preload" and not cut:
            cut.append(True)
            os.kill(os.getpid(), signal.SIGTERM)  # raised in the main thread before this thread starts
        real_start(self)
    threading.Thread.start = start
    sys.exit(cli.main())
""")


def test_a_signal_between_making_a_preload_thread_and_starting_it_is_a_clean_stop(tmp_path, short_clip):
    """What the early burst found: a signal inside ``face.preload`` left a thread that never started, and the
    stop's wait for the preload threads raised "cannot join thread before it is started" (a traceback), left the
    other thread inside dlib, and the process aborted (exit -6). Now: exit 143, one line."""
    hook = tmp_path / "hook.py"
    hook.write_text(_PRELOAD_CUT_SHORT)
    r = subprocess.run([sys.executable, str(hook), "edit", str(short_clip), "-o", str(tmp_path / "out" / "o.mp4"),
                        "--emotion", "sad", "-q"], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 128 + signal.SIGTERM, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "terminate" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "no output was written" in lines[0], r.stderr
    assert listing(tmp_path) == {"hook.py"}


@pytest.mark.parametrize("how", ["abandon", "close"])
def test_the_encoder_thread_ends_even_when_its_wake_up_is_lost(tmp_path, how):
    """A burst once hung a job: the encoder thread slept in the queue's get beside the queued end marker while the
    job joined it (the wake-up went to a waiter nobody slept on, as a signal raised inside the queue's put can
    leave). The state is made here: the writer's stop must still end the thread, on a failed job and on a
    normal close."""
    from fractions import Fraction

    w = media.VideoWriter(str(tmp_path / "o.mp4"), 64, 64, Fraction(25), threaded=True)
    w.write(np.zeros((64, 64, 3), np.uint8), 0.0)
    time.sleep(0.5)  # the thread has taken the frame and waits for the next
    stale = threading.Lock()
    stale.acquire()
    w._queue.not_empty._waiters.appendleft(stale)  # takes the next wake-up
    stopper = threading.Thread(target=(lambda: w.__exit__(KeyboardInterrupt, None, None)) if how == "abandon"
                               else w.close, daemon=True)
    stopper.start()
    stopper.join(20)
    assert not stopper.is_alive(), "the writer's stop waits for ever on its encoder thread"
    if how == "close":
        assert media.probe_video(tmp_path / "o.mp4").n_frames == 1


def test_a_signal_while_opening_a_fifo_is_a_stop_not_an_error(tmp_path):
    """Opening a FIFO blocks until a writer comes; SIGTERM then interrupts the system call: exit 143, not 1."""
    fifo = tmp_path / "in.mp4"
    os.mkfifo(fifo)
    p = subprocess.Popen([sys.executable, "-m", "sserd_core.cli", "edit", str(fifo), "-o", str(tmp_path / "o.mp4"),
                          "--emotion", "sad", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(3)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, (p.returncode, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "Traceback" not in err, err
    assert listing(tmp_path) == {"in.mp4"}


def test_a_job_killed_with_sigkill_leaves_a_recognisable_partial_that_the_next_run_mentions(tmp_path, short_clip):
    hook = tmp_path / "hook.py"
    hook.write_text(_STAGE_HOOK)
    p = subprocess.Popen([sys.executable, str(hook), "rendering", "edit", str(short_clip), "-o", str(tmp_path / "o.mp4"),
                          "--emotion", "sad", "--plot", str(tmp_path / "p.png"), "-q"], stderr=subprocess.PIPE, text=True,
                         env=ENV)
    while not (p.stderr.readline() or "STAGE").startswith("STAGE"):
        pass
    p.kill()
    p.wait(timeout=60)
    left = [n for n in listing(tmp_path) if "/" not in n and n != "hook.py"]
    assert len(left) == 1 and left[0].endswith(PARTIAL_SUFFIX), left
    assert stale_partials(tmp_path) == [tmp_path / left[0]]
    r = sserd("edit", short_clip, "-o", tmp_path / "o.mp4", "--emotion", "sad", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert left[0] in r.stderr and "killed" in r.stderr          # mentioned ...
    assert (tmp_path / left[0]).is_dir()                        # ... and left alone
    assert "o.mp4" in listing(tmp_path)


def test_a_running_jobs_staging_folder_is_not_called_stale(tmp_path):
    with OutputSet() as outs:
        outs.file(tmp_path / "a.mp4").write_bytes(b"x")
        assert stale_partials(tmp_path) == []
    assert listing(tmp_path) == {"a.mp4"}


# ------------------------------------------------------------------ silently wrong inputs, now said

def test_audio_is_stream_copied_when_end_is_past_the_clip(tmp_path, short_clip):
    r = sserd("edit", short_clip, "-o", tmp_path / "o.mp4", "--emotion", "sad", "--end", "100", "-q")
    assert r.returncode == 0, r.stderr

    def packets(p):
        with av.open(str(p)) as c:
            return [bytes(k) for k in c.demux(c.streams.audio[0]) if k.size]

    assert packets(tmp_path / "o.mp4") == packets(short_clip)


def _decoded_audio(p) -> np.ndarray:
    with av.open(str(p)) as c:
        chunks = [f.to_ndarray().reshape(len(f.layout.channels), -1) if f.format.is_planar
                  else f.to_ndarray().reshape(-1, len(f.layout.channels)).T for f in c.decode(c.streams.audio[0])]
    return np.concatenate(chunks, 1)


AUDIO_CONTAINERS = [
    # (case id, output extension, what the decoded audio is against the source's)
    ("audio-identical-mp4", ".mp4", "identical"),
    ("audio-identical-m4v", ".m4v", "identical"),
    ("audio-identical-mov", ".mov", "identical"),
    ("audio-mkv-priming-said", ".mkv", "priming"),
    ("audio-webm-reencoded", ".webm", "opus"),
]


@pytest.mark.parametrize("case,ext,kind", AUDIO_CONTAINERS, ids=[c[0] for c in AUDIO_CONTAINERS])
def test_each_output_container_keeps_the_audio_samples_or_says_why_not(tmp_path, short_clip, case, ext, kind):
    out = tmp_path / f"o{ext}"
    r = sserd("edit", short_clip, "-o", out, "--emotion", "sad", "-q")
    assert r.returncode == 0, r.stderr
    src, got = _decoded_audio(short_clip), _decoded_audio(out)
    if kind == "identical":
        assert got.shape == src.shape and np.array_equal(got, src)
        assert "warning" not in r.stderr, r.stderr
    elif kind == "priming":  # the source's samples, after the AAC encoder's 1024 priming samples; and said
        assert got.shape[1] == src.shape[1] + 1024 and np.array_equal(got[:, 1024:], src)
        assert re.search(r"warning: .*Matroska cannot mark AAC's priming samples.*\.mp4 or \.mov", r.stderr), r.stderr
    else:  # re-encoded to Opus at 48 kHz, as the README says: the same length within 25 ms
        with av.open(str(out)) as c:
            a = c.streams.audio[0]
            assert a.codec_context.name == "opus"
            seconds = got.shape[1] / a.codec_context.sample_rate
        assert abs(seconds - src.shape[1] / 22050) < 0.025, seconds


def test_every_audio_track_is_kept(tmp_path, short_clip):
    two = tmp_path / "two_tracks.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(short_clip), "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-map", "0:v", "-map", "0:a", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(two)],
                   check=True)
    r = sserd("edit", two, "-o", tmp_path / "o.mkv", "--emotion", "sad", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert len(c.streams.audio) == 2


@pytest.fixture(scope="module")
def truncated_faststart(tmp_path_factory, short_clip) -> Path:
    d = tmp_path_factory.mktemp("trunc")
    full = d / "full.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(short_clip), "-c", "copy", "-movflags", "+faststart", str(full)],
                   check=True)
    cut = d / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 4])
    return cut


def test_a_truncated_clip_is_reported_with_frame_counts(tmp_path, truncated_faststart):
    r = sserd("edit", truncated_faststart, "-o", tmp_path / "o.mp4", "--emotion", "sad", "-q")
    assert r.returncode == 0, r.stderr
    m = re.search(r"warning: .*declares (\d+) frames.* only (\d+) could be decoded", r.stderr)
    assert m, r.stderr
    declared, decoded = int(m.group(1)), int(m.group(2))
    assert declared == 25 and 0 < decoded < 25
    assert media.probe_video(tmp_path / "o.mp4").n_frames == decoded


def test_strict_refuses_a_truncated_clip_and_writes_nothing(tmp_path, truncated_faststart):
    r = sserd("edit", truncated_faststart, "-o", tmp_path / "o.mp4", "--emotion", "sad", "--strict", "-q")
    assert r.returncode == 1
    assert "truncated" in one_error_line(r)
    assert listing(tmp_path) == set()


def _corrupt_middle(d: Path) -> Path:
    """2 s of the sample (50 frames, a key frame every 10), 20 KB of garbage in the middle of the file."""
    clean = d / "clean.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "2", "-c:v", "libx264", "-g", "10", "-c:a", "copy",
                    str(clean)], check=True)
    data = bytearray(clean.read_bytes())
    rng = np.random.default_rng(1)
    mid = len(data) // 2
    data[mid - 20000:mid] = rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()
    bad = d / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    return bad


def _ffprobe_frames(p: Path) -> int:
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v", "-show_entries",
                        "stream=nb_read_frames", "-of", "csv=p=0", str(p)], capture_output=True, text=True)
    return int(r.stdout.strip().split(",")[0])


def test_decoding_goes_on_past_a_damaged_middle_and_says_how_many_frames_were_lost(tmp_path):
    bad = _corrupt_middle(tmp_path)
    readable = _ffprobe_frames(bad)
    r = sserd("edit", bad, "-o", tmp_path / "o.mp4", "--emotion", "sad", "-q")
    assert r.returncode == 0, r.stderr
    m = re.search(r"warning: corrupt\.mp4: (\d+) damaged packet\(s\).*: (\d+) of (\d+) frames are missing", r.stderr)
    assert m, r.stderr
    lost, declared = int(m.group(2)), int(m.group(3))
    written = media.probe_video(tmp_path / "o.mp4").n_frames
    assert declared == 50 and written == declared - lost
    assert written >= readable - 2, (written, readable)  # about what ffprobe decodes (stale frames dropped), not 11


def test_a_file_without_streams_is_said_so(tmp_path):
    empty = tmp_path / "zero.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=s=64x64:d=1", "-frames:v", "0", "-c:v", "libx264",
                    str(empty)], check=True)
    r = sserd("edit", empty, "-o", tmp_path / "o.mp4", "--emotion", "sad", "-q")
    assert r.returncode == 1
    err = one_error_line(r)
    assert "no video frames" in err and "no video stream" not in err, err


def test_streams_the_output_leaves_out_are_named(tmp_path, short_clip):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    src = tmp_path / "sub.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(short_clip), "-i", str(srt), "-map", "0", "-map", "1", "-c:v", "copy",
                    "-c:a", "copy", "-c:s", "srt", "-attach", str(ASTRONAUT_FACE), "-metadata:s:t", "mimetype=image/png",
                    str(src)], check=True)
    r = sserd("edit", src, "-o", tmp_path / "o.mp4", "--emotion", "sad", "-q")
    assert r.returncode == 0, r.stderr
    assert re.search(r"warning: sub\.mkv also holds 1 subtitle stream.*video and audio only", r.stderr), r.stderr


def test_frames_are_contiguous_even_when_rows_are_padded(tmp_path):
    """dlib misses faces in frames whose rows are padded in memory; 360 px rows are padded by the decoder."""
    frames = [(np.ascontiguousarray(np.resize(f, (360, 360, 3))), t) for f, t in sample_frames(end=0.2)]
    clip = write_clip(tmp_path / "sq.mp4", frames, (360, 360))
    for fr in media.iter_frames(media.probe_video(clip)):
        assert fr.rgb.flags["C_CONTIGUOUS"]


def test_huge_frames_get_a_memory_estimate_and_are_refused_beyond_the_limit():
    with pytest.raises(SSERDError, match=r"GiB of memory.*available"):
        validate.frame_memory(7680, 4320, limit=2 * 2**30)
    assert validate.frame_memory(1280, 720, limit=2 * 2**30) < 2**30
    # bounded by the frame size, not the clip length
    assert validate.memory_estimate(7680, 4320) < 4 * 2**30


@pytest.fixture(scope="module")
def clip_4k(tmp_path_factory) -> Path:
    """0.2 s of the sample at 3840x2160 (scaled by height, padded: the face keeps its shape), with audio."""
    p = tmp_path_factory.mktemp("uhd") / "uhd.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "0.2", "-vf", "scale=-2:2160,pad=3840:2160:(ow-iw)/2:0",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(p)], check=True)
    return p


MEMORY_LIMITS = [("memory-limit-0.5g", 0.5), ("memory-limit-0.6g", 0.6), ("memory-limit-0.7g", 0.7), ("memory-limit-0.8g", 0.8), ("memory-limit-1.2g", 1.2), ("memory-limit-1.6g", 1.6),
                 ("memory-limit-2.0g", 2.0), ("memory-limit-2.5g", 2.5)]


@pytest.mark.parametrize("case,gib", MEMORY_LIMITS, ids=[c[0] for c in MEMORY_LIMITS])
def test_out_of_memory_is_one_line(tmp_path, clip_4k, case, gib):
    """A 4K clip under an address-space limit (`ulimit -v`): the job either succeeds or says, in one line, that
    memory ran out (refused up front from the estimate, or when an allocation fails) — never a traceback, never
    "truncated or damaged"; nothing is left."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (int(gib * 2**30), int(gib * 2**30)))

    out_dir = tmp_path / "out"
    r = sserd("edit", clip_4k, "-o", out_dir / "o.mp4", "--emotion", "sad", "-q", preexec_fn=limit)
    if r.returncode == 0:
        assert media.probe_video(out_dir / "o.mp4").n_frames == 5
        return
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = one_error_line(r)
    assert "memory" in err.lower() and "truncated" not in err, err
    assert listing(out_dir) == set()


# ------------------------------------------------------------------ the Python API: same checks, SSERDError

API_CASES = [
    ("api-emotion-none", dict(emotion=None), "emotion"),
    ("api-start-nan", dict(start=math.nan), "finite"),
    ("api-end-inf", dict(end=math.inf), "finite"),
    ("api-face-index-negative", dict(face_index=-1), "0 or more"),
    ("api-face-index-float", dict(face_index=0.5), "whole number"),
    ("api-comparison-bad-extension", dict(side_by_side="k.xyz"), "must end in"),
    ("api-preview-without-folder", dict(preview_n=3), "preview"),
]


@pytest.mark.parametrize("case,kw,word", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_rejects_bad_arguments_before_decoding(tmp_path, short_clip, monkeypatch, case, kw, word):
    monkeypatch.chdir(tmp_path)
    args = dict(emotion="sad")
    args.update(kw)
    calls = []
    monkeypatch.setattr(pipeline.stages, "track_faces", lambda *a, **k: calls.append(1), raising=True)
    emotion = args.pop("emotion")
    outs = {k: args.pop(k) for k in ("side_by_side", "previews", "plot") if k in args}
    with pytest.raises(SSERDError, match=word):  # EditOptions checks its fields when it is made, the job the rest
        pipeline.edit_video(short_clip, pipeline.Outputs(tmp_path / "o.mp4", **outs), emotion,
                            pipeline.EditOptions(**args))
    assert not calls and listing(tmp_path) == set()


USAGE_ERRORS = [
    # (case id, arguments after `edit in.mp4 -o o.mp4`, words the one error line contains)
    ("usage-intensity-not-a-number", ["--emotion", "sad", "--intensity", "abc"], ["--intensity", "invalid float"]),
    ("usage-face-index-fraction", ["--emotion", "sad", "--face-index", "1.5"], ["--face-index", "invalid int"]),
    ("usage-sync-unknown", ["--reference", "r.mp4", "--sync", "bogus"], ["--sync", "invalid choice"]),
    ("usage-curve-starting-with-minus", ["--curve", "-1:happy,2:sad"], ["time must be >= 0"]),
]


@pytest.mark.parametrize("case,extra,words", USAGE_ERRORS, ids=[c[0] for c in USAGE_ERRORS])
def test_usage_errors_are_one_line(tmp_path, short_clip, case, extra, words):
    r = sserd("edit", short_clip, "-o", tmp_path / "o.mp4", "-q", *extra, cwd=tmp_path)
    assert r.returncode in (1, 2), r.stderr
    assert r.stderr.strip().count("\n") == 0 and "usage:" not in r.stderr, r.stderr
    err = one_error_line(r)
    assert all(w in err for w in words), err
    assert listing(tmp_path) == set()


OPTIONS_CASES = [
    # (case id, EditOptions fields, words of the error): refused at construction, before any work
    ("options-grid-step-huge", dict(grid_step=10**9), "grid_step must be between"),
    ("options-reference-nested-list", dict(reference=[[0, 1], [2, 3]]), "reference must be"),
    ("options-strict-text", dict(strict="no"), "strict must be True or False"),
    ("options-measure-number", dict(measure=2), "measure must be True or False"),
    ("options-sync-bogus", dict(sync="bogus", reference="face.png"), "sync must be"),
    ("options-reference-complex-array", dict(reference=np.zeros((64, 64, 3), complex)), "real numbers"),
    ("options-reference-object-array", dict(reference=np.zeros((64, 64, 3), object)), "real numbers"),
    ("options-threads-too-many", dict(threads=1000), "between 1 and 16"),
    ("options-batch-size-huge", dict(batch_size=10**6), "batch size must be between 1 and 256"),
    ("options-max-face-size-negative", dict(max_face_size=-1), "maximum face size must be between"),
    ("options-dtype-bogus", dict(dtype="fp8"), "Unknown dtype"),
    ("options-noise-mode-bogus", dict(noise_mode="loud"), "Unknown noise mode"),
    ("options-unknown-emotion", dict(emotion="sleepy"), "Unknown emotion"),
    ("options-two-targets", dict(emotion="sad", curve="0:happy"), "only one"),
    ("options-intensity-text", dict(emotion="sad", intensity="abc"), "must be a number"),
    ("options-interpolation", dict(interpolation="nearest"), "interpolation"),
]


@pytest.mark.parametrize("case,fields,words", OPTIONS_CASES, ids=[c[0] for c in OPTIONS_CASES])
def test_edit_options_check_themselves_at_construction(case, fields, words):
    with pytest.raises(SSERDError, match=words):
        pipeline.EditOptions(**fields)


def test_api_reference_array_of_complex_numbers_is_refused():
    with pytest.raises(SSERDError, match="real numbers"):
        pipeline.extract_emotion(reference=np.zeros((64, 64, 3), complex))


def test_threads_count_in_the_memory_estimate():
    assert validate.memory_estimate(1280, 720, threads=16) > validate.memory_estimate(1280, 720, threads=1)
    with pytest.raises(SSERDError, match="fewer --threads"):
        validate.frame_memory(1280, 720, limit=500 * 2**20, threads=16)
    assert validate.frame_memory(1280, 720, limit=500 * 2**20, threads=1) < 500 * 2**20


def test_api_accepts_a_label_string_as_emotion(tmp_path, short_clip):
    r = pipeline.edit_video(short_clip, tmp_path / "o.mp4", "sad")
    assert r.render.n_frames == 25


EMOTION_API_CASES = [
    ("api-intensity-none", dict(label="sad", intensity=None), "intensity"),
    ("api-intensity-nan", dict(label="sad", intensity=math.nan), "finite"),
    ("api-reference-empty-array", dict(reference=np.zeros((0, 0, 3), np.uint8)), "shape"),
    ("api-reference-4d-array", dict(reference=np.zeros((2, 64, 64, 3), np.uint8)), "shape"),
    ("api-label-not-text", dict(label=3), "text"),
]


@pytest.mark.parametrize("case,kwargs,word", EMOTION_API_CASES, ids=[c[0] for c in EMOTION_API_CASES])
def test_api_extract_emotion_rejects_bad_values(case, kwargs, word):
    with pytest.raises(SSERDError, match=word):
        pipeline.extract_emotion(**kwargs)


def test_api_load_video_rejects_negative_max_frames():
    with pytest.raises(SSERDError, match="1 or more"):
        pipeline.load_video(SAMPLE, max_frames=-5)
    assert pipeline.load_video(SAMPLE, max_frames=3).n_frames == 3


def test_reliability_doc_lists_every_case():
    doc = (ROOT / "docs" / "RELIABILITY.md").read_text()
    ids = [_case_id(c) for c in BAD_ARGS + BAD_OUTPUTS + BAD_INPUTS + API_CASES + EMOTION_API_CASES + READS_AS_OUTPUTS
                         + CHANGES_BEFORE_PUBLISHING + INPUT_CHANGES + SIGNAL_BURSTS + USAGE_ERRORS
                         + OPTIONS_CASES + MEMORY_LIMITS + AUDIO_CONTAINERS] + [f[0] for f in FAULTS]
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, missing


_NO_DIFFUSERS = """
import sys, tempfile
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "diffusers" or name.startswith("diffusers."):
            raise ModuleNotFoundError("No module named 'diffusers'", name="diffusers")
sys.meta_path.insert(0, _Block())
from sserd_core import pipeline
from sserd_core.errors import SSERDError
try:
    pipeline.make_editor(tempfile.mkdtemp())
except SSERDError as exc:
    print("SSERDError:", exc)
"""


def test_a_model_without_its_optional_packages_is_one_clear_error():
    """What ComfyUI's Load Model (repo_id) and the CLI's --model get when diffusers is missing: not a raw
    ModuleNotFoundError."""
    r = subprocess.run([sys.executable, "-c", _NO_DIFFUSERS], capture_output=True, text=True, timeout=300, env=ENV)
    assert "SSERDError:" in r.stdout and "comfyui-sserd[neural]" in r.stdout and "Traceback" not in r.stderr, r


def test_space_answers_never_show_a_server_path(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    import app

    assert app.public_message("Input file not found: /tmp/gradio/abc123/talk.mp4.") == "Input file not found: talk.mp4."
    assert app.public_message("0.5 s/frame, 2 frames/s") == "0.5 s/frame, 2 frames/s"
    assert not app.ALLOW_MODEL_CHOICE or os.environ.get("SSERD_ALLOW_MODEL_CHOICE")  # off unless asked for


def test_space_jobs_read_their_own_copy_of_an_upload_gradio_puts_again(tmp_path, monkeypatch):
    """Gradio keeps one cached file per content: the same clip uploaded again (three users, three tabs) is
    written to a temporary file renamed over the cached one (``gradio.route_utils.upload_fn``), and an image it
    converts for ``type="filepath"`` is written again in place (``processing_utils.save_pil_to_cache``). A job
    that read the cached files failed with "sample.mp4 changed while the job was reading it" when such an
    upload landed while it ran; each job reads its own link or copy."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("SSERD_WORK_DIR", str(tmp_path / "work"))
    import app

    monkeypatch.setattr(app, "_work_root", None)
    up = tmp_path / "uploads" / "0123abcd"
    up.mkdir(parents=True)
    clip, face = up / "sample.mp4", up / "face.png"
    shutil.copy(SAMPLE, clip)
    shutil.copy(ASTRONAUT_FACE, face)
    real = app._pipeline_progress

    def progress(gr_progress, alive=lambda: True):
        report = real(gr_progress, alive)

        def upload_again(stage, done, total):
            if stage == "rendering" and done == 1:
                again = tmp_path / "uploads" / "tmp0123"  # as Gradio does: the same bytes, renamed over the cache
                shutil.copy(SAMPLE, again)
                os.rename(again, clip)
                face.write_bytes(face.read_bytes())  # a converted image written again in place
            report(stage, done, total)
        return upload_again

    monkeypatch.setattr(app, "_pipeline_progress", progress)
    answers = app.edit(str(clip), "reference", "happy", 1.0, str(face), "", 0, 0, 0.4, "landmark", "", progress=None)
    edited, comparison, plot, summary = next(answers)
    assert Path(edited).is_file() and Path(comparison).is_file() and "**Edited** 10 frames" in summary, summary
    answers.close()
    assert [p.name for p in up.iterdir()] and md5(clip) == md5(SAMPLE)  # the uploads are as Gradio left them
    assert not list((tmp_path / "work").glob("sserd-space-*/job-*")), "a job's folder was left"


def test_space_reads_only_uploaded_or_bundled_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("SSERD_WORK_DIR", str(tmp_path / "work"))
    import app

    up = tmp_path / "uploads" / "abc"
    up.mkdir(parents=True)
    shutil.copy(SAMPLE, up / "talk.mp4")
    (up / "link.mp4").symlink_to("/etc/hostname")
    assert app._confined(str(up / "talk.mp4"), "video") == str(up / "talk.mp4")
    assert app._confined(str(app.SAMPLE_VIDEO), "video")
    for bad in ("/etc/hostname", str(up / ".." / ".." / ".." / "x.mp4"), str(up / "link.mp4")):
        with pytest.raises(SSERDError, match="uploaded to this Space"):
            app._confined(bad, "video")
