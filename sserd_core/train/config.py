"""The training config: TOML (or YAML) → :class:`TrainConfig`, every key checked against its defaults
(configs/*.toml and docs/TRAINING.md list them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import SSERDError
from . import losses as L


def _section(cfg: dict, name: str) -> dict:
    return dict(cfg.get(name) or {})


@dataclass
class TrainConfig:
    """Parsed training config (TOML; see configs/*.toml and docs/TRAINING.md for every key)."""

    data: dict
    model: dict
    train: dict
    loss: dict
    pairs: dict
    path: Optional[Path] = None
    raw: dict = field(default_factory=dict)

    TRAIN_DEFAULTS = dict(stage=1, output_dir="runs/sserd", max_steps=1000, batch_size=8, grad_accum=1,
                          lr=1e-4, lr_d=1e-4, optimizer="ranger", betas=None, betas_d=(0.9, 0.999),
                          weight_decay=0.0, scheduler="constant", warmup_steps=0, mixed_precision="no", seed=0,
                          checkpoint_every=1000, keep_checkpoints=3, log_every=10, sample_every=500, val_every=1000,
                          val_batches=4, contrastive_start=100, train_decoder=False, noise="random",
                          resize="bilinear", num_threads=0, max_grad_norm=0.0)
    LOSS_DEFAULTS = dict(id=L.WEIGHTS["id"], l2=L.WEIGHTS["l2"], perceptual=L.WEIGHTS["perceptual"],
                         adv=L.WEIGHTS["adv"], nce=L.WEIGHTS["nce"], temperature=L.TEMPERATURE,
                         pool_size=L.POOL_SIZE, identity_net=None, perceptual_net=None, disc_channels=64,
                         consist=0.0, identity_crop="official", discriminator="auto",
                         r1=1.0, d_reg_every=16, hub_cache_dir=None)
    PAIRS_DEFAULTS = dict(alpha=15.0, paired_share=0.5, dir=None, max_neutral_per_actor=0, directions="official")
    CHOICES = {("train", "optimizer"): ("ranger", "adam"), ("train", "noise"): ("random", "zero"),
               ("train", "resize"): ("bilinear", "antialias"), ("pairs", "directions"): ("official", "content-orthogonal"),
               ("data", "sampling"): ("frames", "actors"), ("loss", "identity_crop"): ("official", "none"),
               ("loss", "discriminator"): ("auto", "official", "light")}
    DATA_DEFAULTS = dict(cache=None, actors=[], val_actors=[], val_fraction=0.0, max_frames_per_clip=0,
                         max_frames_per_actor=0, sampling="frames")

    @classmethod
    def from_dict(cls, cfg: dict, path: Optional[Path] = None) -> "TrainConfig":
        unknown = set(cfg) - {"data", "model", "train", "loss", "pairs"}
        if unknown:
            raise SSERDError(f"Unknown config section(s) {sorted(unknown)}; use data, model, train, loss, pairs.")
        out = cls(data=dict(cls.DATA_DEFAULTS, **_section(cfg, "data")), model=_section(cfg, "model"),
                  train=dict(cls.TRAIN_DEFAULTS, **_section(cfg, "train")),
                  loss=dict(cls.LOSS_DEFAULTS, **_section(cfg, "loss")),
                  pairs=dict(cls.PAIRS_DEFAULTS, **_section(cfg, "pairs")), path=path, raw=cfg)
        for sec, defaults in (("train", cls.TRAIN_DEFAULTS), ("loss", cls.LOSS_DEFAULTS),
                              ("pairs", cls.PAIRS_DEFAULTS), ("data", cls.DATA_DEFAULTS)):
            bad = set(getattr(out, sec)) - set(defaults)
            if bad:
                raise SSERDError(f"Unknown key(s) in [{sec}]: {', '.join(sorted(bad))}.")
        if out.train["stage"] not in (1, 2):
            raise SSERDError(f"train.stage must be 1 or 2, got {out.train['stage']}.")
        for (sec, key), allowed in cls.CHOICES.items():
            if getattr(out, sec)[key] not in allowed:
                raise SSERDError(f"{sec}.{key} must be one of {', '.join(allowed)}; got {getattr(out, sec)[key]!r}.")
        if not out.data["cache"]:
            raise SSERDError("data.cache is not set: point it at a folder made by `sserd preprocess`.")
        # paths in a config file are relative to the working directory, like the CLI's
        out.data["cache"] = os.path.expanduser(str(out.data["cache"]))
        out.train["output_dir"] = os.path.expanduser(str(out.train["output_dir"]))
        return out

    @classmethod
    def load(cls, path) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise SSERDError(f"Config file {path} does not exist.")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise SSERDError("YAML configs need PyYAML (pip install pyyaml); or use a .toml config.") from exc
            cfg = yaml.safe_load(text) or {}
        else:
            import tomllib

            try:
                cfg = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise SSERDError(f"{path} is not valid TOML: {exc}") from exc
        return cls.from_dict(cfg, path)
