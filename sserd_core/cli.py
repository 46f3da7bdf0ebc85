"""``sserd`` — the command line over the one pipeline.

Examples::

    sserd edit talk.mp4 -o happy.mp4 --emotion happy --intensity 0.8
    sserd edit talk.mp4 -o like_ref.mp4 --reference someone_smiling.jpg
    sserd edit talk.mp4 -o arc.mp4 --curve "0:neutral,2:happy@0.9,5:sad@0.6" --side-by-side
    sserd info talk.mp4
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Optional

from . import __version__, stop
from .errors import SSERDError

#: optional packages → the extra that installs them (for a one-line error when one is missing)
_EXTRA_FOR = {"torch": "gpu", "diffusers": "neural", "safetensors": "neural", "huggingface_hub": "neural",
              "accelerate": "neural", "sklearn": "train", "gradio": "space"}

#: modules that add subcommands through ``register(subparsers)``
_EXTENSIONS: list[str] = ["sserd_core.models.convert", "sserd_core.neural.cli", "sserd_core.eval.cli",
                           "sserd_core.train.cli"]

_EDIT_EXAMPLES = """\
examples:
  sserd edit assets/sample.mp4 -o out/sad.mp4 --emotion sad --intensity 0.8
      the person looks sad; the mouth still says the same words; audio copied
  sserd edit talk.mp4 -o out/ref.mp4 --reference face.jpg
      show the emotion of the face in face.jpg (anyone's face)
  sserd edit talk.mp4 -o out/arc.mp4 --curve "0:neutral,2:happy@0.9,5:sad@0.6"
      neutral at 0 s, turning happy by 2 s, then sad by 5 s (linear in between)
  sserd edit talk.mp4 -o out/ctl.mp4 --control "smile=0.6, brow_inner=0.4"
      the source's own expression with a smile and raised inner brows; jaw and lips keep the speech
  sserd edit talk.mp4 -o out/mix.mp4 --emotion happy --intensity 0.6 --control "brow_lower=-0.3"
      happy at 0.6 with the brows lifted a little (controls add to a label, a reference or a curve)
  sserd edit talk.mp4 -o out/ramp.mp4 --control "0: smile=0; 2: smile=0.8; 4: smile=-0.5"
      controls over time: keyframes TIME: NAME=VALUE ... separated by ';' (linear in between)
  sserd edit talk.mp4 -o out/cut.mp4 --emotion surprised --start 3 --end 8 --side-by-side --preview 4
      edit only 3..8 s, also write out/cut_side_by_side.mp4 and 4 PNG frames in out/cut_preview/
  sserd edit talk.mp4 -o out/nn.mp4 --reference face.jpg --model models/sserd-mead --device cuda --batch-size 16
      the neural SSERD backend on a GPU, 16 frames per network call (see docs/NEURAL.md)
  sserd edit two_people.mp4 -o out/both.mp4 --emotion happy --face-target 1=sad@0.6
      the largest face (index 0) turns happy, the next largest sad at 0.6; each face tracked on its own

emotions: """


def _progress_factory(quiet: bool, stream=None):
    """A pipeline progress callback: one tqdm bar per stage (frames, fps, ETA) on a terminal; where stderr is
    not one (a log file, a pipe, a CI job) one line per stage when it ends, not a bar's many redraws."""
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    bars: dict = {}
    if not quiet and not (hasattr(stream, "isatty") and stream.isatty()):
        started: dict = {}

        def log_line(stage: str, done: int, total: int) -> None:
            t = started.setdefault(stage, time.monotonic())
            if done >= total and stage not in bars:
                bars[stage] = True
                s = time.monotonic() - t
                rate = f", {done / s:.1f} frames/s" if s > 0 else ""
                print(f"{stage}: {done} frames in {s:.1f} s{rate}", file=stream, flush=True)

        log_line.close = lambda: None  # type: ignore[attr-defined]
        return log_line

    def progress(stage: str, done: int, total: int) -> None:
        if quiet:
            return
        bar = bars.get(stage)
        if bar is None:
            for b in bars.values():
                b.close()
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>14}", unit="frame", dynamic_ncols=True, leave=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close():
        for b in bars.values():
            b.close()

    progress.close = close  # type: ignore[attr-defined]
    return progress


