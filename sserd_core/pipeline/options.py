"""Every option of one edit (:class:`EditOptions`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Optional

from .. import validate
from ..editor import FaceEditor
from ..emotion import DEFAULT_INTENSITY, SYNC_MODES, EmotionSpec
from .faces import check_faces
from .stages import ProgressFn, extract_emotion


@dataclass(frozen=True)
class EditOptions:
    """Every option of one edit, with the one set of defaults that every front-end uses.

    The CLI's flags, the nodes' inputs and the Space's controls are translations of these
    fields; :func:`edit` runs them. The target emotion is one of: ``emotion`` (a label) at
    ``intensity``; ``reference`` (an image or a clip path, or an RGB array; a clip is followed
    frame by frame, matched by ``sync``); or ``curve`` text; ``controls`` (expression controls, text such as
    ``"smile=0.6, brow_inner=-0.3"`` or a mapping, :mod:`sserd_core.controls`) add to it, or stand alone
    on the source's own expression. ``faces``: a different target for other faces
    (:class:`~sserd_core.pipeline.faces.FaceTarget` records, or ``N=TARGET`` texts such as ``"1=sad@0.5"``),
    each face tracked and edited on its own; the fields above are then face ``face_index``'s target when one
    is given (empty ``faces``: the one face ``face_index``). ``backend``: ``"landmark"`` or a
    neural model folder / Hub repo id, on ``device`` (see :func:`make_editor`, which takes
    ``grid_step`` / ``interpolation`` for the landmark warp). ``face_index``, ``start`` / ``end``:
    which face and which part of the clip. ``threads``: frame workers (default: one per core, at
    most 4). ``preview_n``: preview frames to save. ``measure``: fit landmarks on every edited
    frame and report the emotion and mouth opening shown. ``strict``: a truncated clip is an error.
    ``dtype``, ``batch_size``, ``noise_mode``, ``max_face_size``: the neural backend's compute precision
    (``validate.DTYPES``; None / ``"auto"``: bf16 on CUDA, fp32 on the CPU), frames per network call (None / 0:
    8 on CUDA, 2 on the CPU), decoder noise (``validate.NOISE_MODES``) and the largest face size decoded, px
    (None / 0: the model's full output size); the landmark backend ignores them (see :data:`NEURAL`).
    """

    #: the label a form's emotion list shows selected at first (the Space, the Extract Emotion node). The
    #: field's own default is no label: the neutral face, nothing asked for
    FORM_LABEL: ClassVar[str] = "happy"
    #: the numeric fields' ranges (inclusive; None: unbounded), which the front-ends' controls show
    LIMITS: ClassVar[dict] = {"intensity": (0.0, 1.0), "face_index": (0, None), "start": (0.0, None),
                              "end": (0.0, None), "grid_step": (1, validate.MAX_GRID_STEP),
                              "threads": (1, validate.MAX_THREADS), "preview_n": (0, validate.MAX_PREVIEWS),
                              "batch_size": (0, validate.MAX_BATCH_SIZE), "max_face_size": (0, validate.MAX_FACE_SIZE)}
    #: the fields only a neural backend uses (0 in batch_size / max_face_size, like None, means automatic)
    NEURAL: ClassVar[tuple] = ("dtype", "batch_size", "noise_mode", "max_face_size")

    emotion: Optional[str] = None
    intensity: float = DEFAULT_INTENSITY
    reference: object = None
    curve: Optional[str] = None
    controls: Optional[str] = None
    sync: str = SYNC_MODES[0]
    face_index: int = 0
    faces: tuple = ()
    start: Optional[float] = None
    end: Optional[float] = None
    backend: str = "landmark"
    device: Optional[str] = None
    grid_step: int = 8
    interpolation: str = "bicubic"
    threads: Optional[int] = None
    preview_n: int = 0
    measure: bool = False
    strict: bool = False
    dtype: Optional[str] = None
    batch_size: Optional[int] = None
    noise_mode: str = validate.NOISE_MODES[0]
    max_face_size: Optional[int] = None

    def __post_init__(self) -> None:
        """Every field is checked here, once, for its type and range (:func:`validate.edit_options`): a bad
        option fails at construction with one sentence, in every front-end alike, never after tracking."""
        for name, value in validate.edit_options(self).items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "faces", check_faces(self.faces, self))

    @classmethod
    def defaults(cls) -> dict:
        """Every field's default, by name (what a front-end shows before the user changes anything)."""
        return {f.name: f.default for f in fields(cls)}

    def target(self, progress: Optional[ProgressFn] = None) -> EmotionSpec:
        """The target emotion (:func:`extract_emotion` of the fields that say it; neutral if none does)."""
        return extract_emotion(label=self.emotion, intensity=self.intensity, reference=self.reference,
                               curve=self.curve, sync=self.sync, controls=self.controls, progress=progress)

    def editor(self) -> FaceEditor:
        """The backend these options ask for (:func:`make_editor`)."""
        from .backends import make_editor  # the factory takes its defaults from this class

        return make_editor(self.backend, self.device, grid_step=self.grid_step, interpolation=self.interpolation,
                           **self.neural_options())

    def neural_options(self) -> dict:
        """The neural backend's options (:data:`NEURAL`), by name, as :func:`make_editor` takes them."""
        return {name: getattr(self, name) for name in self.NEURAL}
