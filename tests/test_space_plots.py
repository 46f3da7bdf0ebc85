"""sserd_core.plots: the emotion-over-time / mouth-opening figure and its summary, on synthetic arrays."""

from __future__ import annotations

import io

import numpy as np
import pytest

from sserd_core import plots
from sserd_core.emotion import EMOTIONS, emotion_vector

HAPPY = EMOTIONS.index("happy")
SAD = EMOTIONS.index("sad")


def _clip(n=50, fps=25.0, lost=()):
    """A synthetic edit: target happy 0.8; source mildly sad; edited follows the target; mouth kept."""
    t = np.arange(n) / fps
    target = np.tile(emotion_vector("happy", 0.8), (n, 1))
    src = np.tile(emotion_vector("sad", 0.3), (n, 1))
    out = np.tile(emotion_vector("happy", 0.7), (n, 1))
    mouth = 0.15 + 0.1 * np.sin(2 * np.pi * 3 * t)  # speech-like opening
    out_mouth = mouth + 0.01
    for i in lost:
        src[i] = out[i] = np.nan
        mouth[i] = out_mouth[i] = np.nan
    return t, target, src, out, mouth, out_mouth


def _png(fig) -> np.ndarray:
    import matplotlib.image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return matplotlib.image.imread(buf)


def test_figure_draws_target_source_edited_and_mouth():
    fig = plots.emotion_figure(*_clip(lost=(10, 11)))
    ax_e, ax_m = fig.axes
    labels = [ln.get_label() for ln in ax_e.get_lines()]
    assert labels[:3] == ["happy · target", "happy · source", "happy · edited"]
    assert "sad · edited" in labels  # the emotion the source shows is plotted too
    assert "sad · target" not in labels and "asked: 0" in labels  # zero targets share one grey line
    legend = [t.get_text() for t in ax_e.get_legend().get_texts()]
    assert "asked 0: sad" in legend and "asked for" in legend  # the grey line names the emotions it stands for
    assert "landmark reading" in ax_e.get_ylabel() and "not a judge" in ax_e.get_title(loc="left")
    edited = ax_e.get_lines()[2]
    np.testing.assert_allclose(edited.get_ydata()[:5], 0.7, atol=1e-6)
    mouth_lines = ax_m.get_lines()
    assert [ln.get_label() for ln in mouth_lines] == ["source", "edited"]
    assert np.isnan(mouth_lines[0].get_ydata()[10])  # lost faces leave gaps, not zeros
    img = _png(fig)
    assert img.shape[0] > 300 and img.shape[1] > 600
    assert img[..., :3].std() > 0.05  # something was drawn, not a blank canvas


def test_summary_numbers():
    s = plots.summarize(*_clip(lost=(3,)))
    assert s.emotions[0] == "happy" and "sad" in s.emotions
    assert s.target_mean["happy"] == pytest.approx(0.8, abs=1e-6)
    assert s.source_mean["happy"] == pytest.approx(0.0, abs=1e-6)
    assert s.edited_mean["happy"] == pytest.approx(0.7, abs=1e-6)
    assert s.source_mean["sad"] == pytest.approx(0.3, abs=1e-6)
    assert s.mouth_mae == pytest.approx(0.01, abs=1e-6)
    assert s.mouth_corr == pytest.approx(1.0, abs=1e-6)
    assert (s.frames_measured, s.n_frames) == (49, 50)
    text = s.text()
    assert "happy" in text and "0.70" in text and "49 of 50" in text
    assert "+0.70" in text and "landmark reading" in text  # the change from the source, and what the number is


def test_every_emotion_has_a_colour_of_its_own():
    """No two emotions in one hue (sad and surprised were two blues, #0072b2 and #56b4e9, both at 202°): coloured
    lines differ in hue, grey and black in lightness."""
    import colorsys

    from matplotlib.colors import to_rgb

    hsv = {e: colorsys.rgb_to_hsv(*to_rgb(c)) for e, c in plots.EMOTION_COLORS.items()}
    for a in hsv:
        for b in hsv:
            if a < b:
                (ha, sa, va), (hb, sb, vb) = hsv[a], hsv[b]
                if sa > 0.2 and sb > 0.2:
                    d = abs(ha - hb) * 360
                    assert min(d, 360 - d) >= 14, (a, b)
                else:
                    assert sa > 0.2 or sb > 0.2 or abs(va - vb) >= 0.3, (a, b)


def test_mouth_mismatch_is_visible_in_summary():
    t, target, src, out, mouth, _ = _clip()
    frozen = np.full_like(mouth, mouth.mean())  # an edit that froze the mouth
    s = plots.summarize(t, target, src, out, mouth, frozen)
    assert s.mouth_mae > 0.05
    assert np.isnan(s.mouth_corr)  # constant edited mouth: correlation undefined, not faked


def test_curve_target_selects_every_requested_emotion():
    n = 30
    target = np.stack([emotion_vector("happy", 1 - a) if a < 0.5 else emotion_vector("sad", a)
                       for a in np.linspace(0, 1, n)])
    neutral = np.tile(emotion_vector("neutral"), (n, 1))
    chosen = plots.select_emotions(target, neutral, neutral)
    assert set(chosen) == {"happy", "sad"}


def test_neutral_everything_draws_a_note_not_an_error(tmp_path):
    n = 5
    neutral = np.tile(emotion_vector("neutral"), (n, 1))
    fig = plots.emotion_figure(np.arange(n) / 25, neutral, neutral, neutral, np.zeros(n), np.zeros(n))
    assert fig.axes[0].texts and "neutral" in fig.axes[0].texts[0].get_text()
    plots.save_figure(fig, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_shape_mismatch_is_a_clear_error():
    t, target, src, out, mouth, out_mouth = _clip()
    with pytest.raises(ValueError, match="edited_emotion has shape"):
        plots.emotion_figure(t, target, src, out[:-1], mouth, out_mouth)


def test_plot_emotion_over_time_writes_the_file_the_cli_asks_for(tmp_path):
    from types import SimpleNamespace

    t, target, src, out, mouth, out_mouth = _clip()
    result = SimpleNamespace(times=t, target=target, source_emotion=src, edited_emotion=out,
                             source_mouth=mouth, edited_mouth=out_mouth)  # the RenderResult fields
    for name in ("plot.png", "plot.svg"):
        path = plots.plot_emotion_over_time(result, tmp_path / name)
        assert path.stat().st_size > 1000
    assert (tmp_path / "plot.svg").read_text().lstrip().startswith("<?xml")
