"""The landmark backend (the default editor; CPU, no network weights).

- :mod:`.expression` — the expression model: action-unit displacement tables in a canonical face
  space, the per-emotion AU recipes (``EMOTION_AUS`` to measure, ``EDIT_AUS`` to edit), the emotion
  fit that measures which emotion a face shows, and the content/emotion split of the 68 landmarks;
- :mod:`.render` — :class:`LandmarkEditor`: a thin-plate-spline warp from source to edited
  landmarks, resampled with ``cv2.remap`` (or ``grid_sample`` on a GPU) and blended back;
- :mod:`.shading` — the folds a warp cannot make (nasolabial, glabellar, forehead, nose), drawn as a
  luminance gain in the face's own colours;
- :mod:`.occlusion` — what covers the face (a hand, a microphone, hair), where the edit fades out.

The shared pieces it builds on sit beside it in :mod:`sserd_core`: ``face`` (detection,
landmarks, tracking), ``geometry``, ``blend``, ``emotion``, ``content``, ``media``.
"""

from .render import LandmarkEditor

__all__ = ["LandmarkEditor"]
