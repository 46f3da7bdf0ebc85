"""Expression controls: named sliders over the action units, each −1…+1 with 0 = the source.

A control moves one part of the face the way a FACS action unit does (the displacement fields are
:data:`sserd_core.expression.CONTROL_AUS`): +1 is that action at the strength of a strong, posed
expression, −1 the opposite motion, 0 leaves the source as it is. No control moves the jaw or the
opening of the lips: those are the speech, and stay the source's.

Controls are given as text — ``"smile=0.6, brow_inner=0.4"`` (the same all clip long) or keyframes
over time, ``"0: smile=0; 2: smile=0.8 brow_lower=-0.3"`` (seconds; a control a keyframe does not name
is 0 there; between keyframes values are interpolated linearly, before the first and after the last
they are held) — or as a mapping ``{"smile": 0.6}``. They combine with an emotion label, a reference
face or a curve (the label's displacement and the controls' add up), or stand alone (then the source's
own expression is kept and only the controls change it).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np

from .errors import SSERDError


@dataclass(frozen=True)
class Control:
    """One named control: ``name`` (as typed), ``part`` and ``action`` (as a form shows it: "Brows",
    "inner raise"), ``au`` (the FACS action unit it follows) and what ``minus`` (−1) does."""

    name: str
    part: str
    action: str
    au: str
    minus: str

    @property
    def label(self) -> str:
        return f"{self.part}: {self.action}"


#: every control, in the order the forms show them
CONTROLS: tuple[Control, ...] = (
    Control("brow_inner", "Brows", "inner raise", "AU1", "inner brows lowered"),
    Control("brow_outer", "Brows", "outer raise", "AU2", "outer brows lowered"),
    Control("brow_lower", "Brows", "lower (frown)", "AU4", "brows lifted apart"),
    Control("lid_raise", "Upper lids", "raise (wide eyes)", "AU5", "upper lids lowered (heavy lids)"),
    Control("lid_tighten", "Lids", "tighten", "AU7", "lids relaxed"),
    Control("squint", "Lids", "squint", "AU44", "eyes opened"),
    Control("cheek_raise", "Cheeks", "raise", "AU6", "cheeks lowered"),
    Control("nose_wrinkle", "Nose", "wrinkle", "AU9", "nose and upper lip lowered"),
    Control("smile", "Lip corners", "pull up and back (smile)", "AU12", "corners drawn in and down"),
    Control("corners_down", "Lip corners", "press down", "AU15", "corners lifted"),
    Control("lip_stretch", "Lips", "stretch sideways", "AU20", "lips drawn together sideways"),
    Control("lip_press", "Lips", "press / tighten", "AU23", "lips relaxed and widened"),
    Control("chin_raise", "Chin", "raise", "AU17", "chin lowered"),
)
#: the controls' names, in :data:`CONTROLS` order (the columns of a control vector)
CONTROL_NAMES: tuple[str, ...] = tuple(c.name for c in CONTROLS)
N_CONTROLS = len(CONTROLS)
#: other names a user may type
_ALIASES = {
    "inner_brow": "brow_inner", "brows_inner": "brow_inner", "outer_brow": "brow_outer", "brows_outer": "brow_outer",
    "brow_raise": "brow_outer", "brows_lower": "brow_lower", "frown": "brow_lower", "brow_down": "brow_lower",
    "upper_lid": "lid_raise", "eyes_wide": "lid_raise", "lids_tighten": "lid_tighten", "cheeks": "cheek_raise",
    "cheek": "cheek_raise", "nose": "nose_wrinkle", "lip_corner_pull": "smile", "lip_corners_up": "smile",
    "lip_corner_depress": "corners_down", "lip_corners_down": "corners_down", "mouth_down": "corners_down",
    "stretch": "lip_stretch", "press": "lip_press", "lips_press": "lip_press", "chin": "chin_raise",
}
_ALIASES.update({c.au.lower(): c.name for c in CONTROLS})
#: the range of every control
RANGE = (-1.0, 1.0)

ControlsLike = Union[None, str, Mapping[str, float], list]


def control_name(name: str) -> str:
    """The control's canonical name (``"AU12"`` / ``"Smile"`` → ``"smile"``); one readable error otherwise."""
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    key = _ALIASES.get(key, key)
    if key not in CONTROL_NAMES:
        near = difflib.get_close_matches(key, list(CONTROL_NAMES) + list(_ALIASES), n=1)
        hint = f" Did you mean {_ALIASES.get(near[0], near[0])}?" if near else ""
        raise SSERDError(f"Unknown expression control '{name}'.{hint} The controls are: {', '.join(CONTROL_NAMES)}.")
    return key


