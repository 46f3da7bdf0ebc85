"""A different target emotion for each face of a clip: :class:`FaceTarget` (what one face should show),
:class:`FaceEdit` (one face's track and target, as the render takes it) and the ``N=TARGET`` text the CLI,
the Space and the node read.

One edit with several faces tracks every listed face in one decoding pass (one tracker per face,
:func:`~sserd_core.pipeline.stages.disentangle_faces`) and renders each frame once: the faces' patches
are applied in turn, each face edited on the frame that already carries the edits before it, and
merged into one patch for the encoder (:meth:`~sserd_core.media.Patch.then`). A frame where one face
is lost keeps that face as it is; the others are still edited.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Optional

from ..content import ContentTrack
from ..emotion import DEFAULT_INTENSITY, SYNC_MODES, EmotionSpec
from ..errors import SSERDError
from .stages import ProgressFn, extract_emotion

#: the ``N=TARGET`` forms, as the CLI's help and the errors show them
SYNTAX = ("N=LABEL[@INTENSITY], N=reference:PATH, N=curve:TEXT or N=controls:TEXT, any of the first three optionally "
          "followed by '+ controls:TEXT' (N: the face index, 0 = largest)")


@dataclass(frozen=True)
class FaceTarget:
    """What face ``face_index`` (0 = largest on the first frame with faces) should show: the target fields of
    :class:`~sserd_core.pipeline.EditOptions`, with the same meaning — ``emotion`` (a label) at ``intensity``,
    or a ``reference`` image / clip (matched by ``sync``), or ``curve`` text; none of them: neutral; ``controls``
    (expression controls text, :mod:`sserd_core.controls`) on top, or alone (then on the face's own expression).

    Checked when made, by the same checks as :class:`EditOptions` (a bad label, two kinds of target: one
    sentence). :meth:`spec` turns it into an :class:`EmotionSpec` with the same :func:`extract_emotion`."""

    face_index: int
    emotion: Optional[str] = None
    intensity: float = DEFAULT_INTENSITY
    reference: object = None
    curve: Optional[str] = None
    sync: str = SYNC_MODES[0]
    controls: Optional[str] = None

    def __post_init__(self) -> None:
        from .options import EditOptions  # (options holds a tuple of these)

        try:
            checked = EditOptions(face_index=self.face_index, **self.target_fields())
        except SSERDError as exc:
            raise SSERDError(f"Face {self.face_index}'s target: {exc}") from None
        for name in ("face_index", *self.target_fields()):
            object.__setattr__(self, name, getattr(checked, name))

    @classmethod
    def field_names(cls) -> tuple:
        """The target's fields (every field but ``face_index``): the same names as :class:`EditOptions`'s."""
        return tuple(f.name for f in fields(cls) if f.name != "face_index")

    def target_fields(self) -> dict:
        """The target's fields by name (for :func:`extract_emotion` and :class:`EditOptions`)."""
        return {name: getattr(self, name) for name in self.field_names()}

    @property
    def given(self) -> bool:
        """Whether a target is said at all (a label, a reference, a curve or controls): not just the neutral
        default."""
        return any(v is not None and not (isinstance(v, str) and v == "")
                   for v in (self.emotion, self.reference, self.curve, self.controls))

    def spec(self, progress: Optional[ProgressFn] = None) -> EmotionSpec:
        """The target emotion (:func:`extract_emotion` of the target fields; neutral if none is given)."""
        f = self.target_fields()
        return extract_emotion(label=f.pop("emotion"), progress=progress, **f)

    @classmethod
    def parse(cls, text: str, sync: str = SYNC_MODES[0]) -> "FaceTarget":
        """``"1=sad@0.5"``, ``"0=happy"``, ``"1=reference:face.jpg"``, ``"1=curve:0:neutral,2:happy@0.9"`` → a
        target (``sync`` for a reference clip). A form it cannot read: one :class:`SSERDError` sentence."""
        m = re.fullmatch(r"\s*(\d+)\s*=\s*(.*?)\s*", str(text), re.S)
        if m is None or not m.group(2):
            raise SSERDError(f"Cannot read the face target '{text}': write {SYNTAX}, e.g. 1=sad@0.5.")
        index, value = int(m.group(1)), m.group(2)
        base, plus, controls = value.partition("+")
        if plus:
            kind, sep, controls = controls.partition(":")
            if kind.strip().lower() != "controls" or not sep:
                raise SSERDError(f"After '+' in the face target '{text}' write controls:TEXT, e.g. "
                                 "1=happy@0.5 + controls:brow_lower=-0.3.")
            value, controls = base.strip(), controls.strip()
        else:
            controls = None
        kind, sep, rest = value.partition(":")
        kind = kind.strip().lower()
        if sep and kind == "controls" and controls is None:
            return cls(index, controls=rest.strip())
        if sep and kind == "reference":
            return cls(index, reference=rest.strip(), sync=sync, controls=controls)
        if sep and kind == "curve":
            return cls(index, curve=rest.strip(), controls=controls)
        if sep:
            raise SSERDError(f"Unknown kind of face target '{kind}' in '{text}': write {SYNTAX}.")
        label, at, amount = value.partition("@")
        if not at:
            return cls(index, emotion=label.strip(), controls=controls)
        try:
            intensity = float(amount)
        except ValueError:
            raise SSERDError(f"The intensity in the face target '{text}' must be a number from 0 to 1, got "
                             f"'{amount.strip()}'.") from None
        return cls(index, emotion=label.strip(), intensity=intensity, controls=controls)

    def text(self) -> str:
        """The target as :meth:`parse` reads it (``"1=sad@0.5"``, ``"1=happy + controls:brow_lower=-0.3"``)."""
        more = f" + controls:{self.controls}" if self.controls else ""
        if self.curve:
            return f"{self.face_index}=curve:{self.curve}{more}"
        if self.reference is not None and isinstance(self.reference, (str, os.PathLike)):
            return f"{self.face_index}=reference:{self.reference}{more}"
        if self.reference is not None:
            raise SSERDError("A face target whose reference is an image array has no text form.")
        if self.controls and not self.emotion:
            return f"{self.face_index}=controls:{self.controls}"
        label = self.emotion or "neutral"
        return (f"{self.face_index}={label}" + ("" if self.intensity == DEFAULT_INTENSITY else f"@{self.intensity:g}")
                + more)


def parse_face_targets(text: str, sync: str = SYNC_MODES[0]) -> tuple:
    """Several ``N=TARGET`` forms, one per line or separated by ``;`` (a curve's commas stay inside its
    target, and a ``;`` that does not start a new ``N=``, such as between control keyframes, too) → a tuple of
    :class:`FaceTarget`; blank text: none."""
    parts = [p for line in str(text or "").splitlines() for p in re.split(r";(?=\s*\d+\s*=)", line) if p.strip()]
    return tuple(FaceTarget.parse(p, sync=sync) for p in parts)


def check_faces(faces, options) -> tuple:
    """``options.faces`` normalised (a sequence of :class:`FaceTarget` or ``N=TARGET`` texts → a tuple of
    targets), checked against each other and against ``options``' own target (see :func:`face_targets`)."""
    if faces is None or faces == ():
        return ()
    if isinstance(faces, (str, FaceTarget)) or not hasattr(faces, "__iter__"):
        faces = [faces] if isinstance(faces, FaceTarget) else parse_face_targets(faces, options.sync) \
            if isinstance(faces, str) else None
        if faces is None:
            raise SSERDError("faces must be a list of face targets, e.g. [FaceTarget(1, emotion='sad')] or "
                             "['1=sad@0.5'].")
    out = []
    for f in faces:
        if isinstance(f, str):
            out.extend(parse_face_targets(f, options.sync))
        elif isinstance(f, FaceTarget):
            out.append(f)
        else:
            raise SSERDError(f"A face target must be a FaceTarget or text such as '1=sad@0.5', got {f!r}.")
    seen = set()
    main = main_target(options)
    if main.given:
        seen.add(main.face_index)
    elif options.face_index != 0 and out:
        raise SSERDError(f"face_index {options.face_index} has no target of its own: give it one (an emotion, a "
                         "reference or a curve), or list it among the face targets.")
    for f in out:
        if f.face_index in seen:
            raise SSERDError(f"Face {f.face_index} is given two targets; give each face index once.")
        seen.add(f.face_index)
    return tuple(out)


def main_target(options) -> FaceTarget:
    """``options``' own target fields, for face ``options.face_index``."""
    return FaceTarget(options.face_index, **{name: getattr(options, name) for name in FaceTarget.field_names()})


def face_targets(options) -> tuple:
    """Every face an edit with ``options`` changes, as :class:`FaceTarget`, in the order they are edited:
    without ``faces``, the one face ``face_index`` with the options' own target (today's single-face edit);
    with ``faces``, the options' own target first when one is given (for ``face_index``), then ``faces``."""
    main = main_target(options)
    if not options.faces:
        return (main,)
    return ((main,) if main.given else ()) + tuple(options.faces)


@dataclass(frozen=True)
class FaceEdit:
    """One face of an edit with several faces, as the render takes it: its ``content`` track (which face, from
    :func:`disentangle_content` / :func:`disentangle_faces`) and the ``emotion`` it should show."""

    content: ContentTrack
    emotion: EmotionSpec

    @property
    def face_index(self) -> int:
        return int(self.content.face_index)


def check_same_clip(main: ContentTrack, others) -> None:
    """Every track in ``others`` follows a face of ``main``'s clip (same file, range and frames) and no two
    tracks follow the same face index."""
    seen = {int(main.face_index)}
    for o in others:
        c = o.content
        same = (str(c.video.path) == str(main.video.path) and c.video.start == main.video.start
                and c.video.end == main.video.end and c.n_frames == main.n_frames)
        if not same:
            raise SSERDError(f"Face {c.face_index}'s track is of another clip or range ({os.path.basename(str(c.video.path))}, "
                             f"{c.n_frames} frames) than the face it is edited with ({os.path.basename(str(main.video.path))}, "
                             f"{main.n_frames} frames): track every face on the same video.")
        if int(c.face_index) in seen:
            raise SSERDError(f"Face {c.face_index} is given two targets; give each face index once.")
        seen.add(int(c.face_index))


__all__ = ["FaceEdit", "FaceTarget", "SYNTAX", "check_faces", "check_same_clip", "face_targets", "main_target",
           "parse_face_targets"]
