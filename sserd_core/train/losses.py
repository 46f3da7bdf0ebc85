"""SSERD's training losses.

- :class:`LatentPool` + :func:`info_nce` — the self-supervised emotion loss: for a code ``z``
  of actor *a* showing emotion *e*, one positive drawn from the pool of (*a*, *e*) and one
  negative from the pool of (*a*, *e'*) for every other emotion *e'* of that actor;
  similarity = cosine per style layer averaged over layers; cross-entropy of
  ``sim / τ`` (τ = 0.1) with the positive as the target. The pool keeps the last ``size``
  (8) codes per actor and emotion, FIFO, detached, as in the official implementation.
- :class:`ReconstructionLoss` — identity (1 − cosine of identity-network embeddings of the official crop,
  :func:`identity_crop`, 0.2),
  L2 (1.0), perceptual (0.8); the adversarial term (non-saturating, 0.1, :func:`generator_adv_loss`)
  against :class:`Discriminator` is added by the trainer.

Loss networks with pretrained weights are **never downloaded silently**: give a local file or a
Hugging Face repo id (already in the cache, or downloadable when the Hub is reachable) of a
TorchScript module:

- identity network: ``images [B,3,112,112] in −1…1 → embeddings [B,D]`` (e.g. ArcFace IR-SE-50 traced); it is
  given the official crop of each face (:func:`identity_crop`), or the whole face with ``loss.identity_crop = "none"``;
- perceptual network: ``(x, y) → distances [B]`` (e.g. LPIPS-VGG traced).

See docs/TRAINING.md for how to export them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SSERDError

TEMPERATURE = 0.1
POOL_SIZE = 8
WEIGHTS = {"id": 0.2, "l2": 1.0, "perceptual": 0.8, "adv": 0.1, "nce": 0.1}


# ---------------------------------------------------------------- InfoNCE + memory pool
class LatentPool:
    """Per-actor, per-emotion FIFO of detached codes (``size`` each), kept on the CPU.

    ``state_dict()`` / ``load_state_dict()`` make it part of a training checkpoint
    (``accelerator.register_for_checkpointing``).
    """

    def __init__(self, size: int = POOL_SIZE):
        self.size = int(size)
        self.pool: dict[str, dict[int, list[torch.Tensor]]] = {}

    def add(self, codes: torch.Tensor, actors: Sequence[str], emotions: Sequence[int]) -> None:
        codes = codes.detach().float().cpu()
        for z, a, e in zip(codes, actors, emotions):
            slot = self.pool.setdefault(str(a), {}).setdefault(int(e), [])
            slot.append(z.clone())
            if len(slot) > self.size:
                slot.pop(0)

    def count(self, actor: str, emotion: int) -> int:
        return len(self.pool.get(str(actor), {}).get(int(emotion), []))

    def query(self, actor: str, emotion: int, generator: Optional[torch.Generator] = None) -> Optional[torch.Tensor]:
        """``[1 + n_neg, ...]``: a random positive of (actor, emotion), then one random code of each other
        emotion of that actor; ``None`` if the positive slot or every negative slot is empty."""
        slots = self.pool.get(str(actor), {})
        if not slots.get(int(emotion)):
            return None
        negatives = [e for e in sorted(slots) if e != int(emotion) and slots[e]]
        if not negatives:
            return None

        def pick(e):
            items = slots[e]
            return items[int(torch.randint(len(items), (1,), generator=generator))]

        return torch.stack([pick(int(emotion))] + [pick(e) for e in negatives])

    def total(self) -> int:
        """Number of codes held."""
        return sum(len(v) for d in self.pool.values() for v in d.values())

    def save(self, path) -> None:
        """Write the pool as a latent-pool file (:func:`sserd_core.models.convert.write_latent_pool`), e.g. beside
        a trained model, so the next stage continues it."""
        from ..emotion import EMOTIONS
        from ..models.convert import write_latent_pool

        write_latent_pool({a: {EMOTIONS[e]: torch.stack(v) for e, v in d.items() if v} for a, d in self.pool.items()},
                          path, self.size)

    @classmethod
    def load(cls, path) -> "LatentPool":
        """Read a latent-pool file (written by :meth:`save` or by ``sserd convert`` from a stage-1 checkpoint)."""
        from ..emotion import EMOTIONS
        from ..models.convert import read_latent_pool

        codes, size = read_latent_pool(path)
        out = cls(size)
        for actor, slots in codes.items():
            for emotion, z in slots.items():
                out.add(z, [actor] * len(z), [EMOTIONS.index(emotion)] * len(z))
        return out

    def state_dict(self) -> dict:
        return {"size": self.size,
                "pool": {a: {int(e): torch.stack(v) for e, v in d.items() if v} for a, d in self.pool.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.pool = {a: {int(e): list(v.unbind(0)) for e, v in d.items()} for a, d in state["pool"].items()}


def code_similarity(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of ``query`` ``[L, d]`` (or ``[d]``) to each of ``keys`` ``[K, L, d]``, averaged over ``L`` → ``[K]``."""
    if query.ndim == 1:
        query, keys = query[None], keys[:, None]
    return F.cosine_similarity(query[None].expand_as(keys), keys, dim=-1, eps=1e-6).mean(-1)