def control_vector(values: Mapping[str, float], where: str = "") -> np.ndarray:
    """``float32 [N_CONTROLS]`` from ``{name: value}`` (unnamed controls 0); each value −1…+1."""
    v = np.zeros(N_CONTROLS, np.float32)
    seen = set()
    for name, value in values.items():
        key = control_name(name)
        if key in seen:
            raise SSERDError(f"The control {key} is given twice{where}; give each control once.")
        seen.add(key)
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise SSERDError(f"The control {key}{where} must be a number between -1 and 1, got {value!r}.") from None
        if not np.isfinite(x) or not RANGE[0] <= x <= RANGE[1]:
            raise SSERDError(f"The control {key}{where} must be between -1 and 1 (0 = the source), got {value}.")
        v[CONTROL_NAMES.index(key)] = x
    return v


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ITEM = re.compile(r"^\s*([A-Za-z][\w\-]*)\s*=\s*(\S+)\s*$")
_KEY = re.compile(rf"^\s*({_NUM})\s*(?:s\s*)?:(.*)$", re.S)


def _parse_values(text: str, where: str) -> np.ndarray:
    values: dict = {}
    for item in re.split(r"[,\s]+(?=[A-Za-z])", text.strip()):
        item = item.strip().rstrip(",")
        if not item:
            continue
        m = _ITEM.match(item)
        if not m:
            raise SSERDError(f"Control '{item}'{where} must look like NAME=VALUE, e.g. smile=0.6.")
        name, value = m.group(1), m.group(2)
        key = control_name(name)
        if key in values:
            raise SSERDError(f"The control {key} is given twice{where}; give each control once.")
        try:
            values[key] = float(value)
        except ValueError:
            raise SSERDError(f"The control {key}{where} must be a number between -1 and 1, got '{value}'.") from None
    return control_vector(values, where)


