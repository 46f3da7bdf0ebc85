"""Which parameters each stage trains, running the real Trainer (official: stage 1 the encoder only; stage 2 the
fusion layers, cross-attention and transformer, the encoder frozen with BatchNorm in eval mode), and the official
batch / loss composition of each stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sserd_core.train.losses import identity_crop
from sserd_core.train.trainer import Trainer, TrainConfig
from train_helpers import make_synthetic_cache, save_standin_loss_nets, tiny_config_text


def _unreached(net) -> set:
    """Parameters no forward uses: ``encoder.skiplayer`` (its output is not passed to the decoder) and the fusion
    layers past the decoder's last level (the tiny 256-size decoder has 6 levels, the encoder 7 fusion layers)."""
    levels = len(net.decoder.to_rgbs)
    return {n for n, _ in net.named_parameters() if n.startswith("encoder.skiplayer.") or
            (n.startswith("encoder.fusion.") and int(n.split(".")[2]) >= levels)}


def _step(cfg_path):
    """Build the Trainer, run one optimiser step; return (trainer, net, names that received a non-zero gradient,
    state-dict entries that changed, names the optimiser holds)."""
    trainer = Trainer(TrainConfig.load(cfg_path), log=lambda m: None)
    net = trainer.acc.unwrap_model(trainer.gen).net
    names = {id(p): n for n, p in net.named_parameters()}
    held = {names[id(p)] for g in trainer.opt.optimizer.param_groups for p in g["params"]}
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    got = set()
    for name, p in net.named_parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(
                lambda q, name=name: got.add(name) if q.grad is not None and bool(q.grad.abs().sum() > 0) else None)
    trainer.train(1)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    return trainer, net, got, changed, held


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("stages")
    cache = make_synthetic_cache(d / "cache", actors=("A1", "A2"), frames=6)
    ident, perc = save_standin_loss_nets(d / "nets")
    (d / "s1.toml").write_text(tiny_config_text(cache, d / "run1", ident, perc, max_steps=1, checkpoint_every=0,
                                                sample_every=0))
    s1 = _step(d / "s1.toml")
    (d / "s2.toml").write_text(tiny_config_text(cache, d / "run2", ident, perc, pretrained=s1[0].out / "model",
                                                stage=2, max_steps=1, checkpoint_every=0, sample_every=0))
    s2 = _step(d / "s2.toml")
    yield {1: s1, 2: s2}
    torch.set_num_threads(n)


def test_stage1_trains_the_encoder_only(runs):
    trainer, net, got, changed, held = runs[1]
    encoder = {n for n, _ in net.named_parameters() if n.startswith("encoder.")}
    assert held == encoder                                  # the official stage-1 optimiser: net.encoder.parameters()
    assert got <= encoder and {n for n in got if n.startswith("encoder.fusion.")}
    # every encoder parameter on the path to the image gets a gradient
    assert encoder - got == _unreached(net), sorted(encoder - got)
    assert not {k for k in changed if k.startswith(("decoder.", "emotion.")) or k == "latent_avg"}
    assert any(k.startswith("encoder.") and k.endswith("running_mean") for k in changed)  # BatchNorm in train mode


