"""The SSERD training loop (stage 1 and stage 2), on ``accelerate`` — the official recipes by default.

One command for one CPU, one GPU, several GPUs or several nodes::

    sserd train --config configs/mead_stage1.toml                      # one device
    accelerate launch --num_processes 8 -m sserd_core.cli train --config configs/mead_stage1.toml

**Stage 1** (official ``coach_finetune_stage1.py``: the ``psp_no_attn`` model, no emotion module; the
optimiser holds the encoder only, its fusion layers included): a source frame ``x`` (actor *a*, emotion *e*)
and a driving frame ``y`` of the same actor with the *same* emotion. ``recon = G(w_x, f_x)``,
``edit = G(w_x + (w_y − w_x), f_x)`` (``f_x`` = ``x``'s encoder features); reconstruction losses
``(recon, x)`` + ``(edit, y)``, the adversarial term on both, InfoNCE on the W+ codes ``w_x`` over the
latent pool (so the latent space separates emotions within an actor — what the paired-data SVMs rely on).
The discriminator sees ``x`` as real and ``recon`` as fake.

**Pseudo-pairs** (start of stage 2, :mod:`.paired`): per-actor SVM directions, every neutral frame's code
edited by ``α·direction`` → the same frame (same mouth) under every emotion; the neutral side is the real frame.

**Stage 2** (official ``coach_finetune_stage2.py``, hybrid): the encoder is frozen, BatchNorm included
(eval mode); its fusion layers, the cross-attention and the transformer train. Each sample is pseudo-paired
with probability ``pairs.paired_share`` (0.5), else unpaired. Source ``x`` (a pair image of emotion *s*, or a
real frame), target emotion *t*, ``D1`` = a real frame of the same actor with *t*, ``D2`` = one of another
actor with *t*; ``T`` = the pair image of *t* (paired) or ``D1`` (unpaired). ``SS = G(w + E(w, r_x))``,
``SD1``, ``SD2``; identity ``(SS, x), (SD1, T), (SD2, T)`` on every sample; L2 and perceptual
``(SD1, T) + (SD2, T)`` on paired samples and ``0.5·(SS, x)`` when the batch has paired samples; adversarial
on ``SS, SD1, SD2``; InfoNCE on the emotion codes ``E(w, r_D1)``, ``E(w, r_D2)`` (actor *a*, emotion *t*).
The discriminator sees ``D1`` twice as real and ``SD1``, ``SD2`` as fake. The latent pool of the model
folder stage 2 starts from (written by stage 1 or converted from an official stage-1 checkpoint) is
carried over.

Both stages: the discriminator is updated first (non-saturating loss scaled by the adversarial weight,
lazy R1 every ``loss.d_reg_every`` steps), then the generator loss uses the updated discriminator;
decoder noise is random (``train.noise``); the 1024 px decoder output is resized bilinearly to the crop
size (``train.resize``); the optimiser is Ranger (``train.optimizer``). docs/TRAINING.md lists every step
next to the official code.

Checkpoints (``accelerator.save_state``: models, optimizers, schedulers, the latent pool, the step
counter and every process's RNG states) go to ``OUTPUT/checkpoints/step_NNNNNNN``; a run restarted
with the same config resumes from the newest complete one. Batches are drawn from a generator seeded
by (seed, step, process), so a resumed run sees exactly the batches the uninterrupted run would have.
Logs: ``OUTPUT/train_log.csv`` (every loss term), ``OUTPUT/val_log.csv``, ``OUTPUT/samples/step_N.png``.

This module is the loop (model wrapper, batches, losses, steps); the config is :mod:`.config`, and
checkpoints, the model folder and the logs are :mod:`.records`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SSERDError
from . import losses as L
from .config import TrainConfig
from .data import FrameCache, read_index, split_actors
# checkpoints, the model folder and the logs live in .records; importable from here as before
from .records import CHECKPOINT_DONE, LOG_TERMS, RunRecords, latest_checkpoint  # noqa: F401


# ---------------------------------------------------------------- model wrapper (one forward = one DDP pass)
class GeneratorStep(nn.Module):
    """Wraps :class:`SSERDNet` so a whole generator pass is one ``forward`` (needed for DDP gradient sync).

    ``noise``: decoder noise in training (``"random"``: fresh noise per call, as the official training;
    ``"zero"``). ``resize``: how the decoded face is brought to the crop size (``"bilinear"`` as the official
    ``F.interpolate(..., mode='bilinear')``; ``"antialias"`` adds an anti-aliasing filter).
    ``freeze_encoder`` (stage 2): the encoder stays in eval mode (BatchNorm statistics frozen) in
    :meth:`train`, except its fusion layers — the official ``pSp.fix_encoder``.
    """

    def __init__(self, net, noise: str = "random", resize: str = "bilinear", freeze_encoder: bool = False,
                 consist: bool = False):
        super().__init__()
        self.net = net
        self.noise, self.resize, self.freeze_encoder = noise, resize, freeze_encoder
        self.consist = consist  # stage 2: also the emotion codes read back from the generated faces

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoder:
            self.net.encoder.eval()
            if self.net.encoder.fusion is not None:
                self.net.encoder.fusion.train(mode)
        return self

    def forward(self, stage: int, x: torch.Tensor, d1: torch.Tensor, d2: Optional[torch.Tensor] = None) -> dict:
        net = self.net
        size = x.shape[-1]
        raw, w, first, skips = net.encode(x)
        out = {"codes": w}

        def dec(edit):
            img = net.decode(w, first, skips, editing_w=edit, noise_mode=self.noise)
            if img.shape[-1] != size:
                img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False,
                                    antialias=self.resize == "antialias")
            return img

        if stage == 1:  # psp_no_attn: the driving frame's codes replace the source's, through its features
            w_y = net.encode_reference(d1) + net.latent_avg.to(raw.dtype)
            out["recon"] = dec(None)
            out["edit1"] = dec(w_y - w)
        else:
            refs = torch.cat([raw, net.encode_reference(torch.cat([d1, d2]))])
            emo = net.emotion(w.repeat(3, 1, 1), refs)
            out["emo_s"], out["emo1"], out["emo2"] = emo.chunk(3)
            out["recon"] = dec(out["emo_s"])
            out["edit1"] = dec(out["emo1"])
            out["edit2"] = dec(out["emo2"])
            if self.consist:  # official consist_lambda: E(w, r_SD1), E(w, r_SD2) of the generated faces
                gen_refs = net.encode_reference(torch.cat([out["edit1"], out["edit2"]]))
                out["emo_gen"] = net.emotion(w.repeat(2, 1, 1), gen_refs)
        return out


def trainable_parameters(net, stage: int, train_decoder: bool = False) -> dict:
    """``{name: parameter}`` the optimiser holds in ``stage`` (requires_grad is set to match on ``net``).

    Stage 1: the encoder (fusion layers included) — the official stage-1 optimiser. Stage 2: the encoder's
    fusion layers, the cross-attention and the transformer (the emotion module) — the official stage-2
    optimiser; the rest of the encoder is frozen. ``train_decoder`` adds the decoder (not official).
    """
    def wanted(name: str) -> bool:
        if train_decoder and name.startswith("decoder."):
            return True
        if stage == 1:
            return name.startswith("encoder.")
        return name.startswith(("encoder.fusion.", "emotion."))

    params = {}
    for name, p in net.named_parameters():
        p.requires_grad_(wanted(name))
        if p.requires_grad:
            params[name] = p
    return params


# ---------------------------------------------------------------- checkpointable state
class TrainState:
    def __init__(self):
        self.step = 0

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, s):
        self.step = int(s["step"])


def _lr_lambda(kind: str, warmup: int, total: int):
    def f(step):
        warm = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        if kind == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))
        if kind != "constant":
            raise SSERDError(f"train.scheduler must be constant or cosine, got {kind}.")
        return warm

    return f


def make_optimizer(kind: str, params, lr: float, betas=None, weight_decay: float = 0.0):
    """``"ranger"`` (official; betas default (0.95, 0.999)) or ``"adam"`` (betas default (0.9, 0.999))."""
    from .optim import Ranger

    if kind == "ranger":
        return Ranger(params, lr=lr, betas=tuple(betas or (0.95, 0.999)), weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas or (0.9, 0.999)), weight_decay=weight_decay)


def build_model(cfg: TrainConfig):
    from ..models import SSERDNet

    m = cfg.model
    if m.get("pretrained"):
        try:
            return SSERDNet.from_pretrained(str(m["pretrained"]))
        except (OSError, EnvironmentError) as exc:
            raise SSERDError(f"Could not load model.pretrained '{m['pretrained']}': {exc}".splitlines()[0]) from exc
    conf = dict(m.get("config") or {})
    if "encoder_widths" in conf:
        conf["encoder_widths"] = tuple(conf["encoder_widths"])
    torch.manual_seed(int(m.get("init_seed", 0)))
    net = SSERDNet(**conf)
    if m.get("latent_avg_std"):
        with torch.no_grad():
            net.latent_avg.normal_(0, float(m["latent_avg_std"]))
    return net


# ---------------------------------------------------------------- the trainer
class Trainer(RunRecords):
    """Builds everything from a :class:`TrainConfig` and runs :meth:`train`.

    ``identity_net`` / ``perceptual_net`` override the config's loss networks with modules
    (tests pass tiny random stand-ins this way).
    """

    def __init__(self, cfg: TrainConfig, identity_net: Optional[nn.Module] = None,
                 perceptual_net: Optional[nn.Module] = None, log=print):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.cfg, self.log = cfg, log
        t = cfg.train
        if t["num_threads"]:
            torch.set_num_threads(int(t["num_threads"]))
        mp = t["mixed_precision"] if torch.cuda.is_available() else "no"
        # cpu=True on a machine without CUDA makes a torchrun-style launch use gloo (MULTI_CPU)
        self.acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mp,
                               gradient_accumulation_steps=int(t["grad_accum"]),
                               kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.out = Path(t["output_dir"])
        self.stage = int(t["stage"])

        # data, split by actor
        index = read_index(cfg.data["cache"])
        actors = sorted({c["actor"] for c in index["clips"] if c.get("frames", 0) > 0})
        if cfg.data["actors"]:  # restrict to the listed actors (e.g. the paper's six MEAD actors)
            missing = sorted(set(cfg.data["actors"]) - set(actors))
            if missing:
                raise SSERDError(f"data.actors lists actor(s) not in the cache: {', '.join(missing)}.")
            actors = sorted(set(cfg.data["actors"]))
        train_actors, val_actors = split_actors(actors, cfg.data["val_actors"], cfg.data["val_fraction"], t["seed"])
        mf = int(cfg.data["max_frames_per_clip"]) or None
        ma = int(cfg.data["max_frames_per_actor"]) or None
        self.data = FrameCache(cfg.data["cache"], train_actors, mf, ma, int(t["seed"]))
        self.val = FrameCache(cfg.data["cache"], val_actors, mf, ma, int(t["seed"])) if val_actors else None
        self.train_actors = [a for a in self.data.actors if len(self.data.by[a]) >= 2]
        if not self.train_actors:
            raise SSERDError("No training actor has frames of at least two emotions; SSERD needs emotion pairs.")
        self.actor_id = {a: i for i, a in enumerate(self.data.actors)}
        self._unpaired_frames = np.flatnonzero(np.isin(self.data.actor_of, self.train_actors))

        # model and loss networks
        net = build_model(cfg)
        if net.config.input_size != self.data.size:
            raise SSERDError(f"The model takes {net.config.input_size} px crops but the cache holds {self.data.size} px "
                             "ones; preprocess with --size matching model input_size.")
        from ..neural import crop_geometry

        if index.get("crop_geometry") != crop_geometry(net.config.alignment):
            raise SSERDError(f"The cache {cfg.data['cache']} holds crops cut as '{index.get('crop_geometry', 'unknown')}'"
                             f" but the model needs '{crop_geometry(net.config.alignment)}'; rerun `sserd preprocess` "
                             "into a new cache folder.")
        params = trainable_parameters(net, self.stage, bool(t["train_decoder"]))
        lw = cfg.loss
        hub = lw["hub_cache_dir"]
        idn = identity_net if identity_net is not None else self._loss_net(lw["identity_net"], "id", "identity network",
                                                                             "loss.identity_net", hub)
        pn = perceptual_net if perceptual_net is not None else self._loss_net(lw["perceptual_net"], "perceptual",
                                                                              "perceptual network", "loss.perceptual_net",
                                                                              hub)
        self.crit = L.ReconstructionLoss(idn, pn, {k: float(lw[k]) for k in ("id", "l2", "perceptual")},
                                         identity_crop=lw["identity_crop"])
        self.crit.to(self.acc.device)
        self.pool = L.LatentPool(int(lw["pool_size"]))
        self.pool_source = self._carry_pool(m_path=cfg.model.get("pretrained"))
        self.state = TrainState()

        gen = GeneratorStep(net, noise=t["noise"], resize=t["resize"], freeze_encoder=self.stage == 2,
                            consist=self.stage == 2 and float(lw["consist"]) > 0)
        opt = make_optimizer(t["optimizer"], list(params.values()), float(t["lr"]), t["betas"],
                             float(t["weight_decay"]))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(t["scheduler"], int(t["warmup_steps"]),
                                                                  int(t["max_steps"])))
        self.use_adv = float(lw["adv"]) > 0
        if self.use_adv:
            disc = self._discriminator()
            opt_d = torch.optim.Adam(disc.parameters(), lr=float(t["lr_d"]), betas=tuple(t["betas_d"]))
            self.gen, self.disc, self.opt, self.opt_d = self.acc.prepare(gen, disc, opt, opt_d)
        else:
            self.gen, self.opt = self.acc.prepare(gen, opt)
            self.disc = self.opt_d = None
        self.sched = sched  # stepped once per optimizer step (not through accelerate, which steps it per process)
        for obj in (self.sched, self.pool, self.state):
            self.acc.register_for_checkpointing(obj)

        # stage 2: pseudo-pairs
        self.pairs = None
        if self.stage == 2:
            self.pairs = self._pairs()
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.raw, indent=1, default=str))

    # ---------------------------------------------------------------- setup helpers
    def _carry_pool(self, m_path) -> Optional[Path]:
        """Start from the latent pool saved beside the pretrained model (stage 1's memory, as the official stage 2
        loads it from the stage-1 checkpoint); returns its path, or None."""
        from ..models.convert import LATENT_POOL_FILE

        path = Path(str(m_path)) / LATENT_POOL_FILE if m_path else None
        if path is None or not path.is_file():
            return None
        loaded = L.LatentPool.load(path)
        self.pool.pool = {a: {e: v[-self.pool.size:] for e, v in d.items()} for a, d in loaded.pool.items()
                          if a in self.actor_id}
        self.log(f"latent pool: {self.pool.total()} codes carried over from {path}")
        return path

    def _discriminator(self) -> nn.Module:
        """``loss.discriminator``: ``official`` — the official StyleGAN2 discriminator (1024-size layout,
        channel multiplier 2), continued from ``discriminator.safetensors`` of the pretrained model folder when
        there is one (written by ``sserd convert`` from an official checkpoint, or by the previous stage);
        ``light`` — the project's small residual discriminator, trained from scratch; ``auto`` (default):
        official when the model folder carries a discriminator, else light."""
        from ..models.convert import DISCRIMINATOR_FILE

        kind = self.cfg.loss["discriminator"]
        m_path = self.cfg.model.get("pretrained")
        path = Path(str(m_path)) / DISCRIMINATOR_FILE if m_path else None
        have = path is not None and path.is_file()
        if kind == "light" or (kind == "auto" and not have):
            self.disc_source = None
            return L.Discriminator(self.data.size, int(self.cfg.loss["disc_channels"]))
        if have:
            from safetensors.torch import load_file

            self.disc_source = path
            self.log(f"discriminator: the official one, continued from {path}")
            return L.OfficialDiscriminator.from_state_dict(load_file(str(path)))
        self.disc_source = None
        return L.OfficialDiscriminator(4 * self.data.size)

    def _loss_net(self, spec, weight_key, what, key, hub):
        if float(self.cfg.loss[weight_key]) <= 0:
            return None
        if not spec:
            raise SSERDError(f"loss.{weight_key} is {self.cfg.loss[weight_key]} but no {what} is given: set {key} to a "
                             f"TorchScript file or Hugging Face repo id (docs/TRAINING.md), or set loss.{weight_key} = 0.")
        return L.load_loss_network(spec, f"{what} ({key})", cache_dir=hub)

    def _pairs(self):
        from .paired import PAIRS_FILE, PairSet, build_pairs

        pdir = Path(self.cfg.pairs["dir"] or (self.out / "pairs"))
        if self.acc.is_main_process and not (pdir / PAIRS_FILE).is_file():
            self.log(f"building pseudo-pairs in {pdir} (alpha {self.cfg.pairs['alpha']})")
            net = self.acc.unwrap_model(self.gen).net
            build_pairs(net, self.data, pdir, alpha=float(self.cfg.pairs["alpha"]),
                        max_neutral_per_actor=int(self.cfg.pairs["max_neutral_per_actor"]), device=self.acc.device,
                        seed=int(self.cfg.train["seed"]), directions=self.cfg.pairs["directions"],
                        antialias=self.cfg.train["resize"] == "antialias", log=self.log)
            self.gen.train()
        self.acc.wait_for_everyone()
        pairs = PairSet(pdir)
        missing = sorted(set(pairs.by_actor) - set(self.data.actors))
        if missing:
            raise SSERDError(f"The pseudo-pairs in {pdir} are of actors not in the training split: {missing}.")
        return pairs

    # ---------------------------------------------------------------- batches
    def _rng(self, step: int, micro: int) -> np.random.Generator:
        return np.random.default_rng([int(self.cfg.train["seed"]), step, micro, self.acc.process_index])

    def batch_same_emotion(self, rng, data, n):
        """Stage 1 (official ``MEADDataset``): a source frame and a driving frame of the same actor and emotion.

        ``data.sampling = "frames"`` (official): the source frame uniformly over all frames (so actors and
        emotions weigh by their frame counts); ``"actors"``: an actor, then one of its emotions, uniformly."""
        src, drv, actors, emos = [], [], [], []
        by_frames = self.cfg.data["sampling"] == "frames"
        for _ in range(n):
            if by_frames:
                i = int(rng.integers(len(data)))
                a, e = str(data.actor_of[i]), int(data.emotion_of[i])
            else:
                a = str(rng.choice(data.actors))
                e = int(rng.choice(data.emotions_of(a)))
                i = int(rng.choice(data.by[a][e]))
            src.append(i)
            drv.append(int(rng.choice(data.by[a][e])))
            actors.append(a), emos.append(e)
        return dict(x=data.tensor(src), d1=data.tensor(drv), actors=actors, emotions=emos)

    def batch_stage2(self, rng, n):
        """Stage 2 (official ``MEADPairedDataset``): paired with probability ``pairs.paired_share``, else unpaired."""
        data, pairs = self.data, self.pairs
        share = float(self.cfg.pairs["paired_share"])
        xs, d1, d2, ts, paired, actors, emo_d = [], [], [], [], [], [], []
        pair_actors = sorted(pairs.by_actor)
        for _ in range(n):
            is_pair = rng.random() < share
            if is_pair:  # source: the pair image of a random emotion s (neutral: the real frame); target: of t
                a = str(rng.choice(pair_actors))
                p = int(rng.choice(pairs.by_actor[a]))
                ems = pairs.emotions(p)
                s, t = int(rng.choice(ems)), int(rng.choice(ems))
                x, tgt = pairs.tensor([p], [s])[0], pairs.tensor([p], [t])[0]
            else:  # source: a real frame of any emotion; target emotion t: any the actor has
                if self.cfg.data["sampling"] == "frames":  # official: the source uniformly over frames
                    i0 = int(rng.choice(self._unpaired_frames))
                    a = str(data.actor_of[i0])
                else:
                    a = str(rng.choice(self.train_actors))
                    i0 = int(rng.choice(data.by[a][int(rng.choice(data.emotions_of(a)))]))
                t = int(rng.choice(data.emotions_of(a)))
                x, tgt = data.tensor([i0])[0], None
            i1 = int(rng.choice(data.by[a][t]))
            d1.append(i1)
            others = [b for b in data.actors if b != a and t in data.by[b]] or [a]
            b = str(rng.choice(others))
            d2.append(int(rng.choice(data.by[b][t])))
            xs.append(x), paired.append(float(is_pair)), actors.append(a), emo_d.append(t)
            ts.append(tgt if tgt is not None else data.tensor([i1])[0])  # unpaired: T = D1 (identity target only)
        return dict(x=torch.stack(xs), d1=data.tensor(d1), d2=data.tensor(d2), target=torch.stack(ts),
                    paired=torch.tensor(paired), actors=actors, emotions=emo_d)

    # ---------------------------------------------------------------- one micro-step
    def _pool_add(self, codes, actors, emotions):
        """Add codes to the pool on every process (gathered, so all processes keep the same pool)."""
        ids = torch.tensor([self.actor_id[a] for a in actors], device=codes.device)
        em = torch.tensor(list(emotions), device=codes.device)
        codes, ids, em = self.acc.gather((codes.detach().float().contiguous(), ids, em))
        names = self.data.actors
        self.pool.add(codes.cpu(), [names[int(i)] for i in ids.cpu()], em.cpu().tolist())

    def _forward(self, batch):
        """The generator pass; returns ``(out, fakes, reals, (nce codes, actors, emotions))``: what the
        discriminator sees (official sets: stage 1 real x / fake recon; stage 2 real D1, D1 / fake SD1, SD2)."""
        dev = self.acc.device
        x, d1 = batch["x"].to(dev), batch["d1"].to(dev)
        if self.stage == 1:
            out = self.gen(1, x, d1)
            return out, out["recon"], x, (out["codes"], batch["actors"], batch["emotions"])
        out = self.gen(2, x, d1, batch["d2"].to(dev))
        nce = (torch.cat([out["emo1"], out["emo2"]]), batch["actors"] * 2, batch["emotions"] * 2)
        return out, torch.cat([out["edit1"], out["edit2"]]), torch.cat([d1, d1]), nce

    def _discriminator_step(self, fakes, reals) -> torch.Tensor:
        """One discriminator update on ``reals`` vs detached ``fakes`` (loss scaled by the adversarial weight, as
        the official ``train_discriminator``); returns the loss."""
        w = float(self.cfg.loss["adv"])
        with self.acc.accumulate(self.disc):
            logits = self.disc(torch.cat([reals, fakes.detach()]).float())
            real, fake = logits.split([len(reals), len(fakes)])
            ld = w * L.discriminator_loss(real, fake)
            self.acc.backward(ld)
            self.opt_d.step()
            self.opt_d.zero_grad()
        return ld.detach()

    def _r1_step(self, reals) -> torch.Tensor:
        """Lazy R1 (StyleGAN2, as the official code): ``r1/2 · E‖∇D(real)‖² · d_reg_every``, one extra update.

        Run on the unwrapped discriminator (a double backward through DDP is not supported); the gradients
        are then averaged over the processes by hand."""
        lw = self.cfg.loss
        disc = self.acc.unwrap_model(self.disc)
        real = reals.detach().float().requires_grad_(True)
        pred = disc(real)
        grad, = torch.autograd.grad(pred.sum(), real, create_graph=True)
        penalty = float(lw["r1"]) / 2 * grad.pow(2).flatten(1).sum(1).mean() * int(lw["d_reg_every"])
        self.opt_d.zero_grad()
        (penalty + 0 * pred[0]).backward()
        if self.acc.num_processes > 1:
            params = [p for p in disc.parameters() if p.grad is not None]
            flat = self.acc.reduce(torch.cat([p.grad.flatten() for p in params]), "mean")
            torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
        self.opt_d.step()
        self.opt_d.zero_grad()
        return penalty.detach()

    def _generator_losses(self, batch, out):
        """The generator loss of one micro-batch (official composition, see the module doc) → ``(total, parts)``."""
        dev = self.acc.device
        x, d1 = batch["x"].to(dev), batch["d1"].to(dev)
        disc = self.acc.unwrap_model(self.disc) if self.use_adv else None
        parts: dict = {}

        def add(p, scale=1.0):
            for k, v in p.items():
                parts[k] = parts.get(k, 0) + scale * v

        if self.stage == 1:
            add(self.crit(out["recon"], x)[1])
            add(self.crit(out["edit1"], d1)[1])
            fakes = torch.cat([out["recon"], out["edit1"]])
        else:
            tgt, paired = batch["target"].to(dev), batch["paired"].to(dev)
            # identity on every sample (targets x, T, T: the mean over the three); pixel terms on paired samples;
            # SS vs x at 0.5 when the batch has paired samples (official coach_finetune_stage2.calc_loss)
            p = self.crit(out["recon"], x)[1]
            add({k: v for k, v in p.items() if k == "id"}, 1 / 3)
            add({k: v for k, v in p.items() if k != "id"}, 0.5 if float(paired.sum()) > 0 else 0.0)
            for edit in (out["edit1"], out["edit2"]):
                p = self.crit(edit, tgt, weight=paired)[1]
                add({k: v for k, v in p.items() if k == "id"}, 1 / 3)
                add({k: v for k, v in p.items() if k != "id"})
            fakes = torch.cat([out["recon"], out["edit1"], out["edit2"]])
        if disc is not None:
            disc.requires_grad_(False)
            parts["adv"] = float(self.cfg.loss["adv"]) * L.generator_adv_loss(disc(fakes.float()))
            disc.requires_grad_(True)
        return sum(parts.values()), parts

    def _nce(self, nce_in, step, gen_seed):
        codes, actors, emotions = nce_in
        if step < int(self.cfg.train["contrastive_start"]) or float(self.cfg.loss["nce"]) <= 0:
            return None
        nce = L.info_nce(codes, actors, emotions, self.pool, float(self.cfg.loss["temperature"]),
                         generator=torch.Generator().manual_seed(gen_seed))
        return None if nce is None else float(self.cfg.loss["nce"]) * nce

    def _consist(self, out, batch, step, gen_seed):
        """Official ``consist_lambda`` (stage 2): the emotion codes read back from the generated faces SD1, SD2
        (``E(w, r_SD)``) must pick the target emotion out of the latent pool, the same InfoNCE as the driving
        codes' — so an edit shows the emotion it was driven with. Gradients reach the emotion module and the
        fusion layers through the generated images."""
        w = float(self.cfg.loss["consist"])
        if w <= 0 or "emo_gen" not in out or step < int(self.cfg.train["contrastive_start"]):
            return None
        c = L.info_nce(out["emo_gen"], batch["actors"] * 2, batch["emotions"] * 2, self.pool,
                       float(self.cfg.loss["temperature"]), generator=torch.Generator().manual_seed(gen_seed + 1))
        return None if c is None else w * c

    # ---------------------------------------------------------------- loop
    def train(self, max_steps: Optional[int] = None) -> Path:
        t, lw = self.cfg.train, self.cfg.loss
        max_steps = int(max_steps or t["max_steps"])
        self.resume()
        per = int(t["batch_size"])
        accum = int(t["grad_accum"])
        log_path = self.out / "train_log.csv"
        self.gen.train()
        t_last = time.perf_counter()
        while self.state.step < max_steps:
            step = self.state.step
            sums: dict[str, float] = {}
            for micro in range(accum):
                rng = self._rng(step, micro)
                torch.manual_seed(int(rng.integers(2 ** 31)))
                batch = (self.batch_same_emotion(rng, self.data, per) if self.stage == 1
                         else self.batch_stage2(rng, per))
                nce_seed = int(rng.integers(2 ** 31))
                parts: dict = {}
                with self.acc.accumulate(self.gen):
                    out, fakes, reals, nce_in = self._forward(batch)
                    if self.use_adv:  # the discriminator first; the generator's adversarial term sees the updated one
                        parts["disc"] = self._discriminator_step(fakes, reals)
                        if micro == accum - 1 and float(lw["r1"]) > 0 and step % int(lw["d_reg_every"]) == 0:
                            parts["r1"] = self._r1_step(reals)
                    total, g_parts = self._generator_losses(batch, out)
                    parts.update(g_parts)
                    nce = self._nce(nce_in, step, nce_seed)
                    if nce is not None:
                        parts["nce"] = nce
                        total = total + nce
                    consist = self._consist(out, batch, step, nce_seed) if self.stage == 2 else None
                    if consist is not None:
                        parts["consist"] = consist
                        total = total + consist
                    self.acc.backward(total)
                    if self.acc.sync_gradients and float(t["max_grad_norm"]) > 0:
                        self.acc.clip_grad_norm_(self.gen.parameters(), float(t["max_grad_norm"]))
                    self.opt.step()
                    self.opt.zero_grad()
                self._pool_add(*nce_in)
                # every process reduces the same fixed vector (a term may be absent on one process, e.g. nce
                # before its pool slots fill): sum of values and count of processes that have it
                vals = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
                        for k, v in {"loss": total, **parts}.items()}
                vec = torch.tensor([[vals.get(k, 0.0), float(k in vals)] for k in LOG_TERMS],
                                   device=self.acc.device, dtype=torch.float64)
                vec = self.acc.reduce(vec, "sum").cpu()
                for k, (v, n) in zip(LOG_TERMS, vec.tolist()):
                    if n > 0:
                        sums[k] = sums.get(k, 0.0) + v / n / accum
            self.sched.step()
            self.state.step += 1
            now = time.perf_counter()
            sums["sec_per_step"] = now - t_last
            t_last = now
            sums["lr"] = self.sched.get_last_lr()[0]
            if self.acc.is_main_process and (self.state.step % int(t["log_every"]) == 0 or self.state.step == 1):
                self._csv(log_path, self.state.step, sums)
            if int(t["sample_every"]) and self.state.step % int(t["sample_every"]) == 0 and self.acc.is_main_process:
                self._grid(batch, out)
            if self.val is not None and int(t["val_every"]) and self.state.step % int(t["val_every"]) == 0:
                self.validate()
            if int(t["checkpoint_every"]) and self.state.step % int(t["checkpoint_every"]) == 0:
                self.save_checkpoint()
        self.check_replicas()
        return self.save_model()
