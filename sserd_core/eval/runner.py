"""``sserd eval``: make (or collect) every method's output for every item, measure, tabulate.

For each :class:`~sserd_core.eval.protocols.EvalItem` and each method the runner

1. gets the method's clip: renders it (``landmark``, ``naive``, a neural checkpoint),
   takes the source itself (``source``), or looks it up in another tool's output folder
   (``--outputs NAME=DIR``: ``DIR/<item id>.mp4`` or ``DIR/<protocol>/<item id>.mp4``);
2. measures it (:func:`~sserd_core.eval.measure.measure_clip`) and computes the per-clip
   metrics against the source, the reference and the real clip;
3. writes ``clips/<protocol>/<method>/<item id>.json`` (every per-clip number) and
   ``.npz`` (the embeddings that set-level Fréchet distances pool).

Items are split across processes with ``accelerate`` (``accelerate launch -m
sserd_core.eval ...``: each process takes its share; the main process waits for all and
writes the tables). A run is resumable: finished clips are skipped unless ``overwrite``.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .. import media, pipeline
from ..emotion import EmotionSpec, emotion_vector
from ..errors import SSERDError
from ..metrics import (EMO_ACC, EMO_COS, ID_DIST, ID_FD, M_LMD, M_OPEN, emotion_cosine, id_distance, id_fd,
                       mouth_landmark_distance, opening_correlation, target_accuracy)
from ..metrics.emotion import cosine_similarity
from .datasets import VIDEO_EXTS, Clip
from .measure import ClipMeasure, Networks, measure_clip
from .protocols import EvalItem

log = logging.getLogger("sserd.eval")

BUILTIN_METHODS = ("landmark", "naive", "source")


@dataclass
class Method:
    """One row group of the table: how its clips are obtained."""

    name: str
    kind: str  # "editor" | "source" | "folder"
    make_editor: Optional[Callable] = None
    folder: Optional[Path] = None


def resolve_methods(names: Sequence[str], outputs: Sequence[str] = (), checkpoints: Sequence[str] = (),
                    neural_options: Optional[dict] = None) -> list[Method]:
    """Methods from ``--methods`` names, ``--outputs NAME=DIR`` folders and ``--checkpoint [NAME=]PATH`` neural models
    (``neural_options`` go to :func:`sserd_core.neural.load_editor`: dtype, batch_size, noise_mode, max_face_size)."""
    methods = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name == "landmark":
            methods.append(Method("landmark", "editor", lambda device=None: pipeline.make_editor("landmark", device)))
        elif name == "naive":
            from .baselines import NaiveMouthEditor

            methods.append(Method("naive", "editor", lambda device=None: NaiveMouthEditor(device=device)))
        elif name == "source":
            methods.append(Method("source", "source"))
        else:
            raise SSERDError(f"Unknown method '{name}'. Built in: {', '.join(BUILTIN_METHODS)}; "
                             "add other tools' outputs with --outputs NAME=DIR and neural models with --checkpoint.")
    for spec in outputs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise SSERDError(f"--outputs '{spec}' must look like NAME=FOLDER.")
        if not Path(folder).is_dir():
            raise SSERDError(f"--outputs {name}: folder {folder} does not exist.")
        methods.append(Method(name.strip(), "folder", folder=Path(folder)))
    for spec in checkpoints:
        name, sep, path = spec.partition("=")
        name, path = (name, path) if sep else ("neural", spec)
        methods.append(Method(name.strip(), "editor", _neural_factory(path.strip(), neural_options or {})))
    names_seen = [m.name for m in methods]
    if len(set(names_seen)) != len(names_seen):
        raise SSERDError(f"Two methods share a name: {names_seen}.")
    return methods


def _neural_factory(path: str, options: dict) -> Callable:
    def make(device=None):
        return pipeline.make_editor(path, device, **options)

    return make


# --------------------------------------------------------------------------- one run

class _Cache:
    """Per-process caches: content tracks, clip measurements, reference emotions."""

    def __init__(self):
        self.tracks, self.measures, self.refs = {}, {}, {}


def _audio_of(clip: Clip) -> Optional[str]:
    if clip.audio:
        return clip.audio
    return clip.path if media.probe_video(clip.path).has_audio else None


def _track(cache: _Cache, clip: Clip):
    if clip.path not in cache.tracks:
        cache.tracks[clip.path] = pipeline.disentangle_content(pipeline.load_video(clip.path))
    return cache.tracks[clip.path]


def _measure(cache: _Cache, path: str, neutral_features, networks: Networks, embed_every: int,
             audio_path: Optional[str] = None, crops: str = "aligned") -> ClipMeasure:
    key = (str(path), None if neutral_features is None else neutral_features.tobytes(), crops)
    if key not in cache.measures:
        cache.measures[key] = measure_clip(str(path), neutral_features, embed_every, networks, audio_path,
                                           crops=crops)
    return cache.measures[key]


def _reference(cache: _Cache, clip: Clip, networks: Networks) -> tuple[EmotionSpec, Optional[np.ndarray]]:
    """The target emotion of the reference clip, and its emotion-net feature (if any).

    A video reference is a driving clip: its emotion is measured on every frame and followed by time
    (the paper's cross-ID protocol); its middle frame is what the spec shows as the reference picture."""
    if clip.path not in cache.refs:
        spec = pipeline.extract_emotion(reference=clip.path)  # a video → a driving clip
        feat = None
        if networks.emotion_net is not None:
            from ..face import detect_landmarks

            rgb = media.picture_of(clip.path)  # a clip: its middle frame
            lms = detect_landmarks(rgb)
            feat = networks.emotion_net([rgb], [lms[0]])[0] if lms else None
        cache.refs[clip.path] = (spec, feat)
    return cache.refs[clip.path]


def find_output(folder: Path, item: EvalItem) -> Optional[Path]:
    for base in (folder / item.protocol, folder):
        for ext in VIDEO_EXTS:
            p = base / f"{item.id}{ext}"
            if p.is_file():
                return p
    return None


def clip_paths(out_dir: Path, item: EvalItem, method: str) -> tuple[Path, Path, Path]:
    """(video, json, npz) paths of one method's clip for one item."""
    d = Path(out_dir)
    video = d / "videos" / item.protocol / method / f"{item.id}.mp4"
    base = d / "clips" / item.protocol / method / item.id
    return video, base.with_suffix(".json"), base.with_suffix(".npz")


def evaluate_item(item: EvalItem, method: Method, out_dir: Path, cache: _Cache, networks: Networks,
                  drive: str = "reference", embed_every: int = 1, overwrite: bool = False,
                  editor_cache: Optional[dict] = None, device=None, process_index: int = 0,
                  crops: str = "aligned") -> dict:
    """Produce (or find) one method's clip for ``item``, measure it, write its JSON/NPZ; returns the JSON record."""
    video_path, json_path, npz_path = clip_paths(out_dir, item, method.name)
    if json_path.is_file() and npz_path.is_file() and not overwrite:
        done = json.loads(json_path.read_text())
        if done.get("crops", "frame") == crops:  # measured on other crops: measure again
            return done
    t0 = time.perf_counter()
    track = _track(cache, item.source)
    ref_spec, ref_feat = _reference(cache, item.reference, networks)
    target_spec = ref_spec if drive == "reference" else EmotionSpec.from_label(item.emotion)
    src_audio = _audio_of(item.source)
    status = "ok"
    if method.kind == "source":
        output = Path(item.source.path)
    elif method.kind == "folder":
        output = find_output(method.folder, item)
        if output is None:
            status = "missing"
    else:
        output = video_path
        if overwrite or not output.is_file():
            editor_cache = editor_cache if editor_cache is not None else {}
            if method.name not in editor_cache:
                editor_cache[method.name] = method.make_editor(device)
            pipeline.edit_video(track, output, target_spec, editor=editor_cache[method.name], audio=src_audio)
    render_s = time.perf_counter() - t0
    record = {"item": item.to_dict(), "method": method.name, "status": status, "crops": crops,
              "output": str(output) if status == "ok" else None,
              "target": item.emotion, "drive": drive,
              "reference_emotion": [float(x) for x in ref_spec.keyframes[0][1]], "metrics": {}}
    arrays = {}
    if status == "ok":
        src = _measure(cache, item.source.path, track.neutral_features, networks, embed_every, src_audio, crops)
        gen_audio = str(output) if media.probe_video(output).has_audio else src_audio
        gen = _measure(cache, str(output), track.neutral_features, networks, embed_every, gen_audio, crops)
        real_clip = item.real or item.source
        real = _measure(cache, real_clip.path, None, networks, embed_every, _audio_of(real_clip), crops)
        ref_vec = ref_spec.keyframes[0][1]
        m = record["metrics"]
        m[ID_FD] = _safe(lambda: id_fd(real.embedding, gen.embedding))
        m[ID_DIST] = id_distance(gen.embedding, src.embedding)
        m[M_LMD] = mouth_landmark_distance(gen.landmarks, src.landmarks)
        m[M_OPEN] = opening_correlation(gen.opening, src.opening)
        m[EMO_COS] = emotion_cosine(gen.emotion, ref_vec)
        m[EMO_ACC] = target_accuracy(gen.emotion, item.emotion)
        if "arcface" in gen.exact and "arcface" in real.exact:
            from ..metrics import frechet_distance_features

            m["FAD"] = _safe(lambda: frechet_distance_features(real.exact["arcface"], gen.exact["arcface"]))
            arrays["gen_arcface"], arrays["real_arcface"] = gen.exact["arcface"], real.exact["arcface"]
        if gen.exact.get("sync"):
            m["LSE-D"] = gen.exact["sync"]["LSE-D"]
            record["sync"] = gen.exact["sync"]
        if "emotion_net" in gen.exact and ref_feat is not None:
            c = cosine_similarity(gen.exact["emotion_net"], ref_feat)
            m["CSIM"] = float(np.nanmean(c)) if np.isfinite(c).any() else float("nan")
        record["n_frames"] = int(len(gen.landmarks))
        record["n_faces"] = gen.n_faces
        record["mean_emotion"] = [float(x) for x in np.nanmean(gen.emotion, 0)] if gen.n_faces else None
        record["target_vector"] = [float(x) for x in emotion_vector(item.emotion)]
        arrays["gen_dlib"], arrays["real_dlib"] = gen.embedding, real.embedding
        record["metrics"] = {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in m.items()}
    record["seconds"] = {"render": round(render_s, 3), "total": round(time.perf_counter() - t0, 3)}
    record["process"] = process_index
    json_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz_path, real_path=np.array(str((item.real or item.source).path)), **arrays)
    json_path.write_text(json.dumps(record, indent=1))
    return record


