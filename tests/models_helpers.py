"""Shared helpers for the neural-backend tests: tiny checkpoints with the official layout."""

from __future__ import annotations

import pytest
import torch

from sserd_core.models.manifest import constant, official_layout

#: a reduced-size SSERD: the official key layout (1024 StyleGAN size, IR-SE-50, 7 fusion layers,
#: 2-layer transformer) with every width shrunk; the stage widths E1..E4 all differ, as in the official
#: 64/128/256/512, so every stage opens with a conv shortcut
TINY_SYMBOLS = {"S": 32, "E1": 16, "E2": 24, "E3": 32, "E4": 48, "G4": 32, "G8": 32, "G16": 32, "G32": 32,
                "G64": 16, "G128": 8, "G256": 4, "G512": 2, "G1024": 1, "F": 32, "I": 32, "M": 1}
TINY_INPUT = 64  # aligned crop side → decoded at 64 * 1024 / 256 = 256 px
TINY_OPTS = {"output_size": 1024, "use_skip": True, "skip_max_layer": 7, "use_att": 1, "use_skip_torgb": False,
             "start_from_latent_avg": True, "learn_in_w": False, "encoder_type": "GradualStyleEncoder",
             "input_nc": 3, "feat_ind": 0, "lpips_lambda": 0.8}


def official_tiny_checkpoint(seed: int = 0) -> dict:
    """A checkpoint dict shaped like the official ``torch.save`` output, built from the manifest."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    latent_avg = None
    for key, spec in official_layout(TINY_SYMBOLS).items():
        shape = spec["shape"]
        if spec["kind"] == "constant":
            t = constant(spec["value"]).reshape(shape).clone()
        elif key.endswith("num_batches_tracked"):
            t = torch.tensor(100, dtype=torch.long)
        elif key.endswith("running_var"):
            t = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith("running_mean"):
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            t = 0.3 * torch.randn(shape, generator=g)
        if key == "latent_avg":
            latent_avg = t
        else:
            state[key] = t
    return {"state_dict": state, "latent_avg": latent_avg, "opts": dict(TINY_OPTS),
            "latent_pool": {"M003": {"happy": [torch.zeros(18, 32)]}},
            "discriminator": tiny_official_discriminator(seed).state_dict()}


#: widths of a tiny discriminator with the official StyleGAN2 layout, built for 256 px so 64 px faces leave 1×1
TINY_DISC_CHANNELS = {256: 4, 128: 4, 64: 4, 32: 4, 16: 4, 8: 4, 4: 8}


def tiny_official_discriminator(seed: int = 0):
    from sserd_core.train.losses import OfficialDiscriminator

    torch.manual_seed(seed + 1)
    return OfficialDiscriminator(256, channels=TINY_DISC_CHANNELS)


#: a small SSERDNet built directly (not through conversion): 64 px crops in, 64 px faces out
TINY_NET = dict(size=256, style_dim=32, channel_base=512, channel_max=32, encoder_widths=(16, 24, 32, 48),
                dim_feedforward=32, heads=8, dim_head=4, input_size=64)


def tiny_net(seed: int = 0, **overrides):
    from sserd_core.models import SSERDNet

    torch.manual_seed(seed)
    net = SSERDNet(**dict(TINY_NET, **overrides))
    with torch.no_grad():  # non-trivial buffers too, so a round trip that dropped them would show
        net.latent_avg.normal_()
        for name, buf in net.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return net.eval()


def populate_hf_cache(cache_dir, repo_id: str, folder, commit: str = "0123456789abcdef0123456789abcdef01234567"):
    """Lay out ``folder``'s files as huggingface_hub's cache does for ``repo_id`` at ``main``."""
    import shutil
    from pathlib import Path

    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in Path(folder).iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snap


@pytest.fixture
def one_thread():
    """Run torch single-threaded: these tiny networks are overhead-bound, and on the shared
    2-core CI machine two OpenMP threads competing with other jobs are ~10x slower than one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
