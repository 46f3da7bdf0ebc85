"""Plots and a summary of what an edit measurably did: emotion over time and mouth opening.

Framework-free (matplotlib's object API, no ``pyplot`` state, so it is safe to call from
several threads at once — the Space serves concurrent requests). The Space shows the
figure; the CLI saves it with :func:`save_figure`.

Inputs are the measurement fields of :class:`sserd_core.pipeline.RenderResult`:

- ``times`` ``float [N]`` seconds from the start of the edited range;
- ``target`` ``float [N, 7]`` the requested emotion per frame;
- ``source_emotion`` / ``edited_emotion`` ``float [N, 7]`` the emotion measured on the
  source / edited frames (entries in the order of :data:`sserd_core.emotion.EMOTIONS`,
  intensities 0..1; NaN where no face was found);
- ``source_mouth`` / ``edited_mouth`` ``float [N]`` inner-lip opening in inter-ocular
  units, measured the same way (NaN where no face).

The top panel shows, for the emotions that matter (those the target asks for, plus the
one the source shows most), the intensity asked for (dashed) and the **landmark reading**
of the source (thin) and of the edit (thick): how far the 68 landmarks fitted to each frame
have moved toward that emotion's shape (0..1; :func:`sserd_core.expression.measure_frame`).
It is a geometric reading, not a judge's rating: it stays below the intensity asked for even
on edits that look right (the mouth keeps the speech, and the reading sees only landmarks),
so read the edit as the rise of the thick curve over the thin one. The bottom panel overlays
the source and edited mouth opening — speech is preserved when they coincide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from .emotion import EMOTIONS

#: One colour per emotion, in the order of :data:`EMOTIONS` (colour-blind-safe Okabe–Ito; one blue only, so
#: sad and surprised are never two similar blues)
EMOTION_COLORS = {
    "neutral": "#7f7f7f",
    "angry": "#d55e00",
    "disgusted": "#009e73",
    "fear": "#cc79a7",
    "happy": "#e69f00",
    "sad": "#0072b2",
    "surprised": "#000000",
}
#: the legend's line-style keys and the target-0 line (no emotion's colour)
_KEY_GREY = "#9a9a9a"


@dataclass
class EditSummary:
    """Per-clip numbers behind the plot.

    ``emotions``: the emotions plotted (names). ``target_mean`` / ``source_mean`` /
    ``edited_mean``: mean over frames with a face of each of those emotions' intensity asked for /
    landmark reading on the source / landmark reading on the edit (see the module docstring). ``mouth_mae``: mean absolute difference
    of edited vs source inner-lip opening (inter-ocular units); ``mouth_corr``: their
    Pearson correlation over frames (NaN when either is constant or < 3 frames);
    ``frames_measured``: frames where both source and edited faces were measured.
    """

    emotions: list
    target_mean: dict
    source_mean: dict
    edited_mean: dict
    mouth_mae: float
    mouth_corr: float
    frames_measured: int
    n_frames: int

    def text(self) -> str:
        """A few Markdown lines for people (the Space shows this under the plot)."""
        lines = []
        for e in self.emotions:
            change = self.edited_mean[e] - self.source_mean[e]
            lines.append(f"- **{e}**: asked {self.target_mean[e]:.2f} · landmark reading {self.source_mean[e]:.2f} "
                         f"(source) → {self.edited_mean[e]:.2f} (edited), {change:+.2f}")
        if self.emotions:
            lines.append("- the landmark reading is how far the face's 68 landmarks moved toward each emotion's "
                         "shape, not a judge's rating: it stays below the intensity asked for even when the edit "
                         "looks right, so read the change from the source")
        if self.frames_measured:
            corr = "n/a" if np.isnan(self.mouth_corr) else f"{self.mouth_corr:.2f}"
            lines.append(f"- **mouth opening** (speech): mean |edited − source| = {self.mouth_mae:.3f} "
                         f"inter-ocular units, correlation {corr}")
        lines.append(f"- measured on {self.frames_measured} of {self.n_frames} frames")
        return "\n".join(lines)


def _as_arrays(times, target, source_emotion, edited_emotion, source_mouth, edited_mouth):
    times = np.asarray(times, np.float64).reshape(-1)
    n = len(times)
    out = [times]
    for name, a, shape in (("target", target, (n, len(EMOTIONS))),
                           ("source_emotion", source_emotion, (n, len(EMOTIONS))),
                           ("edited_emotion", edited_emotion, (n, len(EMOTIONS))),
                           ("source_mouth", source_mouth, (n,)),
                           ("edited_mouth", edited_mouth, (n,))):
        a = np.asarray(a, np.float64)
        if a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {shape} (N = len(times) = {n}).")
        out.append(a)
    return out


def _nanmean(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def select_emotions(target: np.ndarray, source_emotion: np.ndarray, edited_emotion: Optional[np.ndarray] = None,
                    max_emotions: int = 3, threshold: float = 0.05, context_threshold: float = 0.1) -> list:
    """Names of the emotions worth plotting (neutral excluded): every emotion the target asks for
    (peak ≥ ``threshold``), then the one the source and the one the edit show most (mean ≥
    ``context_threshold``), up to ``max_emotions``."""
    target = np.asarray(target, np.float64)
    chosen = []
    peaks = np.nanmax(np.where(np.isfinite(target), target, 0.0), axis=0) if len(target) else np.zeros(len(EMOTIONS))
    for i in np.argsort(-peaks):
        if i != 0 and peaks[i] >= threshold and len(chosen) < max_emotions:
            chosen.append(EMOTIONS[i])
    for measured in (source_emotion, edited_emotion):
        if measured is None or len(chosen) >= max_emotions:
            continue
        m = np.asarray(measured, np.float64)
        means = np.array([_nanmean(m[:, i]) for i in range(len(EMOTIONS))]) if len(m) else np.zeros(len(EMOTIONS))
        means = np.nan_to_num(means, nan=0.0)
        for i in np.argsort(-means):
            if i != 0 and means[i] >= context_threshold and EMOTIONS[i] not in chosen and len(chosen) < max_emotions:
                chosen.append(EMOTIONS[i])
                break
    return chosen


def summarize(times, target, source_emotion, edited_emotion, source_mouth, edited_mouth,
              emotions: Optional[Sequence[str]] = None) -> EditSummary:
    """The numbers behind :func:`emotion_figure` (see :class:`EditSummary`)."""
    times, target, src, out, src_m, out_m = _as_arrays(times, target, source_emotion, edited_emotion,
                                                       source_mouth, edited_mouth)
    emotions = list(emotions) if emotions is not None else select_emotions(target, src, out)
    idx = {e: EMOTIONS.index(e) for e in emotions}
    both = np.isfinite(src).all(axis=1) & np.isfinite(out).all(axis=1)
    mouth_ok = np.isfinite(src_m) & np.isfinite(out_m)
    mae = float(np.abs(out_m[mouth_ok] - src_m[mouth_ok]).mean()) if mouth_ok.any() else float("nan")
    corr = float("nan")
    if mouth_ok.sum() >= 3 and np.std(src_m[mouth_ok]) > 1e-9 and np.std(out_m[mouth_ok]) > 1e-9:
        corr = float(np.corrcoef(src_m[mouth_ok], out_m[mouth_ok])[0, 1])
    return EditSummary(
        emotions=emotions,
        target_mean={e: _nanmean(target[both, i]) if both.any() else _nanmean(target[:, i]) for e, i in idx.items()},
        source_mean={e: _nanmean(src[both, i]) for e, i in idx.items()},
        edited_mean={e: _nanmean(out[both, i]) for e, i in idx.items()},
        mouth_mae=mae, mouth_corr=corr, frames_measured=int(both.sum()), n_frames=len(times),
    )


def emotion_figure(times, target, source_emotion, edited_emotion, source_mouth, edited_mouth, *,
                   emotions: Optional[Sequence[str]] = None, title: Optional[str] = None,
                   size: tuple = (9.0, 5.2), dpi: int = 100):
    """A two-panel :class:`matplotlib.figure.Figure`: emotion over time (target / source / edited)
    and inner-lip opening over time (source / edited). Arrays as described in the module docstring."""
    from matplotlib.figure import Figure

    times, target, src, out, src_m, out_m = _as_arrays(times, target, source_emotion, edited_emotion,
                                                       source_mouth, edited_mouth)
    emotions = list(emotions) if emotions is not None else select_emotions(target, src, out)
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    ax_e, ax_m = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    zero_target = False
    for e in emotions:
        i = EMOTIONS.index(e)
        c = EMOTION_COLORS[e]
        if np.nanmax(np.abs(target[:, i]), initial=0.0) > 0:
            ax_e.plot(times, target[:, i], color=c, linestyle="--", linewidth=1.4, label=f"{e} · target")
        else:
            zero_target = True
        ax_e.plot(times, src[:, i], color=c, linewidth=1.0, alpha=0.6, label=f"{e} · source")
        ax_e.plot(times, out[:, i], color=c, linewidth=2.4, label=f"{e} · edited")
    if zero_target:  # one grey dashed line stands for every emotion whose target is 0 throughout
        ax_e.axhline(0.0, color=_KEY_GREY, linestyle="--", linewidth=1.2, label="asked: 0")
    if not emotions:
        ax_e.text(0.5, 0.5, "neutral target, no emotion measured", transform=ax_e.transAxes,
                  ha="center", va="center", color="#555555")
    ax_e.set_ylim(-0.03, 1.03)
    ax_e.set_ylabel("landmark reading\n(asked: intensity)")
    ax_e.grid(True, alpha=0.3)
    if emotions:  # legend: colour = emotion, line style = target / source / edited
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=EMOTION_COLORS[e], linewidth=6, label=e) for e in emotions]
        handles += [Line2D([], [], color=_KEY_GREY, linestyle="--", linewidth=1.4, label="asked for"),
                    Line2D([], [], color=_KEY_GREY, linewidth=1.0, label="source, reading"),
                    Line2D([], [], color=_KEY_GREY, linewidth=2.4, label="edited, reading")]
        if zero_target:
            handles.append(Line2D([], [], color=_KEY_GREY, linestyle="--", linewidth=1.2,
                                  label="asked 0: " + ", ".join(e for e in emotions
                                                                 if not np.nanmax(np.abs(target[:, EMOTIONS.index(e)]),
                                                                                  initial=0.0) > 0)))
        ax_e.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_e.set_title(title or "Landmark reading of each emotion: not a judge's rating, read the rise over the source\n"
                            "dashed = asked for, thin = source, thick = edited", fontsize=9, loc="left")

    ax_m.plot(times, src_m, color="#333333", linewidth=1.2, label="source")
    ax_m.plot(times, out_m, color="#d55e00", linewidth=2.0, linestyle=(0, (4, 2)), label="edited")
    ax_m.set_ylabel("mouth opening\n(inter-ocular units)")
    ax_m.set_xlabel("time (s)")
    ax_m.grid(True, alpha=0.3)
    ax_m.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_m.set_title("Speech content: the edited mouth should follow the source", fontsize=10, loc="left")
    if len(times) and np.isfinite(times).any():
        lo, hi = float(np.nanmin(times)), float(np.nanmax(times))
        ax_m.set_xlim(lo, hi if hi > lo else lo + 1e-3)
    return fig


def plot_render_result(result, **kwargs):
    """:func:`emotion_figure` of a :class:`sserd_core.pipeline.RenderResult`."""
    return emotion_figure(result.times, result.target, result.source_emotion, result.edited_emotion,
                          result.source_mouth, result.edited_mouth, **kwargs)


def summarize_render_result(result, **kwargs) -> EditSummary:
    """:func:`summarize` of a :class:`sserd_core.pipeline.RenderResult`."""
    return summarize(result.times, result.target, result.source_emotion, result.edited_emotion,
                     result.source_mouth, result.edited_mouth, **kwargs)


def save_figure(fig, path: Union[str, os.PathLike]) -> None:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by extension)."""
    fig.savefig(os.fspath(path))


def plot_emotion_over_time(result, path: Union[str, os.PathLike], **kwargs):
    """Save the :func:`emotion_figure` of a :class:`~sserd_core.pipeline.RenderResult` to ``path``
    (what ``sserd edit --plot FILE`` writes); return the path."""
    save_figure(plot_render_result(result, **kwargs), path)
    return path
