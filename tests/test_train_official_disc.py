"""Training continues the official discriminator of a converted checkpoint (official StyleGAN2 layout and keys)."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from models_helpers import TINY_INPUT, official_tiny_checkpoint
from sserd_core.models.convert import convert_checkpoint
from sserd_core.train import losses as L
from sserd_core.train.trainer import Trainer, TrainConfig
from train_helpers import make_synthetic_cache, save_standin_loss_nets, tiny_config_text


def test_official_discriminator_keys_and_forward():
    d = L.OfficialDiscriminator(1024)
    keys = list(d.state_dict())
    assert keys[:4] == ["convs.0.0.weight", "convs.0.1.bias", "convs.1.conv1.0.weight", "convs.1.conv1.1.bias"]
    assert "convs.1.skip.1.weight" in keys and "final_linear.1.bias" in keys and len(d.convs) == 9
    small = L.OfficialDiscriminator(256, channels={256: 4, 128: 4, 64: 4, 32: 4, 16: 4, 8: 4, 4: 8})
    assert small(torch.randn(3, 3, 64, 64)).shape == (3,)  # a 4x-smaller face leaves 1x1, as 256 px in the 1024 D


def test_training_continues_the_checkpoints_discriminator(tmp_path):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ckpt = official_tiny_checkpoint()
        model = tmp_path / "converted"
        convert_checkpoint(ckpt, model, input_size=TINY_INPUT)
        cache = make_synthetic_cache(tmp_path / "cache", actors=("A1", "A2"), emotions=("neutral", "happy"), frames=4)
        ident, perc = save_standin_loss_nets(tmp_path / "nets")
        cfg = tmp_path / "s.toml"
        cfg.write_text(tiny_config_text(cache, tmp_path / "run", ident, perc, pretrained=model, stage=2, max_steps=1,
                                        checkpoint_every=0, sample_every=0))
        tr = Trainer(TrainConfig.load(cfg), log=lambda m: None)
        disc = tr.acc.unwrap_model(tr.disc)
        assert isinstance(disc, L.OfficialDiscriminator)
        assert all(torch.equal(disc.state_dict()[k], v) for k, v in ckpt["discriminator"].items())
        out = tr.train(1)
        saved = load_file(str(out / "discriminator.safetensors"))  # the next stage continues the trained one
        assert any(not torch.equal(saved[k], v) for k, v in ckpt["discriminator"].items() if v.is_floating_point())
        # light: the project's small discriminator instead
        cfg.write_text(cfg.read_text().replace("[loss]\n", '[loss]\ndiscriminator = "light"\n', 1)
                       .replace(str(tmp_path / "run"), str(tmp_path / "run2")))
        tr2 = Trainer(TrainConfig.load(cfg), log=lambda m: None)
        assert isinstance(tr2.acc.unwrap_model(tr2.disc), L.Discriminator)
    finally:
        torch.set_num_threads(n)
