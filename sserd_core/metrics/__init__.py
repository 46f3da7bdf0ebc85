"""Evaluation metrics: the paper's (with user-given networks) and clearly named offline proxies.

=====================  ====  ===========================================================
name                   best  what it measures
=====================  ====  ===========================================================
FAD                    ↓     paper: Fréchet distance of ArcFace embeddings, real vs generated
LSE-D                  ↓     paper: SyncNet AV distance at the best offset within ±10 frames
CSIM                   ↑     paper: cosine similarity of emotion-net features, generated vs reference
ID-FD (dlib)           ↓     proxy for FAD: same Fréchet distance on dlib 128-d embeddings
ID-dist (dlib)         ↓     mean dlib-embedding distance of each generated frame to its source frame
M-LMD                  ↓     proxy for LSE-D: mouth-landmark distance to the source (IOD units)
M-Open corr            ↑     proxy for LSE-D: correlation of mouth opening with the source over time
EmoCos (landmark)      ↑     proxy for CSIM: cosine of landmark emotion vectors, generated vs reference
EmoAcc (landmark)      ↑     fraction of generated frames whose strongest landmark emotion is the target
=====================  ====  ===========================================================

A proxy is never printed under a paper metric's name; the paper's published numbers are
only shown next to the paper metrics (see :mod:`sserd_core.metrics.paper`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .emotion import EMO_ACC, EMO_COS, emotion_cosine, target_accuracy
from .frechet import frechet_distance, frechet_distance_features
from .identity import ID_DIST, ID_FD, id_distance, id_fd
from .mouth import mouth_landmark_distance, opening_correlation

M_LMD = "M-LMD"
M_OPEN = "M-Open corr"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    lower_is_better: bool
    pooled: bool  # a set statistic over all frames of a table cell (Fréchet) rather than a mean of per-clip values
    paper: bool  # one of the paper's own metrics (needs the user's network weights)
    description: str

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


METRICS = {m.name: m for m in [
    MetricInfo("FAD", True, True, True, "Fréchet distance of ArcFace embeddings, real vs generated frames"),
    MetricInfo("LSE-D", True, False, True, "SyncNet audio-visual distance at the best offset within ±10 frames"),
    MetricInfo("CSIM", False, False, True, "cosine similarity of emotion-network features, generated vs reference"),
    MetricInfo(ID_FD, True, True, False, "Fréchet distance of dlib face embeddings, real vs generated frames"),
    MetricInfo(ID_DIST, True, False, False, "mean dlib-embedding distance of each generated frame to its source frame"),
    MetricInfo(M_LMD, True, False, False, "mean mouth-landmark distance to the source frame (inter-ocular units)"),
    MetricInfo(M_OPEN, False, False, False, "correlation over time of the mouth opening with the source's"),
    MetricInfo(EMO_COS, False, False, False, "cosine of landmark emotion vectors, generated vs reference face"),
    MetricInfo(EMO_ACC, False, False, False, "fraction of frames whose strongest landmark emotion is the target"),
]}
PROXY_ORDER = (ID_FD, ID_DIST, M_LMD, M_OPEN, EMO_COS, EMO_ACC)
PAPER_ORDER = ("FAD", "LSE-D", "CSIM")

__all__ = ["METRICS", "MetricInfo", "PROXY_ORDER", "PAPER_ORDER", "ID_FD", "ID_DIST", "M_LMD", "M_OPEN", "EMO_COS",
           "EMO_ACC", "frechet_distance", "frechet_distance_features", "id_fd", "id_distance",
           "mouth_landmark_distance", "opening_correlation", "emotion_cosine", "target_accuracy"]