def _mention_stale(*folders) -> None:
    from .outputs import stale_partials

    seen = set()
    for folder in folders:
        for p in stale_partials(folder):
            if p not in seen:
                seen.add(p)
                print(f"warning: {p} is left over from an earlier sserd run that was killed; it is not used — "
                      "delete it when no sserd job is running.", file=sys.stderr)


def _mention_unused_neural_flags(options) -> None:
    """A warning (the job goes on) for neural-backend flags given with the landmark backend, which ignores them."""
    from .pipeline import EditOptions
    from .pipeline.backends import is_landmark

    if is_landmark(options.backend):
        given = [f"--{name.replace('_', '-')}" for name in EditOptions.NEURAL
                 if getattr(options, name) != getattr(EditOptions, name)]
        if given:
            print(f"warning: {', '.join(given)} only apply to a neural model (--model PATH_OR_REPO_ID); the landmark "
                  "backend ignores them.", file=sys.stderr)


def cmd_edit(args) -> int:
    from . import validate
    from .pipeline import EditOptions, Outputs, edit
    from .pipeline.faces import face_targets

    chosen = [a for a in ("emotion", "reference", "curve") if getattr(args, a)]
    if not chosen and not args.control and not args.face_target:
        raise SSERDError("Say what emotion to show: --emotion LABEL [--intensity X], --reference IMAGE, --curve TEXT, "
                         "expression controls (--control \"smile=0.6\"), or --face-target N=TARGET for each face.")
    if len(chosen) > 1:
        raise SSERDError(f"Give only one of --emotion, --reference, --curve (got {', '.join('--' + c for c in chosen)}).")
    if args.intensity is not None and not args.emotion:
        raise SSERDError("--intensity goes with --emotion.")
    if not Path(args.input).exists():
        raise SSERDError(f"Input file not found: {args.input}.")
    # every option is checked once, by EditOptions; the paths here, before anything is read
    options = EditOptions(emotion=args.emotion, reference=args.reference, curve=args.curve, controls=args.control,
                          sync=args.sync,
                          **({} if args.intensity is None else {"intensity": args.intensity}),
                          face_index=args.face_index, faces=tuple(args.face_target or ()), start=args.start,
                          end=args.end,
                          backend=args.model or EditOptions.backend, device=args.device, threads=args.threads,
                          preview_n=args.preview, measure=bool(args.plot), strict=args.strict,
                          dtype=args.dtype, batch_size=args.batch_size, noise_mode=args.noise_mode,
                          max_face_size=args.max_face_size)
    _mention_unused_neural_flags(options)
    out = validate.output_file(args.output)
    cmp_path = out.with_name(f"{out.stem}_side_by_side{out.suffix}") if args.side_by_side else None
    preview_dir = out.with_name(f"{out.stem}_preview") if args.preview else None
    if args.plot:
        validate.output_file(args.plot, kinds=validate.PLOT_OUTPUTS, what="The plot (--plot)")
    references = {f"the reference of face {t.face_index}": t.reference for t in options.faces}
    validate.distinct_paths(input=args.input, reads={"the reference": args.reference, "the model folder": args.model,
                                                     **references},
                            output=out, side_by_side=cmp_path, plot=args.plot, preview_folder=preview_dir)
    from .face import preload

    preload()  # the options and paths are sound: the face models start loading now, on background threads
    emotion = options.target() if not options.faces else \
        {t.face_index: t.spec() for t in face_targets(options)}
    editor = options.editor()
    _mention_stale(out.parent if str(out.parent) else Path("."))
    progress = _progress_factory(args.quiet)
    if not args.quiet:
        said = emotion.describe() if not options.faces else \
            "; ".join(f"face {i}: {spec.describe()}" for i, spec in emotion.items())
        print(f"sserd: {Path(args.input).name} → {out}  [{said}; backend: {editor.name}]", file=sys.stderr)
    try:
        result = edit(args.input, Outputs(out, side_by_side=cmp_path, previews=preview_dir, plot=args.plot), options,
                      emotion=emotion, editor=editor, progress=progress)
    finally:
        progress.close()
    r = result.render
    fps = r.n_frames / max(result.seconds, 1e-6)
    print(f"wrote {result.output} ({r.n_frames} frames, {'with' if result.has_audio else 'no'} audio) "
          f"in {result.seconds:.1f} s ({fps:.1f} frames/s overall)")
    if result.comparison:
        print(f"wrote {result.comparison} (source | edited)")
    if r.previews:
        print(f"wrote {len(r.previews)} preview frames to {preview_dir}")
    if args.plot:
        print(f"wrote {args.plot}")
    if r.control_shown is not None:
        from .controls import CONTROL_NAMES

        shown = [f"{n} {100 * x:.0f}%" for n, x in zip(CONTROL_NAMES, r.control_shown) if x == x]
        if shown:
            print(f"controls shown (median share of their motion): {', '.join(shown)}")
    return 0