def info_nce(codes: torch.Tensor, actors: Sequence[str], emotions: Sequence[int], pool: LatentPool,
             temperature: float = TEMPERATURE, generator: Optional[torch.Generator] = None) -> Optional[torch.Tensor]:
    """Mean InfoNCE of ``codes`` ``[B, L, d]`` against ``pool`` (see the module doc); ``None`` when no code
    has both a positive and a negative in the pool yet."""
    terms = []
    for z, a, e in zip(codes, actors, emotions):
        keys = pool.query(a, int(e), generator)
        if keys is None:
            continue
        sim = code_similarity(z, keys.to(z.device, z.dtype)) / temperature
        terms.append(F.cross_entropy(sim[None].float(), torch.zeros(1, dtype=torch.long, device=z.device)))
    return torch.stack(terms).mean() if terms else None


# ---------------------------------------------------------------- loss networks
def load_loss_network(spec: Union[str, os.PathLike, nn.Module, None], what: str, *, cache_dir=None,
                      filename: str = "model.pt") -> Optional[nn.Module]:
    """A frozen TorchScript loss network from a file, a folder holding ``filename``, or a Hub repo id.

    ``what`` names the network in errors (e.g. ``"identity network (training.identity_net)"``).
    ``None`` → ``None``. An ``nn.Module`` is used as given (tests pass tiny random stand-ins this way).
    """
    if spec is None or spec == "":
        return None
    if isinstance(spec, nn.Module):
        net = spec
    else:
        path = Path(os.path.expanduser(str(spec)))
        if path.is_dir():
            path = path / filename
        if not path.is_file():
            if Path(str(spec)).suffix or str(spec).startswith((".", "/", "~")) or str(spec).count("/") != 1:
                raise SSERDError(f"The {what} file {path} does not exist; give a TorchScript file, a folder with "
                                 f"{filename}, or a Hugging Face repo id.")
            path = _hub_file(str(spec), filename, what, cache_dir)
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - any load failure is a user-file problem
            raise SSERDError(f"Could not load the {what} from {path} as TorchScript ({exc.__class__.__name__}); "
                             "export it with torch.jit.trace / torch.jit.script (docs/TRAINING.md).") from exc
        net = _Unoptimized(net)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class _Unoptimized(nn.Module):
    """Runs a TorchScript module without the JIT's profile-guided re-optimisation, which swaps in a fused graph
    after a few calls and so changes the last bits of the result depending on how many calls a process has
    made — a resumed run would then not reproduce the uninterrupted one."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, *args):
        with torch.jit.optimized_execution(False):
            return self.net(*args)


def _hub_file(repo_id: str, filename: str, what: str, cache_dir) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir))
    except Exception as exc:  # noqa: BLE001
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "it is not in the Hugging Face cache and HF_HUB_OFFLINE is set" if offline else exc.__class__.__name__
        raise SSERDError(f"The {what} '{repo_id}/{filename}' is missing: {why}. Give a local TorchScript file "
                         "or a reachable Hub repo id.") from exc


class Discriminator(nn.Module):
    """Residual conv discriminator (StyleGAN2-like layout, trained from scratch): ``[B,3,S,S]`` → logits ``[B]``."""

    def __init__(self, size: int = 256, channels: int = 64, max_channels: int = 512):
        super().__init__()
        layers = [nn.Conv2d(3, channels, 1), nn.LeakyReLU(0.2)]
        c, s = channels, size
        while s > 4:
            c2 = min(c * 2, max_channels)
            layers.append(_DBlock(c, c2))
            c, s = c2, s // 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * 16, c), nn.LeakyReLU(0.2), nn.Linear(c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.contiguous())).squeeze(1)


class _DBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(cin, cout, 3, padding=1, stride=2), nn.LeakyReLU(0.2))
        # The skip is a 1x1 stride-2 convolution, computed as a stride-1 1x1 convolution of the
        # subsampled input (identical output, same weights and state-dict keys). torch's bundled
        # oneDNN (seen with torch 2.13/2.14 CPU builds) corrupts the heap in the weight gradient of a
        # 1x1 stride-2 convolution on channels-last inputs with < 16 channels on AVX-512 CPUs
        # ("free(): invalid next size", SIGABRT/segfault); see docs/TRAINING.md.
        self.skip = nn.Conv2d(cin, cout, 1, stride=1, bias=False)

    def forward(self, x):
        x = x.contiguous()
        skip = self.skip(x[:, :, ::2, ::2].contiguous())
        return (self.conv(x) + skip) / 2 ** 0.5


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


#: the official ID loss's crop (``criteria/id_loss.py``: ``x[:, :, 35:223, 32:220]``, then pooled to 112 px) in a
#: 256 px aligned face: rows 35–222, columns 32–219 (188 px square, the face without the forehead and chin)
ID_CROP_256 = (35, 223, 32, 220)
ID_SIZE = 112


def identity_crop(x: torch.Tensor) -> torch.Tensor:
    """The official identity-loss input: the ``[35:223, 32:220]`` box of a 256 px face (scaled to the image's
    size), adaptive-average-pooled to 112×112 — what the IR-SE-50 ArcFace of pSp / SSERD is fed."""
    s = x.shape[-1] / 256.0
    t, b, l, r = (int(round(v * s)) for v in ID_CROP_256)
    return F.adaptive_avg_pool2d(x[:, :, t:b, l:r], (ID_SIZE, ID_SIZE))


class ReconstructionLoss(nn.Module):
    """Weighted identity / L2 / perceptual terms between generated and target faces (the adversarial term
    is added by the trainer, over all generated images at once, as the official code does).

    ``forward(generated, target, weight=None)`` returns ``(total, parts)``; ``parts`` = {name: weighted term}
    (a term is absent when its network is not given or its weight is 0). ``weight`` ``[B]`` weights the L2 /
    perceptual terms per sample (0 = no pixel target, e.g. the unpaired half of stage 2; the mean is over the
    weighted samples); identity holds for every sample. Images are ``[B,3,S,S]`` in −1…1.
    """

    def __init__(self, identity_net: Optional[nn.Module] = None, perceptual_net: Optional[nn.Module] = None,
                 weights: Optional[dict] = None, identity_crop: str = "official"):
        super().__init__()
        if identity_crop not in ("official", "none"):
            raise SSERDError(f"loss.identity_crop must be official or none, got {identity_crop!r}.")
        self.identity_crop = identity_crop
        self.weights = dict(WEIGHTS, **(weights or {}))
        self.identity_net = identity_net
        self.perceptual_net = perceptual_net

    def forward(self, generated, target, weight=None):
        w = self.weights
        generated, target = generated.float(), target.float()  # loss networks are fp32 (mixed-precision outputs)
        b = generated.shape[0]
        sw = torch.ones(b, device=generated.device) if weight is None else weight.to(generated.device).float()
        norm = sw.sum().clamp_min(1e-6)
        parts = {}
        if w["l2"] > 0 and sw.sum() > 0:
            per = (generated.float() - target.float()).pow(2).flatten(1).mean(1)
            parts["l2"] = w["l2"] * (per * sw).sum() / norm
        if w["perceptual"] > 0 and self.perceptual_net is not None and sw.sum() > 0:
            per = self.perceptual_net(generated, target).reshape(b).float()
            parts["perceptual"] = w["perceptual"] * (per * sw).sum() / norm
        if w["id"] > 0 and self.identity_net is not None:  # identity must hold for every sample
            crop = identity_crop if self.identity_crop == "official" else (lambda x: x)
            e_g = F.normalize(self.identity_net(crop(generated)).float(), dim=-1)
            e_t = F.normalize(self.identity_net(crop(target)).float(), dim=-1)
            parts["id"] = w["id"] * (1 - (e_g * e_t).sum(-1)).mean()
        total = sum(parts.values()) if parts else generated.sum() * 0
        return total, parts


# ---------------------------------------------------------------- the official StyleGAN2 discriminator


# the official discriminator lives with the networks (sserd convert keeps it); training imports it here
from ..models.discriminator import OfficialDiscriminator  # noqa: E402,F401