def parse_controls(spec: ControlsLike) -> list:
    """Control keyframes ``[(time_s, float32 [N_CONTROLS]), ...]`` sorted by time, from text, a mapping
    ``{name: value}`` or keyframes already made; ``[]`` for None / empty text (no controls)."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [(0.0, control_vector(spec))] if spec else []
    if isinstance(spec, (list, tuple)):
        frames = [(float(t), np.asarray(v, np.float32)) for t, v in spec]
        for _, v in frames:
            if v.shape != (N_CONTROLS,) or not np.all(np.isfinite(v)) or np.abs(v).max(initial=0) > 1:
                raise SSERDError(f"Control keyframes must be (time, {N_CONTROLS} values between -1 and 1).")
        return sorted(frames, key=lambda k: k[0])
    if not isinstance(spec, str):
        raise SSERDError(f"Expression controls must be text such as 'smile=0.6, brow_inner=0.4', got {spec!r}.")
    text = spec.strip()
    if not text:
        return []
    parts = [p for p in text.split(";") if p.strip()]
    keyed = [_KEY.match(p) for p in parts]
    if not any(keyed):
        if len(parts) > 1:
            raise SSERDError("Separate controls with commas ('smile=0.6, brow_inner=0.4'); ';' separates keyframes "
                             "over time, each starting with its time ('0: smile=0; 2: smile=0.8').")
        return [(0.0, _parse_values(text, ""))]
    frames = []
    for p, m in zip(parts, keyed):
        if not m:
            raise SSERDError(f"Control keyframe '{p.strip()}' must start with its time in seconds, e.g. "
                             "'2: smile=0.8 brow_inner=0.3'.")
        t = float(m.group(1))
        if not np.isfinite(t) or t < 0:
            raise SSERDError(f"Control keyframe '{p.strip()}': the time must be >= 0 seconds.")
        frames.append((t, _parse_values(m.group(2), f" at {t:g} s")))
    frames.sort(key=lambda k: k[0])
    times = [t for t, _ in frames]
    if len(set(times)) != len(times):
        raise SSERDError("Two control keyframes have the same time; give each keyframe its own time.")
    return frames


def controls_at(keyframes: list, times) -> np.ndarray:
    """Control values ``float32 [N, N_CONTROLS]`` at ``times`` (seconds) from keyframes (linear between
    keyframes, held outside them; zeros without keyframes)."""
    times = np.asarray(times, np.float64)
    out = np.zeros((len(times), N_CONTROLS), np.float32)
    if not keyframes or len(times) == 0:
        return out
    kt = np.array([t for t, _ in keyframes], np.float64)
    kv = np.stack([v for _, v in keyframes]).astype(np.float64)
    for j in range(N_CONTROLS):
        out[:, j] = np.interp(times, kt, kv[:, j])
    return out


def describe_controls(v: np.ndarray, threshold: float = 0.005) -> str:
    """``"smile +0.60, brow_inner -0.30"`` (controls at 0 left out), or ``""``."""
    v = np.asarray(v, np.float32)
    return ", ".join(f"{n} {x:+.2f}" for n, x in zip(CONTROL_NAMES, v) if abs(x) >= threshold)


def format_controls(keyframes: list) -> str:
    """Keyframes back as text that :func:`parse_controls` reads (for a form or a saved workflow)."""
    if not keyframes:
        return ""
    # a keyframe with every control at 0 still says so (it is not "no controls": 0 = the source), naming a control
    # the other keyframes move
    moved = [n for n, x in zip(CONTROL_NAMES, np.abs(np.stack([v for _, v in keyframes])).max(0)) if x != 0]
    zero = f"{(moved or CONTROL_NAMES)[0]}=0"
    items = [", ".join(f"{n}={x:g}" for n, x in zip(CONTROL_NAMES, v) if x != 0) or zero for _, v in keyframes]
    if len(keyframes) == 1 and keyframes[0][0] == 0.0:
        return items[0]
    return "; ".join(f"{t:g}: {s}" for (t, _), s in zip(keyframes, items))


def controls_help() -> str:
    """One line per control, for ``--help`` and the forms' tooltips."""
    return "\n".join(f"  {c.name:<13} {c.label} ({c.au}); -1: {c.minus}" for c in CONTROLS)


def controls_given(spec: ControlsLike) -> bool:
    """Whether ``spec`` names any control (text that is not blank, a non-empty mapping or keyframe list)."""
    if spec is None:
        return False
    if isinstance(spec, str):
        return bool(spec.strip())
    return bool(spec)


#: below this share of its displacement shown, a control is said to saturate
SATURATED = 0.85


#: below this share of its own displacement reaching the face (and not saturated), a control is said to be held
HELD = 0.5


def saturation_note(values: np.ndarray, shown: np.ndarray, reached=None) -> str:
    """Sentences naming the controls that saturate (``shown`` ``[N_CONTROLS]`` below :data:`SATURATED`) and those
    that barely reach the face at all (``reached`` below :data:`HELD`: a glasses frame, the open mouth of speech),
    with the largest value asked for (``values`` ``[N, N_CONTROLS]`` or ``[N_CONTROLS]``); ``""`` when none."""
    values = np.atleast_2d(np.asarray(values, np.float32))
    saturated, held = [], []
    for c, name in enumerate(CONTROL_NAMES):
        s = float(shown[c]) if np.isfinite(shown[c]) else 1.0
        r = float(reached[c]) if reached is not None and np.isfinite(reached[c]) else 1.0
        peak = float(values[np.argmax(np.abs(values[:, c])), c])
        if s < SATURATED:
            saturated.append(f"{name} {peak:+.2f} shows {100 * s:.0f}%")
        elif r < HELD:
            held.append(f"{name} {peak:+.2f} moves this face {100 * r:.0f}%")
    out = []
    if saturated:
        out.append("Saturated: " + ", ".join(saturated) + " of its motion; the rest is held back by the believability "
                   "bounds (how far a face part may move on top of the rest of the edit, the lips' height, the lid "
                   "folds, the room beside a glasses frame), so a larger value changes nothing more.")
    if held:
        out.append("Held: " + ", ".join(held) + " as far as on a bare face at rest: a glasses frame keeps the brows "
                   "and lids beside it still, and lips apart for speech keep most of their shape.")
    return " ".join(out)
