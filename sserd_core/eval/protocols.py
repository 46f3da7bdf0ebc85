"""The paper's two test protocols, as lists of evaluation items.

The defaults follow the official test scripts of ZH-Xu410/SSERD (``scripts/test_intra.py`` /
``scripts/test_cross.py``):

- **intra** (intra-ID, official): every test clip of actor A with emotion E is driven by *itself*:
  source = reference = that clip (``net(S, S, None)``), and the real set is the clip itself. It
  measures how well a method reproduces a face's own emotion while keeping its identity and mouth.
- **cross** (cross-ID, official): a neutral clip of A is driven by a clip of emotion E of A's fixed
  partner (:data:`OFFICIAL_CROSS_MAP`: M003→W015, M009→M003, W029→M009, M012→W029, M030→M012,
  W015→M030 — each of the six test actors to the one before it in the official list); the real
  set is A's own clip with E (the sentence-matched one where the dataset has it). For actors outside
  the official six the same rule is applied to the sorted actor list: the partner is the previous
  actor (cyclic) that has E.

Two earlier project protocols stay available under their own names (never as the paper's):

- **intra-neutral**: a neutral clip of A edited with A's own clip of E as the reference.
- **cross-next**: like cross, but the partner is the *next* actor in sorted order.

The official scripts pair frames, not clips: a source frame ``i`` of the concatenated clips is
driven by reference frame ``int(i · n_ref / n_src)``. A video method here is given a reference clip
and pairs frames by time; item ``k`` of a cell takes reference clip ``k mod n_ref``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError
from .datasets import Clip

#: the official protocols first (what ``both`` means), then the project's earlier ones
PROTOCOLS = ("intra", "cross", "intra-neutral", "cross-next")
OFFICIAL = ("intra", "cross")
#: the official test actors, in the official scripts' order
OFFICIAL_TEST_ACTORS = ("M003", "M009", "W029", "M012", "M030", "W015")
#: ``crossID_map`` of the official ``scripts/test_cross.py``: source actor → driving actor
OFFICIAL_CROSS_MAP = {"M003": "W015", "M009": "M003", "W029": "M009", "M012": "W029", "M030": "M012",
                      "W015": "M030"}


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
    """``intra``, ``cross``, ``intra-neutral``, ``cross-next``, ``both`` (= the two official ones) or ``all``."""
    out = []
    for p in str(text).replace(" ", "").split(","):
        key = p.lower().replace("_", "-")
        key = {"intra-id": "intra", "cross-id": "cross"}.get(key, key)
        if key == "both":
            out += list(OFFICIAL)
        elif key == "all":
            out += list(PROTOCOLS)
        elif key in PROTOCOLS:
            out.append(key)
        elif key:
            raise SSERDError(f"Unknown protocol '{p}'; choose intra, cross, both (the official two), "
                             "intra-neutral, cross-next or all.")
    return list(dict.fromkeys(out)) or list(OFFICIAL)


def parse_emotions(text: Optional[str]) -> list[str]:
    if not text:
        return list(EMOTIONS)
    return list(dict.fromkeys(canonical_label(e) for e in str(text).split(",") if e.strip()))


def cross_partner(actor: str, actors: Sequence[str], has_emotion=lambda a: True, official: bool = True) -> Optional[str]:
    """The actor whose clips drive ``actor``'s in the cross-ID protocol.

    ``official``: :data:`OFFICIAL_CROSS_MAP` when both actors are present (and the partner has the emotion),
    else the previous actor in sorted order (cyclic) that has it — the official map's rule. Not official
    (``cross-next``): the next actor in sorted order that has it."""
    actors = sorted(actors)
    if official and OFFICIAL_CROSS_MAP.get(actor) in actors and has_emotion(OFFICIAL_CROSS_MAP[actor]):
        return OFFICIAL_CROSS_MAP[actor]
    i = actors.index(actor)
    order = actors[:i][::-1] + actors[i + 1:][::-1] if official else actors[i + 1:] + actors[:i]
    return next((b for b in order if has_emotion(b)), None)


def build_items(clips: Sequence[Clip], protocols: Sequence[str] = OFFICIAL, emotions: Sequence[str] = EMOTIONS,
                max_per_cell: Optional[int] = None) -> list[EvalItem]:
    """All evaluation items, ordered protocol → emotion → actor → sentence."""
    by = defaultdict(list)
    for c in sorted(clips, key=lambda c: (c.actor, c.emotion, c.sentence)):
        by[(c.actor, c.emotion)].append(c)
    actors = sorted({c.actor for c in clips})
    items = []
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise SSERDError(f"Unknown protocol '{protocol}'.")
        if protocol.startswith("cross") and len(actors) < 2:
            raise SSERDError("The cross-ID protocol needs clips of at least 2 actors.")
        for emotion in emotions:
            for actor in actors:
                own = by[(actor, emotion)]
                if protocol == "intra":  # official: each clip drives itself
                    for src in own[:max_per_cell] if max_per_cell else own:
                        items.append(EvalItem(f"intra_{actor}_{emotion}_{src.sentence}", protocol, actor, emotion,
                                              src, src, src))
                    continue
                sources = by[(actor, "neutral")][:max_per_cell] if max_per_cell else by[(actor, "neutral")]
                if protocol == "intra-neutral":
                    refs = own
                else:
                    partner = cross_partner(actor, actors, lambda b: bool(by[(b, emotion)]), protocol == "cross")
                    refs = by[(partner, emotion)] if partner else []
                if not sources or not refs:
                    continue
                for i, src in enumerate(sources):
                    ref = refs[i % len(refs)]
                    if emotion == "neutral" and protocol == "intra-neutral" and len(refs) > 1 and ref == src:
                        ref = refs[(i + 1) % len(refs)]
                    real = next((c for c in own if c.sentence == src.sentence), own[i % len(own)] if own else None)
                    items.append(EvalItem(f"{protocol}_{actor}_{emotion}_{src.sentence}", protocol, actor, emotion,
                                          src, ref, real))
    return items
