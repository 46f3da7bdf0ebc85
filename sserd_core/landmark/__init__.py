"""The landmark backend (the default editor; CPU, no network weights).

- :mod:`.render` — :class:`LandmarkEditor`: a thin-plate-spline warp from source to edited
  landmarks, resampled with ``cv2.remap`` (or ``grid_sample`` on a GPU) and blended back;
- :mod:`.shading` — the folds a warp cannot make (nasolabial, glabellar, forehead, nose), drawn as a
  luminance gain in the face's own colours;
- :mod:`.occlusion` — what covers the face (a hand, a microphone, hair), where the edit fades out.

The shared pieces it builds on sit beside it in :mod:`sserd_core`: ``face`` (detection,
landmarks, tracking), ``expression`` (the expression model: action units, the emotion fit, the
content/emotion split), ``geometry``, ``blend``, ``emotion``, ``content``, ``media``.
"""

from .render import LandmarkEditor

__all__ = ["LandmarkEditor"]
