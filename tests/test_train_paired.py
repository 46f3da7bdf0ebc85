"""Paired data: per-actor SVM emotion directions recover planted ones; edits leave content dimensions alone."""

import numpy as np
import pytest
import torch

from sserd_core.emotion import EMOTIONS
from sserd_core.errors import SSERDError
from sserd_core.train import paired

L_LAYERS, D = 4, 24
EMO_DIMS = slice(0, 8)        # emotion lives here
CONTENT_DIMS = slice(8, 16)   # mouth / speech content lives here; 16: are identity + noise


def planted_latents(seed=0, n_per=150, actors=("A", "B"), frames_per_clip=15):
    """Codes w = identity_actor + content + strength·direction_(actor,emotion) + noise, directions planted
    only in EMO_DIMS (different per actor). Content = two mouth factors (opening, rounding) that vary from frame
    to frame as speech does, each moving the code along a fixed pattern in CONTENT_DIMS; consecutive
    frames_per_clip codes form a clip."""
    rng = np.random.default_rng(seed)
    content_patterns = np.zeros((2, L_LAYERS, D))
    content_patterns[:, :, CONTENT_DIMS] = rng.normal(0, 1, (2, L_LAYERS, 8)) / np.sqrt(8)
    codes, act, emo, clips, planted = [], [], [], [], {}
    for a in actors:
        ident = rng.normal(0, 1, (L_LAYERS, D))
        ident[:, :16] = 0
        for e in range(len(EMOTIONS)):
            if e != paired.NEUTRAL:
                d = np.zeros((L_LAYERS, D))
                d[:, EMO_DIMS] = rng.normal(0, 1, (L_LAYERS, 8))
                planted[(a, e)] = d
            for i in range(n_per):
                clips.append(f"{a}-{e}-{i // frames_per_clip}")
                w = ident.copy()
                opening, rounding = rng.uniform(-3, 3, 2)
                w += opening * content_patterns[0] + rounding * content_patterns[1]
                w[:, CONTENT_DIMS] += rng.normal(0, 0.1, (L_LAYERS, 8))
                if e != paired.NEUTRAL:
                    w += 0.8 * planted[(a, e)]
                w[:, EMO_DIMS] += rng.normal(0, 0.3, (L_LAYERS, 8))
                w[:, 16:] += rng.normal(0, 0.3, (L_LAYERS, D - 16))
                codes.append(w)
                act.append(a)
                emo.append(e)
    planted["content"] = content_patterns
    return np.asarray(codes, np.float32), np.asarray(act), np.asarray(emo), np.asarray(clips), planted


def cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_directions_recover_planted_ones_per_actor():
    codes, act, emo, clips, planted = planted_latents()
    dirs, acc = paired.fit_directions_with_accuracy(codes, act, emo, method="content-orthogonal", clips=clips)
    assert set(dirs) == {"A", "B"} and all(len(dirs[a]) == 6 for a in dirs)
    for (a, e), d in ((k, v) for k, v in planted.items() if k != "content"):
        # the SVM direction points along the planted one (whole code, and each style layer)
        d_unit = d / np.linalg.norm(d, axis=1, keepdims=True)    # directions are unit per layer, as the official
        assert cos(dirs[a][e], d_unit) >= 0.9, (a, EMOTIONS[e], cos(dirs[a][e], d_unit))
        per_layer = [cos(dirs[a][e][k], d[k]) for k in range(L_LAYERS)]
        assert min(per_layer) >= 0.85, (a, EMOTIONS[e], per_layer)
        assert acc[a][e] > 0.95
        # and each actor gets its own direction, not the other actor's
        other = "B" if a == "A" else "A"
        assert cos(dirs[a][e], planted[(other, e)]) < 0.6
    # per-layer unit norm, as the official directions
    assert np.allclose(np.linalg.norm(dirs["A"][4], axis=1), 1.0, atol=1e-5)


def test_edits_move_emotion_and_leave_content_unchanged():
    codes, act, emo, clips, planted = planted_latents(seed=1)
    dirs = paired.fit_directions(codes, act, emo, method="content-orthogonal", clips=clips)
    plain = paired.fit_directions(codes, act, emo)      # the official recipe: SVC(linear, C=1) on raw codes
    neutral = torch.from_numpy(codes[(act == "A") & (emo == paired.NEUTRAL)])
    happy = EMOTIONS.index("happy")
    edited = paired.edit_codes(neutral, dirs["A"][happy], alpha=paired.ALPHA)
    delta = (edited - neutral).numpy()
    assert paired.ALPHA == 15.0
    # the emotion dims moved by ~alpha per layer, along the planted direction
    emo_move = np.linalg.norm(delta[:, :, EMO_DIMS], axis=-1)
    assert np.allclose(emo_move, 15.0, rtol=0.08)
    assert cos(delta[0], planted[("A", happy)]) >= 0.9
    # the speech content read out of the codes (least-squares mouth opening / rounding) is unchanged:
    # by < 5 % of the range speech covers (±3); so does the plain SVM direction (official recipe) here
    patterns = planted["content"].reshape(2, -1).T

    def content_shift(dlt):
        return np.abs(np.linalg.lstsq(patterns, dlt.reshape(len(dlt), -1).T, rcond=None)[0]).max()

    plain_delta = (paired.edit_codes(neutral, plain["A"][happy]) - neutral).numpy()
    assert content_shift(delta) < 0.05 * 6
    assert content_shift(plain_delta) < 0.05 * 6
    # the edited codes are classified as happy by a fresh SVM on real data (they went to the right place)
    real_happy = codes[(act == "A") & (emo == happy)]
    centre_n, centre_h = codes[(act == "A") & (emo == paired.NEUTRAL)].mean(0), real_happy.mean(0)
    move = edited.numpy().mean(0) - centre_n
    assert cos(move[:, EMO_DIMS], (centre_h - centre_n)[:, EMO_DIMS]) > 0.9


def test_direction_needs_two_samples_each():
    with pytest.raises(SSERDError, match="at least 2"):
        paired.fit_direction(np.zeros((1, 4)), np.ones((5, 4)))


def test_official_directions_are_the_linear_svc_on_raw_codes():
    """The official recipe: sklearn SVC(kernel='linear', C=1) on the raw flattened codes of *all* neutral and
    emotional frames, fitted on an 80 % split (random_state 42), unit norm per layer; accuracy on the other 20 %."""
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    codes, act, emo, _, planted = planted_latents(seed=2, n_per=60)
    dirs, acc = paired.fit_directions_with_accuracy(codes, act, emo)      # method="official" is the default
    happy = EMOTIONS.index("happy")
    neutral, emotional = codes[(act == "A") & (emo == paired.NEUTRAL)], codes[(act == "A") & (emo == happy)]
    x = np.concatenate([neutral, emotional]).reshape(-1, L_LAYERS * D).astype(np.float64)
    y = np.r_[np.zeros(len(neutral)), np.ones(len(emotional))]
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    svm = SVC(kernel="linear", C=1).fit(x_fit, y_fit)
    ref = svm.coef_[0].reshape(L_LAYERS, D)
    np.testing.assert_allclose(dirs["A"][happy], ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    assert acc["A"][happy] == pytest.approx(svm.score(x_test, y_test))
    # and it finds the planted directions
    for (a, e), d in ((k, v) for k, v in planted.items() if k != "content"):
        assert cos(dirs[a][e], d / np.linalg.norm(d, axis=1, keepdims=True)) >= 0.85, (a, EMOTIONS[e])
