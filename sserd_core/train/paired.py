"""Pseudo-paired data: per-actor linear emotion directions in W+ and edits of neutral codes along them.

**Official recipe** (``directions = "official"``, the default; ``scripts/get_emotion_direction.py`` and
``scripts/gen_edit_images.py`` of ZH-Xu410/SSERD): for each actor and each emotion *e* ≠ neutral, a
scikit-learn ``SVC(kernel="linear", C=1)`` separates *all* of that actor's neutral codes from its *e* codes
— the raw W+ codes (encoder output + ``latent_avg``), flattened ``[L·d]``, fitted on a random 80 %
(``train_test_split(test_size=0.2, random_state=42)``; the accuracy reported is on the other 20 %). Its
weight vector, reshaped to ``[L, d]`` and normalised per style layer, is the direction. Every neutral frame's
code ``w`` moved to ``w + α·direction`` (α = 15) and decoded with the frame's own encoder features (zero
noise, bilinear resize to the crop) shows emotion *e* with the neutral frame's mouth → a pseudo-pair whose
neutral side is the real frame.

**Variant** ``directions = "content-orthogonal"`` (this project's): a strongly regularised ``LinearSVC``
(C = 0.01) on centred codes under one global scale, fitted in the orthogonal complement of the actor's
*content subspace* — the principal components of how codes vary *within* a neutral clip (same actor, same
emotion: what changes is what is being said) — so an edit cannot move the mouth even where the SVM would
otherwise pick up speech variation from finitely many frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..emotion import EMOTIONS
from ..errors import SSERDError

NEUTRAL = EMOTIONS.index("neutral")
ALPHA = 15.0
PAIRS_FILE = "pairs.npz"
IMAGES_FILE = "pair_images.npy"
DIRECTIONS = ("official", "content-orthogonal")


def _sklearn():
    try:
        import sklearn.model_selection
        import sklearn.svm
    except ImportError as exc:
        raise SSERDError("Building pseudo-pairs needs scikit-learn: pip install 'comfyui-sserd[train]' "
                         "(or pip install scikit-learn).") from exc
    return sklearn


def fit_direction(neutral_codes: np.ndarray, emotion_codes: np.ndarray, method: str = "official", C: Optional[float] = None,
                  seed: int = 0, exclude: Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """Direction ``[L, d]`` (or ``[d]`` for 2-D inputs) from neutral → emotion, unit norm per layer, and the SVM's
    accuracy (official: on the held-out 20 %; variant: on the training codes).

    ``*_codes``: ``[N, L, d]`` or ``[N, d]``. ``method``: ``"official"`` (``SVC(kernel="linear", C=1)`` on the raw
    codes) or ``"content-orthogonal"`` (``LinearSVC``, ``C`` = 0.01 by default, centred and scaled codes, fitted
    orthogonally to ``exclude`` ``[K, L·d]``, an orthonormal basis).
    """
    if method not in DIRECTIONS:
        raise SSERDError(f"pairs.directions must be one of {', '.join(DIRECTIONS)}; got {method!r}.")
    sk = _sklearn()
    a, b = np.asarray(neutral_codes, np.float64), np.asarray(emotion_codes, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise SSERDError("Each emotion direction needs at least 2 neutral and 2 emotional frames of the actor.")
    shape = a.shape[1:]
    x = np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]

    def per_layer_unit(c):
        c = c.reshape(shape)
        if c.ndim == 2:
            return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        return c / max(np.linalg.norm(c), 1e-12)

    if method == "official":
        x_fit, x_test, y_fit, y_test = sk.model_selection.train_test_split(x, y, test_size=0.2, random_state=42)
        if len(set(y_fit.tolist())) < 2:
            raise SSERDError("The SVM's 80 % training split holds only one class; the actor needs more frames.")
        svm = sk.svm.SVC(kernel="linear", C=1.0 if C is None else C).fit(x_fit, y_fit)
        return per_layer_unit(svm.coef_[0]).astype(np.float32), float(svm.score(x_test, y_test))

    x = x - x.mean(0)
    x = x / max(float(x.std()), 1e-12)  # one global scale (not per feature: the direction keeps its geometry),
    # so C means the same for codes of any magnitude
    if exclude is not None and len(exclude):
        # fit in the orthogonal complement of the excluded (content) subspace: the direction then has no
        # component there, and the SVM is not distracted by content variance
        x = x - (x @ exclude.T) @ exclude
    svm = sk.svm.LinearSVC(C=0.01 if C is None else C, random_state=seed, max_iter=20000, dual="auto")
    svm.fit(x, y)
    acc = float(svm.score(x, y))
    coef = per_layer_unit(svm.coef_[0])
    if exclude is not None and len(exclude):
        # per-layer rescaling tilts the direction back into the excluded subspace a little: alternate
        # projection and normalisation until it is orthogonal again
        for _ in range(20):
            flat = coef.reshape(-1)
            coef = per_layer_unit(flat - exclude.T @ (exclude @ flat))
    return coef.astype(np.float32), acc


def content_basis(codes: np.ndarray, groups: Sequence, max_rank: int = 8) -> np.ndarray:
    """Orthonormal basis ``[K, L·d]`` of the dominant code variation *within* groups (clips): frames of one clip
    share actor and emotion, so what varies most between them is speech content (mouth) — a few factors.
    ``K`` ≤ ``max_rank`` sits at the largest gap in the within-clip variance spectrum (the few content factors
    stand out above per-frame noise)."""
    x = np.asarray(codes, np.float64).reshape(len(codes), -1)
    groups = np.asarray(groups)
    dev = np.concatenate([x[groups == g] - x[groups == g].mean(0) for g in np.unique(groups)])
    if not len(dev) or not np.any(dev):
        return np.zeros((0, x.shape[1]))
    _, sv, vt = np.linalg.svd(dev, full_matrices=False)
    var = sv[: max_rank + 1] ** 2 + 1e-12
    if len(var) < 2:
        return vt[:len(var)]
    k = int(np.argmax(var[:-1] / var[1:])) + 1
    return vt[:k]


def fit_directions(codes: np.ndarray, actors: Sequence[str], emotions: Sequence[int], **kw) -> dict:
    """``{actor: {emotion_index: direction [L, d]}}`` for every actor with ≥ 2 neutral and ≥ 2 frames of that
    emotion (the SVM accuracies come from :func:`fit_directions_with_accuracy`)."""
    return fit_directions_with_accuracy(codes, actors, emotions, **kw)[0]


def fit_directions_with_accuracy(codes: np.ndarray, actors: Sequence[str], emotions: Sequence[int],
                                 method: str = "official", clips: Optional[Sequence] = None, content_rank: int = 8,
                                 **kw):
    """``(directions, accuracies)``: ``{actor: {e: [L, d]}}`` and ``{actor: {e: SVM accuracy}}``.

    ``method``: see :func:`fit_direction`. For ``"content-orthogonal"``, ``clips`` (a clip id per code) defines
    the actor's *content subspace* (:func:`content_basis` of its neutral frames, grouped by clip).
    """
    codes = np.asarray(codes)
    actors = np.asarray(actors)
    emotions = np.asarray(emotions)
    directions, accuracies = {}, {}
    for a in sorted(set(actors.tolist())):
        neutral = codes[(actors == a) & (emotions == NEUTRAL)]
        if len(neutral) < 2:
            continue
        basis = None
        if method == "content-orthogonal" and clips is not None and content_rank > 0:
            sel = (actors == a) & (emotions == NEUTRAL)
            basis = content_basis(neutral, np.asarray(clips)[sel], content_rank)
        for e in sorted(set(emotions[actors == a].tolist()) - {NEUTRAL}):
            emo = codes[(actors == a) & (emotions == e)]
            if len(emo) < 2:
                continue
            d, acc = fit_direction(neutral, emo, method=method, exclude=basis, **kw)
            directions.setdefault(a, {})[int(e)] = d
            accuracies.setdefault(a, {})[int(e)] = acc
    return directions, accuracies


def edit_codes(neutral_codes: torch.Tensor, direction, alpha: float = ALPHA) -> torch.Tensor:
    """``neutral_codes + alpha · direction`` (broadcast over the batch)."""
    d = torch.as_tensor(np.asarray(direction), dtype=neutral_codes.dtype, device=neutral_codes.device)
    return neutral_codes + alpha * d


@torch.no_grad()
def build_pairs(net, cache, out_dir, alpha: float = ALPHA, batch_size: int = 8, max_neutral_per_actor: int = 0,
                device=None, seed: int = 0, directions: str = "official", antialias: bool = False, log=print) -> Path:
    """Encode ``cache`` (a :class:`~sserd_core.train.data.FrameCache`) with ``net``, fit per-actor directions,
    render pseudo-pairs and save them to ``out_dir``:

    - ``pair_images.npy`` ``uint8 [P, 7, S, S, 3]`` (read memory-mapped): for each neutral source frame, the
      frame under every emotion (index = EMOTIONS; neutral = the real frame, as the official pairs; an emotion
      the actor lacks repeats it);
    - ``pairs.npz`` (written last: its presence marks a complete set): ``has`` ``bool [P, 7]`` (which emotions
      are real edits), ``actor`` ``[P]``, ``frame`` ``[P]`` (cache index), ``alpha``, ``directions``;
    - ``emotion_directions.pt`` ``{actor: {emotion: [L, d]}}``.

    ``max_neutral_per_actor``: 0 = every neutral frame (official), else a seeded sample of that many.
    ``antialias``: resize the decoded faces with an anti-aliasing filter (official: plain bilinear).
    """
    device = device or next(net.parameters()).device
    net.eval()
    idx_all = np.arange(len(cache))
    codes = []
    for i in range(0, len(idx_all), batch_size):
        x = cache.tensor(idx_all[i:i + batch_size]).to(device)
        codes.append(net.encode(x)[1].float().cpu())
    codes = torch.cat(codes).numpy()
    dirs, acc = fit_directions_with_accuracy(codes, cache.actor_of, cache.emotion_of, method=directions,
                                             clips=cache.clip_of)
    if not dirs:
        raise SSERDError("No actor has both neutral and emotional frames (at least 2 each); cannot build pairs.")
    for a, accs in acc.items():
        log(f"pairs: {a}: SVM accuracy " + ", ".join(f"{EMOTIONS[e]} {v:.2f}" for e, v in accs.items()))
    rng = np.random.default_rng(seed)
    size = cache.size
    sources = []
    for a in sorted(dirs):
        neutral = cache.by[a].get(NEUTRAL, np.zeros(0, int))
        if max_neutral_per_actor and len(neutral) > max_neutral_per_actor:
            neutral = np.sort(rng.choice(neutral, max_neutral_per_actor, replace=False))
        sources += [(a, int(i)) for i in neutral]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PAIRS_FILE).unlink(missing_ok=True)
    images = np.lib.format.open_memmap(out_dir / IMAGES_FILE, mode="w+", dtype=np.uint8,
                                       shape=(len(sources), len(EMOTIONS), size, size, 3))
    has = np.zeros((len(sources), len(EMOTIONS)), bool)
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        sel = np.asarray([i for _, i in chunk])
        _, w, first, skips = net.encode(cache.tensor(sel).to(device))
        for k, (a, i) in enumerate(chunk):
            images[start + k, :] = cache.images[i]  # the real frame: the neutral side, and any emotion not edited
        for e in range(len(EMOTIONS)):
            actor_has = [e in dirs[a] for a, _ in chunk]
            has[start:start + len(chunk), e] = actor_has if e != NEUTRAL else True
            if e == NEUTRAL or not any(actor_has):
                continue
            edit = torch.stack([torch.as_tensor(alpha * dirs[a][e]) if e in dirs[a] else torch.zeros(w.shape[1:])
                                for a, _ in chunk]).to(device, w.dtype)
            img = net.decode(w, first, skips, editing_w=edit, noise_mode="zero")
            img = torch.nn.functional.interpolate(img.float(), size=(size, size), mode="bilinear",
                                                  align_corners=False, antialias=antialias)
            img = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            for k, ok in enumerate(actor_has):
                if ok:
                    images[start + k, e] = img[k]
    images.flush()
    del images
    tmp = out_dir / "pairs.partial.npz"
    np.savez(tmp, has=has, actor=np.asarray([a for a, _ in sources]), frame=np.asarray([i for _, i in sources], np.int64),
             alpha=np.float32(alpha), directions=np.asarray(directions))
    torch.save({a: {EMOTIONS[e]: torch.from_numpy(d) for e, d in ds.items()} for a, ds in dirs.items()},
               out_dir / "emotion_directions.pt")
    tmp.replace(out_dir / PAIRS_FILE)
    return out_dir / PAIRS_FILE


class PairSet:
    """Pseudo-pairs written by :func:`build_pairs` (images memory-mapped), grouped by actor."""

    def __init__(self, path):
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        if not (folder / PAIRS_FILE).is_file() or not (folder / IMAGES_FILE).is_file():
            raise SSERDError(f"No pseudo-pairs in {folder}; run stage 2 with a stage-1 model, or `sserd pairs`.")
        with np.load(folder / PAIRS_FILE) as z:
            self.has = z["has"]
            self.actor = z["actor"].astype(str)
            self.frame = z["frame"]
        self.images = np.load(folder / IMAGES_FILE, mmap_mode="r")
        self.by_actor = {a: np.flatnonzero(self.actor == a) for a in sorted(set(self.actor.tolist()))}

    def __len__(self):
        return len(self.has)

    def emotions(self, i: int) -> list[int]:
        return np.flatnonzero(self.has[i]).tolist()

    def tensor(self, idx, emotions) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.images[np.asarray(idx), np.asarray(emotions)]))
        return x.permute(0, 3, 1, 2).float().contiguous() / 127.5 - 1.0