def _safe(fn):
    try:
        return fn()
    except SSERDError:
        return float("nan")


def run_items(items: Sequence[EvalItem], methods: Sequence[Method], out_dir: Path, networks: Optional[Networks] = None,
              drive: str = "reference", embed_every: int = 1, overwrite: bool = False, progress: bool = True,
              crops: str = "aligned") -> bool:
    """Evaluate this process's share of ``items`` × ``methods``; returns True on the main process (which aggregates)."""
    networks = networks or Networks()
    state = _process_state()
    jobs = [(it, m) for it in items for m in methods]
    cache, editors = _Cache(), {}
    index = state.process_index if state is not None else 0
    device = str(state.device) if state is not None else None
    if state is not None and state.num_processes > 1:
        log.info("process %d of %d", index, state.num_processes)
    with state.split_between_processes(jobs) if state is not None else nullcontext(jobs) as mine:
        bar = _bar(len(mine), progress, state)
        for it, m in mine:
            bar.set_postfix_str(f"{m.name} {it.id}"[:60])
            evaluate_item(it, m, Path(out_dir), cache, networks, drive, embed_every, overwrite, editors,
                          device=device, process_index=index, crops=crops)
            bar.update(1)
        bar.close()
    if state is not None:
        state.wait_for_everyone()
        return state.is_main_process
    return True


def _process_state():
    try:
        from accelerate import PartialState
    except ImportError:
        return None
    import torch

    # without cpu=True accelerate does not form a multi-process group on CPU-only machines (torchrun)
    return PartialState(cpu=_force_cpu() or not torch.cuda.is_available())


def _force_cpu() -> bool:
    import os

    return os.environ.get("SSERD_EVAL_CPU", "") == "1"


def _bar(total: int, enabled: bool, state):
    from tqdm.auto import tqdm

    idx = state.process_index if state is not None else 0
    return tqdm(total=total, desc=f"sserd eval [{idx}]" if idx else "sserd eval", unit="clip",
                disable=not enabled, position=idx, dynamic_ncols=True)