def cmd_info(args) -> int:
    import numpy as np

    from . import media, validate
    from .emotion import describe
    from .expression import measure_image, mouth_opening
    from .face import detect_landmarks
    from .pipeline import disentangle_content, load_video

    path = Path(args.input)
    if not path.exists():
        raise SSERDError(f"Input file not found: {args.input}.")
    validate.face_index(args.face_index)
    if media.is_still_image(path):
        rgb = media.read_image(path)
        faces = detect_landmarks(rgb)
        print(f"{path}: image {rgb.shape[1]}x{rgb.shape[0]}, {len(faces)} face{'s' if len(faces) != 1 else ''} found")
        if args.face_index >= len(faces):
            raise SSERDError(f"No face {args.face_index} in {path.name} ({len(faces)} found). SSERD needs a visible, "
                             "roughly frontal face.")
        emotion = measure_image(rgb)[args.face_index]
        print(f"face {args.face_index}: emotion shown: {describe(emotion)}")
        print(f"mouth opening (inter-ocular units): {mouth_opening(faces[args.face_index]):.3f}")
        return 0
    video = load_video(args.input, start=args.start, end=args.end)
    print(f"{video.path}: {video.width}x{video.height}, {float(video.fps):.3f} fps, {video.n_frames} frames, "
          f"{video.duration:.2f} s, rotation {video.rotation}°, "
          + (f"audio {video.audio_codec} {video.audio_sample_rate} Hz" if video.has_audio else "no audio"))
    progress = _progress_factory(args.quiet)
    content = disentangle_content(video, face_index=args.face_index, progress=progress)
    progress.close()
    found = content.found
    print(f"face {args.face_index}: visible in {int(found.sum())}/{len(found)} frames")
    mean = np.nanmean(content.source_emotion[found], 0)
    print(f"emotion shown (mean): {describe(mean)}")
    op = content.content[found, 0]
    print(f"mouth opening (inter-ocular units): mean {op.mean():.3f}, range {op.min():.3f}..{op.max():.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .emotion import EMOTIONS

    p = _Parser(
        prog="sserd",
        description="Speech-preserving facial expression editing for talking-face videos (SSERD). "
                    "Changes the emotion a person shows while the mouth keeps saying the same words, the "
                    "person stays recognisable and the audio is copied untouched. Runs offline on a CPU.",
        epilog="Run 'sserd edit --help' for the main command and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"comfyui-sserd {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show the full traceback instead of one line (may appear anywhere on the line)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    from .controls import controls_help
    from .emotion import SYNC_MODES
    from .pipeline.options import EditOptions
    from .validate import DTYPES, NOISE_MODES

    d, lim = EditOptions.defaults(), EditOptions.LIMITS  # the flags' defaults and ranges are the core's own
    e = sub.add_parser("edit", help="edit the emotion of the face in a video",
                       description="Edit the emotion of the face in a talking-face video, keeping speech and audio.",
                       epilog=_EDIT_EXAMPLES + ", ".join(EMOTIONS), formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("input", help="the talking-face video (MP4, MOV, MKV, WebM...); never modified")
    e.add_argument("-o", "--output", required=True,
                   help="where to write the edited video (.mp4/.mov/.mkv/.webm); written atomically, must differ from input")
    g = e.add_argument_group("target emotion (give one; or --face-target for each face)")
    g.add_argument("--emotion", metavar="LABEL", help=f"an emotion label: {', '.join(EMOTIONS)}")
    g.add_argument("--intensity", type=float, default=None,
                   help=f"how strongly to show --emotion, {lim['intensity'][0]:g}..{lim['intensity'][1]:g} (default "
                        f"{d['intensity']:g}); e.g. --emotion happy --intensity 0.5")
    g.add_argument("--reference", metavar="IMAGE_OR_CLIP",
                   help="an image of anyone's face: its emotion is measured and shown on the source face; or a "
                        "video (a driving clip): every source frame shows the emotion of the clip's frame at the "
                        "same time (see --sync), looping when the clip is shorter")
    g.add_argument("--curve", metavar="TEXT",
                   help='emotion keyframes over time, TIME:EMOTION[@INTENSITY],...: e.g. "0:neutral,2:happy@0.9" '
                        "(seconds from --start; linear in between, held after the last)")
    c = e.add_argument_group(
        "expression controls (with a target emotion above, or alone: then 0 = the source's own expression)",
        textwrap.fill("named controls over the face's action units, each -1..+1 (0 = the source; +1 a strong, posed "
                      "action, -1 the opposite motion). The jaw and the lip opening are the speech: no control moves "
                      "them. A control pushed past what keeps the face believable saturates, and the edit says so "
                      "(the landmark backend).", 78, initial_indent="  ", subsequent_indent="  ")
        + "\n" + controls_help())
    c.add_argument("--control", metavar="TEXT", default=d["controls"],
                   help='NAME=VALUE,... for the whole clip, e.g. "smile=0.6, brow_inner=0.4"; or keyframes over time '
                        '"TIME: NAME=VALUE ...; TIME: ..." (seconds from --start; a control a keyframe does not name is '
                        '0 there; linear in between, held after the last). Action-unit names (AU12=0.5) work too')
    g.add_argument("--face-target", metavar="N=TARGET", action="append", default=None,
                   help="a different target for face N (0 = largest), tracked and edited on its own; repeat for "
                        "each face: N=LABEL[@INTENSITY], N=reference:PATH or N=curve:TEXT, e.g. --face-target "
                        "1=sad@0.5 --face-target 2=curve:0:neutral,2:happy. With --emotion/--reference/--curve "
                        "as well, those are face --face-index's target")
    g.add_argument("--sync", choices=SYNC_MODES, default=d["sync"],
                   help=f"with a driving clip as --reference: match frames by time, by frame index, or stretch the "
                        f"whole clip over the whole edit (default: {d['sync']})")
    o = e.add_argument_group("options")
    o.add_argument("--face-index", type=int, default=d["face_index"],
                   help="which face to edit when there are several: 0 = largest (default), 1 = next largest, ...")
    o.add_argument("--start", type=float, default=d["start"], help="edit from this time (seconds); default: the beginning")
    o.add_argument("--end", type=float, default=d["end"], help="edit up to this time (seconds); default: the end")
    o.add_argument("--side-by-side", action="store_true",
                   help="also write OUTPUT_side_by_side.mp4: source | edited, with audio, for comparison")
    o.add_argument("--preview", type=int, metavar="N", default=d["preview_n"],
                   help="also save N evenly spaced frames as PNG (edited, and source|edited) in OUTPUT_preview/")
    o.add_argument("--plot", metavar="PNG", default=None,
                   help="also save a plot of the emotion and mouth opening over time, measured on source and output")
    o.add_argument("--model", metavar="PATH_OR_REPO_ID", default=None,
                   help="backend: 'landmark' (default, built in) or a converted neural SSERD checkpoint folder / "
                        "Hugging Face repo id (see docs/NEURAL.md)")
    o.add_argument("--device", default=d["device"], help="torch device for the backend, e.g. cpu, cuda, cuda:1 (default: cpu "
                                                  "for the landmark backend, the best available for neural)")
    o.add_argument("--threads", type=int, default=d["threads"], metavar="N",
                   help=f"frames edited at once, 1..{lim['threads'][1]} (default: one per CPU core, at most 4, fewer for "
                        "a small face: see pipeline.default_threads; the landmark backend)")
    o.add_argument("--strict", action="store_true",
                   help="treat a truncated or damaged input (fewer frames than it declares) as an error, not a warning")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    n = e.add_argument_group("neural backend (with --model; the landmark backend ignores these, with a warning)")
    n.add_argument("--dtype", choices=DTYPES, default=d["dtype"],
                   help="the network's compute precision (default auto: bf16 on a CUDA GPU, fp16 where bf16 is "
                        "unsupported, fp32 on the CPU); fp16/bf16 halve memory and run faster on a GPU")
    n.add_argument("--batch-size", type=int, metavar="N", default=d["batch_size"],
                   help=f"frames per network call, 1..{lim['batch_size'][1]} (default: 8 on CUDA, 2 on the CPU); "
                        "more is faster on a GPU while memory allows")
    n.add_argument("--noise-mode", choices=NOISE_MODES, default=d["noise_mode"],
                   help=f"the decoder's per-pixel noise: zero = none, steady video (default: {d['noise_mode']}); "
                        "random = fresh noise each frame, as the official test scripts; const = the model's stored noise")
    n.add_argument("--max-face-size", type=int, metavar="PX", default=d["max_face_size"],
                   help=f"decode the face only up to this many pixels wide, 1..{lim['max_face_size'][1]} (default: "
                        "the model's full size, 1024 for the official model); 256 is ~10x cheaper on the CPU and "
                        "loses nothing when the face is at most that wide in the frame")
    e.set_defaults(func=cmd_edit)

    i = sub.add_parser("info", help="describe a video or image: size, frames, audio, faces found, emotion shown",
                       description="Probe a video or a still image and report what the editor sees in it: for a "
                                   "video its size, frame rate, frames, audio and the tracked face's emotion and "
                                   "mouth opening; for an image its size, the faces found and the emotion shown.")
    i.add_argument("input", help="a video (MP4, MOV, MKV, WebM ...) or an image (PNG, JPEG, WebP ...)")
    i.add_argument("--face-index", type=int, default=0, help="which face: 0 = largest (default), 1 = next ...")
    i.add_argument("--start", type=float, default=None, help="videos: from this time (seconds)")
    i.add_argument("--end", type=float, default=None, help="videos: up to this time (seconds)")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    i.set_defaults(func=cmd_info)

    for mod in _EXTENSIONS:
        importlib.import_module(mod).register(sub)
    return p


def _one_line(exc: BaseException) -> Optional[str]:
    """The one-line message for an error a user can act on; None for a bug (shown with its traceback)."""
    if isinstance(exc, SSERDError):
        return str(exc)
    from .validate import memory_message, out_of_memory

    if out_of_memory(exc):
        return memory_message(exc=exc)
    if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError) and \
            ("failed to map segment" in str(exc) or "cannot allocate memory" in str(exc).lower()):
        return memory_message("while loading the program's libraries")
    if isinstance(exc, ModuleNotFoundError):
        extra = _EXTRA_FOR.get((exc.name or "").split(".")[0])
        if extra is None:
            return None
        return f"this needs the optional package '{exc.name}', which is not installed: pip install 'comfyui-sserd[{extra}]'."
    if isinstance(exc, OSError):
        from .outputs import describe_os_error

        return describe_os_error(exc)
    return None


def _stopped(signum: int, published: bool) -> int:
    """The one line for a job stopped by signal ``signum``, after its clean-up; returns 128 + signum."""
    # only modules already loaded: the signal may have cut an import short
    face, outputs = sys.modules.get("sserd_core.face"), sys.modules.get("sserd_core.outputs")
    if face is not None and hasattr(face, "wait_preload"):
        face.wait_preload()  # no thread of ours is left in native code while the interpreter shuts down
    name = signal.Signals(signum).name
    left = outputs.live_staging() if outputs is not None and hasattr(outputs, "live_staging") else []
    done = outputs.published_since_start() if outputs is not None and hasattr(outputs, "published_since_start") else []
    if published or done:
        print(f"error: stopped by {name} just after the outputs were complete; they are written.", file=sys.stderr)
    elif left:
        print(f"error: stopped by {name}; no output was written, but the temporary folder {left[0]} could not be "
              "removed: delete it.", file=sys.stderr)
    else:
        print(f"error: stopped by {name}; no output was written and no temporary file is left.", file=sys.stderr)
    return 128 + signum


def _limit_blas_under_an_address_limit() -> None:
    """Under an address-space limit (``ulimit -v``), one OpenBLAS thread (before NumPy and OpenCV load theirs).

    OpenBLAS maps a buffer per thread when it loads; where the limit leaves no room for them it crashes in its
    initialisation (a segfault while ``import cv2``, measured at 700 MiB on 2 cores) instead of failing. The
    pipeline runs BLAS on one thread while rendering anyway (``pipeline._one_blas_thread``)."""
    import os

    try:
        import resource

        if resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    except (ImportError, OSError, ValueError):
        pass


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one ``error:`` line like every other refusal (exit code 2, argparse's
    own for a command line it cannot read), instead of the usage block."""

    def error(self, message):
        print(f"error: {self.prog}: {message} (see '{self.prog} --help').", file=sys.stderr)
        raise SystemExit(2)


def _values_that_look_like_options(parser: argparse.ArgumentParser, argv: list) -> list:
    """``--curve -1:happy`` → ``--curve=-1:happy``: a value of an option that takes one, starting with ``-`` but
    not an option itself (argparse reads it as an unknown option and stops)."""
    known, takes_value = set(), set()
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        for a in p._actions:
            known.update(a.option_strings)
            if a.option_strings and a.nargs is None and not isinstance(a, (argparse._StoreTrueAction,
                                                                           argparse._StoreFalseAction,
                                                                           argparse._HelpAction,
                                                                           argparse._VersionAction)):
                takes_value.update(a.option_strings)
            if isinstance(a, argparse._SubParsersAction):
                parsers.extend(a.choices.values())
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in takes_value and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] not in known \
                and argv[i + 1] != "--" and argv[i + 1].split("=")[0] not in known:
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: Optional[list] = None) -> int:
    """Run the ``sserd`` command line; returns the exit code (0 ok, 1 error, 2 a command line it cannot read,
    128+N stopped by signal N)."""
    saved = stop.install()  # first: a signal from here on stops the command cleanly
    _limit_blas_under_an_address_limit()
    old_show = warnings.showwarning
    debug = False

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    try:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = "--debug" in argv
        if debug:
            argv.remove("--debug")
        args = parser.parse_args(_values_that_look_like_options(parser, argv))
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        warnings.showwarning = show_warning
        code = int(args.func(args) or 0)
        stop.check()  # a signal swallowed where it could not be raised still stops the job (and says so)
        return code
    except KeyboardInterrupt as exc:
        return _stopped(getattr(exc, "signum", stop.requested() or int(signal.SIGINT)), getattr(exc, "published", False))
    except SystemExit:  # --help, --version, a usage error: said already
        if stop.requested() is not None:
            return _stopped(stop.requested(), False)
        raise
    except Exception as exc:
        if stop.requested() is not None:  # e.g. an open() of a FIFO cut short by the signal: "Interrupted system call"
            return _stopped(stop.requested(), False)
        message = None if debug else _one_line(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        # no thread of ours may still be inside dlib when the interpreter shuts down (it aborts the process):
        # an error found a moment after face.preload started its threads waits for them here
        face = sys.modules.get("sserd_core.face")
        if face is not None and hasattr(face, "wait_preload"):
            face.wait_preload()
        stop.uninstall(saved)
        warnings.showwarning = old_show


if __name__ == "__main__":
    sys.exit(main())
