"""The expression model: content vs emotion, in landmark space (used by every backend and the evaluation).

Every frame's 68 landmarks are mapped to a *canonical face space* by a similarity
transform fixed by the eye corners (eye centres at (∓0.5, 0), unit = inter-ocular
distance, y down; :mod:`sserd_core.geometry`). In that space the expression is a
displacement from the person's neutral face, split into

- **content** (speech): jaw, inner-lip opening and mouth rounding. Never edited: the
  renderer pins the jaw and the inner-lip centres, and every emotion displacement moves
  upper and lower lip points together, so the lip gap of each frame is the source's.
- **emotion**: brows, lids, cheeks, nose and lip corners, as FACS action units (AUs).
  Each of the paper's 6 non-neutral emotions is a fixed combination of AU displacement
  fields (:data:`EMOTION_AUS`); an emotion vector's intensities weight them. Intensity 1
  is a strong, posed expression. The fields also move *skin points* between the landmarks
  (:data:`SKIN_POINTS`: forehead, lid fold, cheeks, the fold beside the mouth, chin), so
  the warp has handles where an expression moves skin the 68 points do not cover; the
  lateral extent and the corners of the mouth are emotion, its centre gap is speech.

Measuring an emotion (of a reference face, or of the source to be able to remove it)
uses content-insensitive geometric features (brow heights, lid openings, nose-wing and
lip-corner heights...) and a non-negative least-squares fit of the emotions' feature
signatures. The signatures come from the very displacement fields the renderer applies,
so measuring what was rendered gives back what was asked for. Against the population
neutral (a reference face, a clip's resting face) each feature's person-to-person spread
is taken off first (:data:`IDENTITY_SPREAD`), so a person's build does not read as emotion.

- :mod:`.layout` — the 68-point index tables, the skin points and the warp's control points;
- :mod:`.action_units` — the AU displacement fields, the emotions' AU recipes (``EMOTION_AUS`` to
  measure, ``EDIT_AUS`` to edit, ``REMOVE_AUS`` to take off), the expression controls' (``CONTROL_AUS``),
  the reach an edit may not pass (``EDIT_REACH``) and the displacement of an edit;
- :mod:`.features` — speech content and emotion features of canonical landmarks, the population neutral;
- :mod:`.fit` — the emotion fit and how a reference face is read;
- :mod:`.measure` — measuring faces in pixels (a reference image, a rendered frame);
- :mod:`.track` — :func:`build_content_track`, the content/emotion split of a tracked clip.
"""

from .layout import (BROW_L, BROW_R, CONTENT_POINTS, EMOTION_POINTS, EYE_L, EYE_R, INNER_LIP_CENTRES, JAW,
                     LIPS_INNER, LIPS_OUTER, MOUTH_CORNERS, N_CONTROL, NOSE_BASE, NOSE_BRIDGE, SKIN_NAMES,
                     SKIN_POINTS, control_points)
from .action_units import (ACTION_UNITS, CONTROL_AUS, CONTROL_BASIS, CONTROLS_BASIS, EDIT_REACH, controls_displacement,
                           hold_to_reach, EDIT_AUS, EDIT_CONTROL_BASIS, EMOTION_AUS, EMOTION_BASIS,
                           REMOVE_AUS, REMOVE_CONTROL_BASIS, control_displacement, edit_displacement, edit_split,
                           emotion_displacement, emotion_field, keep_lid_crease_between)
from .features import (FEATURES, IDENTITY_SPREAD, content_features, emotion_features,
                       identity_tolerant, population_neutral)
from .fit import (REFERENCE_OPEN_LIPS, feature_signatures, fit_emotion,
                  measure_landmarks, reference_target, reference_weights)
from .measure import measure_frame, measure_image, mouth_opening
from .track import build_content_track

__all__ = ["BROW_L", "BROW_R", "CONTENT_POINTS", "EMOTION_POINTS", "EYE_L", "EYE_R", "INNER_LIP_CENTRES",
           "JAW", "LIPS_INNER", "LIPS_OUTER", "MOUTH_CORNERS", "N_CONTROL", "NOSE_BASE", "NOSE_BRIDGE",
           "SKIN_NAMES", "SKIN_POINTS", "control_points",
           "ACTION_UNITS", "CONTROL_AUS", "CONTROL_BASIS", "CONTROLS_BASIS", "EDIT_REACH", "controls_displacement",
           "hold_to_reach", "EDIT_AUS", "EDIT_CONTROL_BASIS", "EMOTION_AUS", "EMOTION_BASIS",
           "REMOVE_AUS", "REMOVE_CONTROL_BASIS", "control_displacement", "edit_displacement", "edit_split",
           "emotion_displacement", "emotion_field", "keep_lid_crease_between", "FEATURES", "IDENTITY_SPREAD",
           "content_features", "emotion_features", "identity_tolerant",
           "population_neutral", "REFERENCE_OPEN_LIPS", "feature_signatures",
           "fit_emotion", "measure_landmarks", "reference_target", "reference_weights", "measure_frame",
           "measure_image", "mouth_opening", "build_content_track"]
