"""Pseudo-paired data: per-actor linear emotion directions in W+ and edits of neutral codes along them.

For each actor and each emotion *e* ≠ neutral, a linear SVM (scikit-learn ``LinearSVC``)
separates that actor's neutral codes from its *e* codes (flattened ``[L·d]``); its weight
vector, reshaped to ``[L, d]`` and normalised per style layer (as the official
``get_emotion_direction.py``), is the direction. A neutral code ``w`` moved to
``w + α·direction`` (α = 15 by default) shows emotion *e*; the decoder renders it with the
same encoder features, so the mouth (speech content) is the neutral frame's → a pseudo-pair
(neutral frame, edited frame) that differs only in emotion.

An SVM fitted on finitely many frames also picks up some of the per-frame variation that has nothing
to do with emotion, mostly speech. To keep edits off the mouth, the directions have the actor's
*content subspace* excluded (the SVM is fitted in its orthogonal complement): the principal components of how codes vary *within* a neutral clip
(same actor, same emotion: what changes is what is being said). ``remove_content_dims=False`` gives
the plain official directions.
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


def fit_direction(neutral_codes: np.ndarray, emotion_codes: np.ndarray, C: float = 0.01, seed: int = 0,
                  per_layer_norm: bool = True, exclude: Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """Direction ``[L, d]`` (or ``[d]`` for 2-D inputs) from neutral → emotion, and the SVM's training accuracy.

    ``*_codes``: ``[N, L, d]`` or ``[N, d]``. ``C``: the SVM's inverse regularisation; a strong one (0.01)
    keeps the direction from fitting per-frame noise in the many dimensions that do not carry emotion. ``per_layer_norm``: unit norm per layer (official); else unit overall.
    """
    try:
        from sklearn.svm import LinearSVC
    except ImportError as exc:
        raise SSERDError("Building pseudo-pairs needs scikit-learn: pip install 'comfyui-sserd[train]' "
                         "(or pip install scikit-learn).") from exc
    a, b = np.asarray(neutral_codes, np.float64), np.asarray(emotion_codes, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise SSERDError("Each emotion direction needs at least 2 neutral and 2 emotional frames of the actor.")
    shape = a.shape[1:]
    x = np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    x = x - x.mean(0)
    x = x / max(float(x.std()), 1e-12)  # one global scale (not per feature: the direction keeps its geometry),
    # so C means the same for codes of any magnitude
    if exclude is not None and len(exclude):
        # fit in the orthogonal complement of the excluded (content) subspace: the direction then has no
        # component there, and the SVM is not distracted by content variance
        x = x - (x @ exclude.T) @ exclude
    svm = LinearSVC(C=C, random_state=seed, max_iter=20000, dual="auto")
    svm.fit(x, y)
    acc = float(svm.score(x, y))
    coef = svm.coef_[0].reshape(shape)

    def normalise(c):
        if per_layer_norm and c.ndim == 2:
            return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        return c / max(np.linalg.norm(c), 1e-12)

    coef = normalise(coef)
    if exclude is not None and len(exclude):
        # per-layer rescaling tilts the direction back into the excluded subspace a little: alternate
        # projection and normalisation until it is orthogonal again
        for _ in range(20):
            flat = coef.reshape(-1)
            coef = normalise((flat - exclude.T @ (exclude @ flat)).reshape(shape))
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
                                 clips: Optional[Sequence] = None, content_rank: int = 8, **kw):
    """``(directions, accuracies)``: ``{actor: {e: [L, d]}}`` and ``{actor: {e: training accuracy}}``.

    With ``clips`` (a clip id per code), each direction is fitted orthogonally to the actor's *content
    subspace* (:func:`content_basis` of its neutral frames, grouped by clip), so an edit does not move the mouth.
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
        if clips is not None and content_rank > 0:
            sel = (actors == a) & (emotions == NEUTRAL)
            basis = content_basis(neutral, np.asarray(clips)[sel], content_rank)
        for e in sorted(set(emotions[actors == a].tolist()) - {NEUTRAL}):
            emo = codes[(actors == a) & (emotions == e)]
            if len(emo) < 2:
                continue
            d, acc = fit_direction(neutral, emo, exclude=basis, **kw)
            directions.setdefault(a, {})[int(e)] = d
            accuracies.setdefault(a, {})[int(e)] = acc
    return directions, accuracies


def edit_codes(neutral_codes: torch.Tensor, direction, alpha: float = ALPHA) -> torch.Tensor:
    """``neutral_codes + alpha · direction`` (broadcast over the batch)."""
    d = torch.as_tensor(np.asarray(direction), dtype=neutral_codes.dtype, device=neutral_codes.device)
    return neutral_codes + alpha * d


