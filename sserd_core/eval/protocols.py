"""The paper's two test protocols, as lists of evaluation items.

Following the official test scripts (``scripts/test_intra.py`` / ``test_cross.py`` of
ZH-Xu410/SSERD), every item edits a *source* clip of actor A towards emotion E given a
*reference* face showing E:

- **intra-ID**: the reference is A's own clip with emotion E (same person).
- **cross-ID**: the reference is another actor's clip with emotion E; actors are paired
  in a fixed cycle (A → the next actor in sorted order that has emotion E), as the
  official script's ``crossID_map`` does.

The source is one of A's neutral clips (so an edit has something to change), and the
*real* set — what the generated frames' identity statistics are compared with (FAD /
ID-FD) — is A's own clip with emotion E (the sentence-matched one when the dataset has
it). For the neutral column the reference is another neutral clip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError
from .datasets import Clip

PROTOCOLS = ("intra", "cross")


@dataclass(frozen=True)
class EvalItem:
    """One edit to make and measure."""

    id: str
    protocol: str
    actor: str
    emotion: str
    source: Clip
    reference: Clip
    real: Optional[Clip]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EvalItem":
        return cls(d["id"], d["protocol"], d["actor"], d["emotion"], Clip(**d["source"]), Clip(**d["reference"]),
                   Clip(**d["real"]) if d.get("real") else None)


def parse_protocols(text: str) -> list[str]:
    out = []
    for p in str(text).replace(" ", "").split(","):
        key = p.lower().replace("-id", "").replace("_id", "")
        if key == "both":
            out += list(PROTOCOLS)
        elif key in PROTOCOLS:
            out.append(key)
        elif key:
            raise SSERDError(f"Unknown protocol '{p}'; choose intra, cross or both.")
    return list(dict.fromkeys(out)) or list(PROTOCOLS)


def parse_emotions(text: Optional[str]) -> list[str]:
    if not text:
        return list(EMOTIONS)
    return list(dict.fromkeys(canonical_label(e) for e in str(text).split(",") if e.strip()))


def build_items(clips: Sequence[Clip], protocols: Sequence[str] = PROTOCOLS, emotions: Sequence[str] = EMOTIONS,
                max_per_cell: Optional[int] = None) -> list[EvalItem]:
    """All evaluation items, ordered protocol → emotion → actor → sentence."""
    by = defaultdict(list)
    for c in sorted(clips, key=lambda c: (c.actor, c.emotion, c.sentence)):
        by[(c.actor, c.emotion)].append(c)
    actors = sorted({c.actor for c in clips})
    items = []
    for protocol in protocols:
        if protocol == "cross" and len(actors) < 2:
            raise SSERDError("The cross-ID protocol needs clips of at least 2 actors.")
        for emotion in emotions:
            for ai, actor in enumerate(actors):
                sources = by[(actor, "neutral")][:max_per_cell] if max_per_cell else by[(actor, "neutral")]
                own = by[(actor, emotion)]
                if protocol == "intra":
                    refs = own
                else:
                    refs = next((by[(b, emotion)] for b in actors[ai + 1:] + actors[:ai] if by[(b, emotion)]), [])
                if not sources or not refs:
                    continue
                for i, src in enumerate(sources):
                    ref = refs[i % len(refs)]
                    if emotion == "neutral" and protocol == "intra" and len(refs) > 1 and ref == src:
                        ref = refs[(i + 1) % len(refs)]
                    real = next((c for c in own if c.sentence == src.sentence), own[i % len(own)] if own else None)
                    items.append(EvalItem(f"{protocol}_{actor}_{emotion}_{src.sentence}", protocol, actor, emotion,
                                          src, ref, real))
    return items
