"""An edited frame told as what changed: the source frame and the box of new pixels over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Patch:
    """An edited frame: ``frame`` (the source, ``uint8 [H, W, 3]``) with ``pixels`` (``uint8 [h, w, 3]``)
    in place of the box whose top-left corner is column ``x0``, row ``y0``; no ``pixels``: unchanged.

    Outside the box the edited frame is ``frame``. An editor that changes a face hands this on instead
    of a whole new frame: the encoder then converts and writes back only the box (see
    :class:`sserd_core.media.VideoWriter`), and no one copies the rest of the frame unless a whole
    frame is asked for (:meth:`apply`)."""

    frame: np.ndarray
    pixels: Optional[np.ndarray] = None
    x0: int = 0
    y0: int = 0

    def __post_init__(self):
        if self.pixels is not None:
            H, W = self.frame.shape[:2]
            h, w = self.pixels.shape[:2]
            if (self.pixels.shape[2:] != self.frame.shape[2:] or self.x0 < 0 or self.y0 < 0
                    or self.x0 + w > W or self.y0 + h > H):
                raise ValueError(f"a patch of shape {self.pixels.shape} at ({self.x0}, {self.y0}) does not fit "
                                 f"a frame of shape {self.frame.shape}")

    @classmethod
    def whole(cls, frame: np.ndarray, edited: np.ndarray) -> "Patch":
        """A whole edited frame as a patch (the box is the frame; ``edited is frame``: unchanged)."""
        return cls(frame) if edited is frame else cls(frame, edited)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the new pixels (empty when unchanged)."""
        if self.pixels is None:
            return (0, 0, 0, 0)
        return (self.x0, self.y0, self.x0 + self.pixels.shape[1], self.y0 + self.pixels.shape[0])

    def apply(self) -> np.ndarray:
        """The edited frame as a whole: ``frame`` itself when unchanged, a new array otherwise."""
        if self.pixels is None:
            return self.frame
        if self.pixels.shape == self.frame.shape:
            return self.pixels
        x0, y0, x1, y1 = self.box
        out = self.frame.copy()
        out[y0:y1, x0:x1] = self.pixels
        return out

    def then(self, later: "Patch") -> "Patch":
        """This edit followed by ``later`` (a patch over this one's edited frame, :meth:`apply`), as one patch
        over this one's source frame whose box is the union of both boxes (two faces of one frame edited in
        turn are told to the encoder as one edit)."""
        if later.pixels is None:
            return self
        if self.pixels is None:
            return later if later.frame is self.frame else Patch(self.frame, later.apply())
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = self.box, later.box
        x0, y0, x1, y1 = min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1)
        whole = later.apply()
        return Patch(self.frame, np.ascontiguousarray(whole[y0:y1, x0:x1]), x0, y0)