@torch.no_grad()
def build_pairs(net, cache, out_dir, alpha: float = ALPHA, batch_size: int = 8, max_neutral_per_actor: int = 64,
                device=None, seed: int = 0, remove_content_dims: bool = True, log=print) -> Path:
    """Encode ``cache`` (a :class:`~sserd_core.train.data.FrameCache`) with ``net``, fit per-actor directions,
    render pseudo-pairs and save them to ``out_dir/pairs.npz``:

    - ``images`` ``uint8 [P, 7, S, S, 3]``: for each neutral source frame, its rendering under every emotion
      (index = EMOTIONS; neutral = the unedited reconstruction; an emotion the actor lacks repeats neutral),
    - ``has`` ``bool [P, 7]``: which emotions are real edits, ``actor`` ``[P]``, ``frame`` ``[P]`` (cache index).
    """
    device = device or next(net.parameters()).device
    net.eval()
    idx_all = np.arange(len(cache))
    codes = []
    for i in range(0, len(idx_all), batch_size):
        x = cache.tensor(idx_all[i:i + batch_size]).to(device)
        codes.append(net.encode(x)[1].float().cpu())
    codes = torch.cat(codes).numpy()
    directions, acc = fit_directions_with_accuracy(codes, cache.actor_of, cache.emotion_of,
                                                   clips=cache.clip_of if remove_content_dims else None)
    if not directions:
        raise SSERDError("No actor has both neutral and emotional frames (at least 2 each); cannot build pairs.")
    for a, accs in acc.items():
        log(f"pairs: {a}: SVM accuracy " + ", ".join(f"{EMOTIONS[e]} {v:.2f}" for e, v in accs.items()))
    rng = np.random.default_rng(seed)
    size = cache.size
    images, has, actor_out, frame_out = [], [], [], []
    for a in sorted(directions):
        neutral = cache.by[a].get(NEUTRAL, np.zeros(0, int))
        if len(neutral) > max_neutral_per_actor:
            neutral = np.sort(rng.choice(neutral, max_neutral_per_actor, replace=False))
        for i in range(0, len(neutral), batch_size):
            sel = neutral[i:i + batch_size]
            x = cache.tensor(sel).to(device)
            _, w, first, skips = net.encode(x)
            out = np.zeros((len(sel), len(EMOTIONS), size, size, 3), np.uint8)
            h = np.zeros((len(sel), len(EMOTIONS)), bool)
            for e in range(len(EMOTIONS)):
                edit = None
                if e in directions[a]:
                    edit = torch.as_tensor(alpha * directions[a][e], device=device, dtype=w.dtype).expand_as(w)
                    h[:, e] = True
                img = net.decode(w, first, skips, editing_w=edit)
                img = torch.nn.functional.interpolate(img.float(), size=(size, size), mode="bilinear",
                                                      align_corners=False, antialias=True)
                out[:, e] = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            h[:, NEUTRAL] = True
            images.append(out)
            has.append(h)
            actor_out += [a] * len(sel)
            frame_out += sel.tolist()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PAIRS_FILE
    tmp = out_dir / "pairs.partial.npz"
    np.savez(tmp, images=np.concatenate(images), has=np.concatenate(has), actor=np.asarray(actor_out),
             frame=np.asarray(frame_out, np.int64), alpha=np.float32(alpha))
    tmp.replace(path)
    torch.save({a: {EMOTIONS[e]: torch.from_numpy(d) for e, d in ds.items()} for a, ds in directions.items()},
               out_dir / "emotion_directions.pt")
    return path


class PairSet:
    """Pseudo-pairs loaded from ``pairs.npz`` (see :func:`build_pairs`), grouped by actor."""

    def __init__(self, path):
        path = Path(path)
        if path.is_dir():
            path = path / PAIRS_FILE
        if not path.is_file():
            raise SSERDError(f"No pseudo-pairs at {path}; run stage 2 with a stage-1 model, or `sserd pairs`.")
        with np.load(path) as z:
            self.images = z["images"]
            self.has = z["has"]
            self.actor = z["actor"].astype(str)
            self.frame = z["frame"]
        self.by_actor = {a: np.flatnonzero(self.actor == a) for a in sorted(set(self.actor.tolist()))}

    def __len__(self):
        return len(self.images)

    def emotions(self, i: int) -> list[int]:
        return np.flatnonzero(self.has[i]).tolist()

    def tensor(self, idx, emotions) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.images[np.asarray(idx), np.asarray(emotions)]))
        return x.permute(0, 3, 1, 2).float().contiguous() / 127.5 - 1.0
