"""The official SSERD checkpoint layout, as data (``sserd_official_manifest.json``).

The manifest lists every tensor of an official SSERD checkpoint (``state_dict`` keys of
the official ``pSp`` module at ``output_size=1024``, plus ``latent_avg``) with its shape
written in *symbols* — ``S`` (style dim), ``E1…E4`` (IR-SE stage widths), ``G4…G1024``
(generator channels per resolution), ``F``, ``I``, ``M`` (emotion module widths) — so the
same layout can be evaluated at the official size or at a reduced size (tests).
It was derived by reading the official code (see the file's ``source``); the tests check
that :class:`~sserd_core.models.sserd.SSERDNet` reproduces it exactly.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Union

import torch

MANIFEST_PATH = Path(__file__).with_name("sserd_official_manifest.json")
_TERM = re.compile(r"^[A-Za-z]+[0-9]*$|^[0-9]+$")


@lru_cache(maxsize=1)
def load_manifest() -> dict:
    """The parsed manifest (cached): ``entries`` [{key, shape, kind, value?, when?}], ``symbols``, ``constants``…"""
    return json.loads(MANIFEST_PATH.read_text())


def official_symbols() -> dict[str, int]:
    """Symbol values of the official model (``S=512, E1=64, …, G1024=32, F=1024, I=512, M=1``)."""
    return {k: int(v["official"]) for k, v in load_manifest()["symbols"].items()}


def eval_dim(expr: Union[int, str], symbols: Mapping[str, int]) -> int:
    """Evaluate one dimension: an int, a symbol, or ``a*b`` / ``a+b`` / ``a/b`` of those (left to right)."""
    if isinstance(expr, int):
        return expr
    tokens = re.split(r"([*+/])", expr.replace(" ", ""))
    def term(t: str) -> int:
        if not _TERM.match(t):
            raise ValueError(f"bad manifest term {t!r} in {expr!r}")
        return int(t) if t.isdigit() else int(symbols[t])
    value = term(tokens[0])
    for op, t in zip(tokens[1::2], tokens[2::2]):
        v = term(t)
        value = value * v if op == "*" else value + v if op == "+" else max(1, value // v)
    return value


def constant(name: str) -> torch.Tensor:
    """A fixed filter buffer named in the manifest (``fir_up`` ``[4, 4]``, ``blur3`` ``[1, 1, 3, 3]``)."""
    return torch.tensor(load_manifest()["constants"][name], dtype=torch.float32)


def official_layout(symbols: Mapping[str, int] | None = None, use_skip_torgb: bool = False) -> dict[str, dict]:
    """``{official key: {"shape": tuple, "kind": str, "value": name?}}`` evaluated at ``symbols``.

    Includes ``latent_avg``. ``use_skip_torgb`` adds the optional ``fusion_skip`` tensors.
    """
    symbols = dict(official_symbols(), **(symbols or {}))
    man = load_manifest()
    out = {}
    for e in list(man["entries"]) + list(man["extra"]):
        if e.get("when") == "use_skip_torgb" and not use_skip_torgb:
            continue
        out[e["key"]] = {"shape": tuple(eval_dim(d, symbols) for d in e["shape"]), "kind": e["kind"],
                         "value": e.get("value")}
    return out
