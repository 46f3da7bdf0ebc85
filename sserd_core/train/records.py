"""What a training run leaves behind: checkpoints (resumable), the trained model folder, the replica
check, the loss/validation logs and sample grids. :class:`RunRecords` is mixed into
:class:`~sserd_core.train.trainer.Trainer`; it uses the trainer's ``acc`` (accelerate), ``cfg``, ``out``,
``state``, ``gen``, ``pool``, ``val``, ``stage``, ``log`` and ``batch_same_emotion``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import torch

CHECKPOINT_DONE = "COMPLETE"
LOG_TERMS = ("loss", "l2", "perceptual", "id", "adv", "nce", "consist", "disc", "r1")


def latest_checkpoint(output_dir) -> Optional[Path]:
    ckpts = sorted((Path(output_dir) / "checkpoints").glob("step_*"))
    ckpts = [c for c in ckpts if (c / CHECKPOINT_DONE).is_file()]
    return ckpts[-1] if ckpts else None


class RunRecords:
    """Checkpoints, the model folder, the replica check and the logs of a :class:`Trainer`."""

    def resume(self) -> Optional[Path]:
        ckpt = latest_checkpoint(self.out)
        if ckpt is not None:
            self.acc.load_state(str(ckpt))
            self.log(f"resumed from {ckpt} (step {self.state.step})")
        return ckpt

    def save_checkpoint(self):
        ckpt = self.out / "checkpoints" / f"step_{self.state.step:07d}"
        self.acc.save_state(str(ckpt))
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            (ckpt / CHECKPOINT_DONE).write_text(str(self.state.step))
            keep = int(self.cfg.train["keep_checkpoints"])
            done = [c for c in sorted((self.out / "checkpoints").glob("step_*")) if (c / CHECKPOINT_DONE).is_file()]
            for old in done[:-keep] if keep > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()

    def save_model(self, folder=None) -> Path:
        """The trained model as a ``save_pretrained`` folder, with the latent pool beside it (the next stage
        continues it, as the official stage 2 continues stage 1's)."""
        from ..models.convert import LATENT_POOL_FILE

        folder = Path(folder or self.out / "model")
        if self.acc.is_main_process:
            self.acc.unwrap_model(self.gen).net.save_pretrained(str(folder))
            if self.pool.total():
                self.pool.save(folder / LATENT_POOL_FILE)
            disc = self.acc.unwrap_model(self.disc) if getattr(self, "disc", None) is not None else None
            if disc is not None and disc.__class__.__name__ == "OfficialDiscriminator":
                from safetensors.torch import save_file

                from ..models.convert import DISCRIMINATOR_FILE

                save_file({k: v.detach().cpu().contiguous() for k, v in disc.state_dict().items()},
                          str(folder / DISCRIMINATOR_FILE))
        self.acc.wait_for_everyone()
        return folder

    def check_replicas(self) -> list:
        """Fingerprint of the generator weights on every process (gathered); written to
        ``OUTPUT/replicas.json``. Data-parallel replicas must agree; a mismatch is an error."""
        net = self.acc.unwrap_model(self.gen)
        vec = torch.cat([p.detach().double().flatten() for p in net.parameters()])
        pos = torch.arange(vec.numel(), dtype=torch.float64, device=vec.device) % 9973 + 1
        fp = torch.stack([vec.sum(), (vec * pos).sum(), vec.pow(2).sum()]).to(self.acc.device)
        prints = self.acc.gather(fp[None]).cpu().tolist()
        if self.acc.is_main_process:
            (self.out / "replicas.json").write_text(json.dumps({"step": self.state.step, "fingerprints": prints}))
        if any(p != prints[0] for p in prints):
            raise RuntimeError(f"data-parallel replicas diverged: weight fingerprints {prints}")
        return prints

    # ---------------------------------------------------------------- logs
    def _csv(self, path: Path, step: int, vals: dict):
        names = list(LOG_TERMS) + ["lr", "sec_per_step"]
        names += sorted(set(vals) - set(names))
        new = not path.is_file()
        with path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step"] + names)
            w.writerow([step] + [repr(float(vals[k])) if k in vals else "" for k in names])

    def _grid(self, batch, out):
        rows = [batch["x"], batch["d1"], out["recon"].detach().float().cpu(), out["edit1"].detach().float().cpu()]
        if "target" in batch:
            rows.append(batch["target"])
        n = min(4, rows[0].shape[0])
        grid = torch.cat([torch.cat(list(r[:n].clamp(-1, 1)), dim=2) for r in rows], dim=1)
        img = ((grid + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        from PIL import Image

        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(self.out / "samples" / f"step_{self.state.step:07d}.png")

    @torch.no_grad()
    def validate(self) -> dict:
        """Validation on the held-out actors, with a driving frame of the same actor and emotion: reconstruction L2
        and edit L2 (stage 1: ``G(w_y)`` vs ``y``; stage 2: ``G(w + E(w, r_y))`` vs ``y``); plus the evaluation
        package's identity proxy (``ID-dist (dlib)``) when :mod:`sserd_core.metrics` exists."""
        self.gen.eval()
        net = self.acc.unwrap_model(self.gen)
        res = {"val_recon_l2": [], "val_edit_l2": []}
        gens, srcs = [], []
        for k in range(int(self.cfg.train["val_batches"])):
            rng = np.random.default_rng([int(self.cfg.train["seed"]), 10 ** 9 + k])
            b = self.batch_same_emotion(rng, self.val, int(self.cfg.train["batch_size"]))
            x, d1 = b["x"].to(self.acc.device), b["d1"].to(self.acc.device)
            with self.acc.autocast():
                out = net(1, x, d1) if self.stage == 1 else net(2, x, d1, d1)
            res["val_recon_l2"].append(float((out["recon"].float() - x).pow(2).mean()))
            res["val_edit_l2"].append(float((out["edit1"].float() - d1).pow(2).mean()))
            gens.append(out["edit1"].float().cpu())
            srcs.append(b["x"])
        vals = {k: float(np.mean(v)) for k, v in res.items()}
        try:
            from ..metrics import identity as id_metrics  # the evaluation package (optional)
        except ImportError:
            id_metrics = None
        if id_metrics is not None:
            vals[getattr(id_metrics, "ID_DIST", "ID-dist (dlib)")] = _id_distance_proxy(id_metrics, gens, srcs)
        self.gen.train()
        if self.acc.is_main_process:
            self._csv(self.out / "val_log.csv", self.state.step, vals)
        return vals


def _id_distance_proxy(id_metrics, gens, srcs) -> float:
    """dlib identity distance of edited vs source crops (landmarks re-detected on each crop; NaN where none)."""
    from ..face import detect_landmarks, face_embedding

    def emb(t):
        rgb = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        big = np.ascontiguousarray(np.repeat(np.repeat(rgb, max(1, 256 // rgb.shape[0]), 0),
                                             max(1, 256 // rgb.shape[1]), 1))
        faces = detect_landmarks(big)
        return face_embedding(big, faces[0]) if faces else np.full(128, np.nan, np.float32)

    g = np.stack([emb(t) for b in gens for t in b])
    s = np.stack([emb(t) for b in srcs for t in b])
    return id_metrics.id_distance(g, s)
