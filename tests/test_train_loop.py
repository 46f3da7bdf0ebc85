"""The accelerate training loop on a tiny SSERDNet and a synthetic cache: logs, grids, checkpoints, exact
resume after a kill, two-process data parallelism (gloo), stage 2 with pseudo-pairs, config errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sserd_core.errors import SSERDError
from sserd_core.train.trainer import Trainer, TrainConfig
from train_helpers import tiny_config_text as _tiny_config_text
from train_helpers import make_synthetic_cache, save_standin_loss_nets

def tiny_config_text(*args, **kw):
    """The tiny config with actor-first sampling: this module tests the loop's bookkeeping, not the sampler
    (test_train_streaming.py); actor-first draws give its seed a repeated (actor, emotion) within 5 steps of
    batch 2, so InfoNCE gets a positive to log."""
    return _tiny_config_text(*args, **kw).replace("[data]\n", '[data]\nsampling = "actors"\n', 1)


ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def last_row(path, step):
    return [r for r in rows(path) if int(r["step"]) == step][-1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("train")
    cache = make_synthetic_cache(d / "cache", actors=("A1", "A2", "A3"), frames=6)
    ident, perc = save_standin_loss_nets(d / "nets")
    cfg_path = d / "stage1.toml"
    # the loop's bookkeeping is tested here, not the sampler (test_train_streaming.py): actor-first draws give
    # this seed a repeated (actor, emotion) within 5 steps of batch 2, so InfoNCE gets a positive to log
    cfg_path.write_text(tiny_config_text(cache, d / "run1", ident, perc, max_steps=5, checkpoint_every=3))
    trainer = Trainer(TrainConfig.load(cfg_path), log=lambda m: None)
    model_dir = trainer.train()
    yield dict(dir=d, cache=cache, ident=ident, perc=perc, cfg=cfg_path, run=d / "run1", model=model_dir)
    torch.set_num_threads(n)


def test_stage1_logs_samples_checkpoints_and_model(setup):
    run = setup["run"]
    log = rows(run / "train_log.csv")
    assert [int(r["step"]) for r in log] == [1, 2, 3, 4, 5]
    for r in log:   # every loss term of the paper is logged
        for k in ("loss", "l2", "perceptual", "id", "adv", "disc"):
            assert np.isfinite(float(r[k])), (k, r)
    assert any(r["nce"] for r in log[1:])            # InfoNCE starts once the pool has codes
    assert (run / "samples" / "step_0000003.png").is_file()
    assert (run / "checkpoints" / "step_0000003" / "COMPLETE").is_file()
    from sserd_core.models import SSERDNet

    net = SSERDNet.from_pretrained(str(setup["model"]))
    assert net.config.input_size == 64
    # training changed the encoder (decoder frozen in stage 1)
    from sserd_core.train.trainer import build_model

    init = build_model(TrainConfig.load(setup["cfg"]))
    enc_diff = max((a - b).abs().max().item() for a, b in zip(net.encoder.parameters(), init.encoder.parameters()))
    dec_diff = max((a - b).abs().max().item() for a, b in zip(net.decoder.parameters(), init.decoder.parameters()))
    assert enc_diff > 1e-4 and dec_diff == 0.0


def test_kill_and_resume_gives_identical_next_step_loss(setup):
    d = setup["dir"]
    cfg = d / "killed.toml"
    out = d / "killed"
    cfg.write_text(tiny_config_text(setup["cache"], out, setup["ident"], setup["perc"], max_steps=5,
                                    checkpoint_every=3, sample_every=0))
    cmd = [PY, "-m", "sserd_core.cli", "train", "--config", str(cfg)]
    proc = subprocess.Popen(cmd, env=ENV, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = out / "checkpoints" / "step_0000003" / "COMPLETE"
    t0 = time.time()
    while not marker.is_file() and proc.poll() is None and time.time() - t0 < 120:
        time.sleep(0.05)
    assert marker.is_file(), proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)               # killed mid-run, right after the step-3 checkpoint
    proc.wait()
    assert not (out / "model").exists()
    res = subprocess.run(cmd, env=ENV, cwd=d, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "resumed from" in res.stdout and "step 3" in res.stdout
    ref = setup["run"] / "train_log.csv"
    for step in (4, 5):                            # the uninterrupted run's losses, exactly
        a, b = last_row(ref, step), last_row(out / "train_log.csv", step)
        for k in ("loss", "l2", "perceptual", "id", "adv", "nce", "disc"):
            assert a[k] == b[k], (step, k, a[k], b[k])


def test_accelerate_two_processes_agree_on_weights(setup):
    d = setup["dir"]
    cfg = d / "ddp.toml"
    cfg.write_text(tiny_config_text(setup["cache"], d / "ddp", setup["ident"], setup["perc"], max_steps=3,
                                    checkpoint_every=0, sample_every=0))
    accelerate = str(Path(PY).with_name("accelerate"))
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "--main_process_port", "29533", "-m", "sserd_core.cli", "train",
           "--config", str(cfg)]
    res = subprocess.run(cmd, env=ENV, cwd=d, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rep = json.loads((d / "ddp" / "replicas.json").read_text())
    assert rep["step"] == 3 and len(rep["fingerprints"]) == 2
    assert rep["fingerprints"][0] == rep["fingerprints"][1]
    # the two processes drew different batches (data parallel, not duplicated): the run differs from 1 process
    one = last_row(setup["run"] / "train_log.csv", 2)
    two = last_row(d / "ddp" / "train_log.csv", 2)
    assert one["loss"] != two["loss"]


def test_stage2_builds_pairs_and_mixes_half_paired(setup):
    d = setup["dir"]
    cfg = d / "stage2.toml"
    text = tiny_config_text(setup["cache"], d / "run2", setup["ident"], setup["perc"], pretrained=setup["model"],
                            stage=2, max_steps=2, checkpoint_every=0, sample_every=2)
    cfg.write_text(text)
    trainer = Trainer(TrainConfig.load(cfg), log=lambda m: None)
    pairs = trainer.pairs
    # every actor's neutral frames (up to max_neutral_per_actor = 4) rendered under its 7 emotions
    assert pairs.images.shape[1:] == (7, 64, 64, 3) and len(pairs) == 3 * 4
    assert pairs.has.all()
    dirs = torch.load(d / "run2" / "pairs" / "emotion_directions.pt")
    assert sorted(dirs) == ["A1", "A2", "A3"] and len(dirs["A1"]) == 6
    assert torch.allclose(dirs["A1"]["happy"].norm(dim=1), torch.ones(dirs["A1"]["happy"].shape[0]), atol=1e-4)
    # renderings of one frame differ between emotions (edits do something) but keep the frame's layout
    p0 = pairs.images[0].astype(float)
    assert np.abs(p0[4] - p0[0]).mean() > 0.5
    # the batch mixes pseudo-paired and unpaired samples about half and half
    share = np.mean([float(trainer.batch_stage2(np.random.default_rng(i), 8)["paired"].mean()) for i in range(25)])
    assert 0.4 < share < 0.6
    trainer.train()
    log = rows(d / "run2" / "train_log.csv")
    assert len(log) == 2 and all(np.isfinite(float(r["loss"])) for r in log)
    assert (d / "run2" / "samples" / "step_0000002.png").is_file()


def test_config_errors_are_clear(setup, tmp_path):
    text = tiny_config_text(setup["cache"], tmp_path / "r", "", "")
    text = text.replace('identity_net = ""\n', "")
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(SSERDError, match=r"loss.id is 0.2 but no identity network is given: set loss.identity_net"):
        Trainer(TrainConfig.load(cfg), perceptual_net=torch.nn.Identity())
    cfg.write_text(text + "\n[extra]\nx = 1\n")
    with pytest.raises(SSERDError, match="Unknown config section"):
        TrainConfig.load(cfg)
    cfg.write_text(text.replace("max_steps = 6", "max_stepz = 6"))
    with pytest.raises(SSERDError, match="Unknown key.*max_stepz"):
        TrainConfig.load(cfg)
    cfg.write_text(text.replace("[pairs]\n", '[pairs]\ndirections = "pca"\n'))
    with pytest.raises(SSERDError, match="pairs.directions must be one of official, content-orthogonal"):
        TrainConfig.load(cfg)
    with pytest.raises(SSERDError, match="does not exist"):
        TrainConfig.load(tmp_path / "nope.toml")


def test_shipped_configs_parse():
    for name, stage in (("mead_stage1", 1), ("mead_stage2", 2), ("ravdess_stage1", 1), ("ravdess_stage2", 2)):
        cfg = TrainConfig.load(ROOT / "configs" / f"{name}.toml")
        assert cfg.train["stage"] == stage and cfg.train["batch_size"] == 2 and cfg.train["lr"] == 1e-4
        assert (cfg.loss["id"], cfg.loss["l2"], cfg.loss["perceptual"], cfg.loss["adv"], cfg.loss["nce"]) == \
            (0.2, 1.0, 0.8, 0.1, 0.1)
        assert cfg.loss["temperature"] == 0.1 and cfg.loss["pool_size"] == 8
        assert cfg.pairs["alpha"] == 15.0 and cfg.pairs["paired_share"] == 0.5
        # the official recipe: Ranger, random decoder noise, plain bilinear resize, lazy R1, InfoNCE from step 100,
        # pseudo-pairs from SVC(linear, C=1) on every neutral frame
        assert (cfg.train["optimizer"], cfg.train["noise"], cfg.train["resize"]) == ("ranger", "random", "bilinear")
        assert (cfg.loss["r1"], cfg.loss["d_reg_every"], cfg.train["contrastive_start"]) == (1.0, 16, 100)
        assert (cfg.pairs["directions"], cfg.pairs["max_neutral_per_actor"]) == ("official", 0)
        assert cfg.train["train_decoder"] is False


def test_validation_on_held_out_actor(setup):
    d = setup["dir"]
    cfg = d / "val.toml"
    cfg.write_text(tiny_config_text(setup["cache"], d / "val", setup["ident"], setup["perc"], max_steps=1,
                                    checkpoint_every=0, sample_every=0, val_every=1, val_batches=1)
                   .replace("val_actors = []", 'val_actors = ["A3"]'))
    trainer = Trainer(TrainConfig.load(cfg), log=lambda m: None)
    assert trainer.data.actors == ["A1", "A2"] and trainer.val.actors == ["A3"]
    trainer.train()
    row = rows(d / "val" / "val_log.csv")[0]
    assert float(row["val_recon_l2"]) > 0 and float(row["val_edit_l2"]) > 0
    assert "ID-dist (dlib)" in row          # the evaluation package's identity proxy, under its own name