def test_stage2_trains_fusion_and_emotion_module_with_the_encoder_frozen(runs):
    trainer, net, got, changed, held = runs[2]
    expected = {n for n, _ in net.named_parameters() if n.startswith(("encoder.fusion.", "emotion."))}
    assert held == expected                                 # official: fusion + cross_attention + transformer
    assert got <= expected
    # cross_attention.norm1 exists only so official checkpoints load (unused in the forward)
    assert expected - got == {"emotion.cross_attention.norm1.weight", "emotion.cross_attention.norm1.bias"} | {
        n for n in _unreached(net) if n.startswith("encoder.fusion.")}
    frozen = {k for k in changed if k.startswith(("encoder.", "decoder.")) and not k.startswith("encoder.fusion.")}
    assert not frozen, sorted(frozen)                       # incl. BatchNorm running statistics (eval mode)
    assert not net.encoder.training and net.encoder.fusion.training
    # stage 1's latent pool, saved beside its model, is where stage 2's InfoNCE memory starts (as official)
    assert trainer.pool_source == runs[1][0].out / "model" / "latent_pool.safetensors"
    assert all(not m.training for m in net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_stage1_batches_pair_frames_of_the_same_actor_and_emotion(runs):
    trainer = runs[1][0]
    data = trainer.data
    for seed in range(5):
        b = trainer.batch_same_emotion(np.random.default_rng(seed), data, 6)
        for x, y, a, e in zip(b["x"], b["d1"], b["actors"], b["emotions"]):
            idx = [i for i in data.by[a][e]]
            assert any(torch.equal(x, data.tensor([i])[0]) for i in idx)
            assert any(torch.equal(y, data.tensor([i])[0]) for i in idx)


def test_stage2_unpaired_target_is_the_same_actor_driving_frame(runs):
    trainer = runs[2][0]
    b = trainer.batch_stage2(np.random.default_rng(0), 16)
    unpaired = b["paired"] == 0
    assert unpaired.any() and (~unpaired).any()
    assert torch.equal(b["target"][unpaired], b["d1"][unpaired])  # official: T = D1 (identity target only)


def test_stage2_loss_composition_is_the_official_one(runs):
    """id over (SS, x), (SD1, T), (SD2, T) averaged; L2 / perceptual: paired (SD1, T) + (SD2, T) and 0.5·(SS, x)
    when the batch has a paired sample; adversarial on SS, SD1, SD2 together."""
    trainer = runs[2][0]
    gen = [torch.rand(2, 3, 64, 64) * 2 - 1 for _ in range(3)]
    x, t, d1 = (torch.rand(2, 3, 64, 64) * 2 - 1 for _ in range(3))
    out = {"recon": gen[0], "edit1": gen[1], "edit2": gen[2]}
    batch = {"x": x, "d1": d1, "target": t, "paired": torch.tensor([1.0, 0.0])}
    crit, disc = trainer.crit, trainer.acc.unwrap_model(trainer.disc)
    _, parts = trainer._generator_losses(batch, out)

    def mse(a, b):
        return (a - b).pow(2).flatten(1).mean(1)

    def ident(a, b):
        ea, eb = (torch.nn.functional.normalize(crit.identity_net(identity_crop(v)).float(), dim=-1) for v in (a, b))
        return (1 - (ea * eb).sum(-1)).mean()

    l2 = mse(gen[1], t)[0] + mse(gen[2], t)[0] + 0.5 * mse(gen[0], x).mean()
    assert float(parts["l2"]) == pytest.approx(float(l2), rel=1e-5)
    idl = 0.2 * (ident(gen[0], x) + ident(gen[1], t) + ident(gen[2], t)) / 3
    assert float(parts["id"]) == pytest.approx(float(idl), rel=1e-5)
    adv = 0.1 * torch.nn.functional.softplus(-disc(torch.cat(gen))).mean()
    assert float(parts["adv"]) == pytest.approx(float(adv), rel=1e-5)
    # no paired sample: no pixel terms at all (the 0.5 reconstruction term too), identity unchanged
    _, parts = trainer._generator_losses(dict(batch, paired=torch.zeros(2)), out)
    assert float(parts["l2"]) == 0 and float(parts["id"]) == pytest.approx(float(idl), rel=1e-5)


def test_identity_loss_sees_the_official_crop():
    """criteria/id_loss.py: x[:, :, 35:223, 32:220] of the 256 px face, adaptive-average-pooled to 112."""
    x = torch.randn(2, 3, 256, 256)
    assert torch.equal(identity_crop(x), torch.nn.functional.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], 112))
    y = torch.randn(1, 3, 64, 64)  # a 64 px face: the same box, scaled
    assert torch.equal(identity_crop(y), torch.nn.functional.adaptive_avg_pool2d(y[:, :, 9:56, 8:55], 112))


def test_consist_term_reads_the_emotion_back_from_the_generated_faces(runs, tmp_path):
    """Official consist_lambda: InfoNCE of E(w, r_SD1), E(w, r_SD2) over the pool; its gradient reaches the emotion
    module through the generated images."""
    trainer = runs[2][0]
    cfg_text = (trainer.cfg.path.read_text().replace("[loss]\n", "[loss]\nconsist = 0.1\n", 1)
                .replace(str(trainer.out), str(tmp_path / "run")))
    (tmp_path / "c.toml").write_text(cfg_text)
    tr = Trainer(TrainConfig.load(tmp_path / "c.toml"), log=lambda m: None)
    net = tr.acc.unwrap_model(tr.gen).net
    batch = tr.batch_stage2(np.random.default_rng(0), 2)
    out = tr.gen(2, batch["x"], batch["d1"], batch["d2"])
    assert tuple(out["emo_gen"].shape) == (4,) + tuple(out["emo1"].shape[1:])
    tr._pool_add(torch.cat([out["emo1"], out["emo2"]]), batch["actors"] * 2, batch["emotions"] * 2)
    for e in range(7):  # negatives of every other emotion for these actors
        tr.pool.add(torch.randn(2, *out["emo1"].shape[1:]), batch["actors"], [e, e])
    c = tr._consist(out, batch, step=10 ** 6, gen_seed=0)
    assert c is not None and float(c) > 0
    c.backward()
    grads = {n for n, p in net.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
    assert any(n.startswith("emotion.") for n in grads) and any(n.startswith("encoder.fusion.") for n in grads)
    assert tr._consist(out, batch, step=0, gen_seed=0) is None  # not before contrastive_start
    plain = runs[2][0]
    assert "emo_gen" not in plain.gen(2, batch["x"], batch["d1"], batch["d2"])  # off by default (consist = 0)
