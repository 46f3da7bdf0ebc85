"""InfoNCE over the latent memory pool, the pool's bookkeeping, reconstruction losses, loss-network loading."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sserd_core.errors import SSERDError
from sserd_core.train import losses as L


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def unit(*v):
    t = torch.tensor(v, dtype=torch.float32)
    return t / t.norm()


def test_pool_is_per_actor_per_emotion_fifo_of_size_8():
    pool = L.LatentPool(size=8)
    codes = torch.arange(20, dtype=torch.float32)[:, None, None].expand(20, 2, 3).clone()
    pool.add(codes[:10], ["A"] * 10, [4] * 10)           # 10 happy codes of A: only the last 8 stay
    pool.add(codes[10:13], ["B"] * 3, [4] * 3)           # B's happy slot is separate
    pool.add(codes[13:15], ["A", "A"], [5, 5])           # A's sad slot
    assert pool.count("A", 4) == 8 and pool.count("B", 4) == 3 and pool.count("A", 5) == 2
    assert [int(z[0, 0]) for z in pool.pool["A"][4]] == list(range(2, 10))   # oldest dropped first
    codes[:] = -1                                        # the pool keeps detached copies
    assert int(pool.pool["A"][4][0][0, 0]) == 2
    # query: positive from (A, happy), one negative per other emotion of A only (never B's)
    g = torch.Generator().manual_seed(0)
    keys = pool.query("A", 4, g)
    assert keys.shape == (2, 2, 3)
    assert 2 <= int(keys[0, 0, 0]) <= 9 and int(keys[1, 0, 0]) in (13, 14)
    assert pool.query("B", 4) is None                    # B has no other emotion yet: no negatives
    assert pool.query("A", 0) is None                    # no positive
    # checkpoint round trip
    other = L.LatentPool(1)
    other.load_state_dict(pool.state_dict())
    assert other.size == 8 and other.count("A", 4) == 8
    assert torch.equal(torch.stack(other.pool["A"][4]), torch.stack(pool.pool["A"][4]))


def test_info_nce_value_matches_the_formula_on_hand_made_codes():
    pool = L.LatentPool(8)
    pos, neg1, neg2 = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
    pool.add(torch.stack([pos, neg1, neg2])[:, None], ["A"] * 3, [4, 1, 5])   # [N, L=1, d=3]
    z = unit(2, 1, 0)[None]                                                  # [L=1, d]
    loss = L.info_nce(z[None], ["A"], [4], pool, temperature=0.1)
    s = torch.stack([F.cosine_similarity(z[0], k, dim=0) for k in (pos, neg1, neg2)]) / 0.1
    expected = -s[0] + torch.logsumexp(s, 0)
    assert math.isclose(float(loss), float(expected), rel_tol=1e-4, abs_tol=1e-6)
    # by hand: cos = 2/√5, 1/√5, 0
    c = torch.tensor([2, 1, 0]) / 5 ** 0.5 / 0.1
    assert math.isclose(float(loss), float(-c[0] + torch.logsumexp(c, 0)), rel_tol=1e-4, abs_tol=1e-6)
    # multi-layer codes: similarity is the per-layer cosine averaged over layers
    pool2 = L.LatentPool(8)
    pool2.add(torch.stack([torch.stack([pos, pos]), torch.stack([neg1, pos])]), ["A", "A"], [4, 1])
    z2 = torch.stack([pos, neg1])
    loss2 = L.info_nce(z2[None], ["A"], [4], pool2, temperature=0.1)
    sims = torch.tensor([(1 + 0) / 2, (0 + 0) / 2]) / 0.1
    assert math.isclose(float(loss2), float(-sims[0] + torch.logsumexp(sims, 0)), rel_tol=1e-4, abs_tol=1e-6)


def test_info_nce_gradient_pulls_toward_positive_and_away_from_negatives():
    pool = L.LatentPool(8)
    pos, neg = unit(1, 0, 0), unit(0, 1, 0)
    pool.add(torch.stack([pos, neg])[:, None], ["A", "A"], [4, 1])
    z = unit(1, 1, 0.5)[None, None].clone().requires_grad_(True)
    loss = L.info_nce(z, ["A"], [4], pool)
    loss.backward()
    g = z.grad[0, 0]
    assert g[0] < 0 < g[1]      # descent (−grad) increases the positive's component, decreases the negative's
    # a code already at the positive has lower loss than one at the negative
    at_pos = L.info_nce(pos[None, None], ["A"], [4], pool)
    at_neg = L.info_nce(neg[None, None], ["A"], [4], pool)
    assert float(at_pos) < math.log(2) < float(at_neg)
    # one gradient step lowers the loss
    with torch.no_grad():
        z2 = z - 0.1 * z.grad
    assert float(L.info_nce(z2, ["A"], [4], pool)) < float(loss.detach())
    # the codes in the pool get no gradient (they are detached memories)
    assert not any(k.requires_grad for k in pool.pool["A"][4])


def test_info_nce_none_without_pool_entries():
    assert L.info_nce(torch.ones(2, 1, 3), ["A", "B"], [1, 2], L.LatentPool()) is None


def test_reconstruction_loss_weights_and_paired_mask():
    x = torch.zeros(2, 3, 8, 8)
    y = torch.ones(2, 3, 8, 8)
    crit = L.ReconstructionLoss(weights={"id": 0.2, "l2": 1.0, "perceptual": 0.8, "adv": 0.1})
    total, parts = crit(x, y)
    assert set(parts) == {"l2"} and math.isclose(float(total), 1.0)          # no networks: only L2
    total, parts = crit(x, y, weight=torch.tensor([1.0, 0.0]))
    y2 = y.clone()
    y2[1] = 5                                                                 # the unweighted sample is ignored
    assert math.isclose(float(crit(x, y2, weight=torch.tensor([1.0, 0.0]))[0]), 1.0)
    assert "l2" not in crit(x, y, weight=torch.zeros(2))[1]


def test_missing_loss_networks_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(SSERDError, match="identity network.*does not exist"):
        L.load_loss_network(tmp_path / "arcface.pt", "identity network (loss.identity_net)")
    bad = tmp_path / "notscript.pt"
    bad.write_bytes(b"not a torchscript file")
    with pytest.raises(SSERDError, match="perceptual network.*TorchScript"):
        L.load_loss_network(bad, "perceptual network (loss.perceptual_net)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(SSERDError, match=r"identity network \(loss.identity_net\) 'someone/arcface-ts/model.pt' is missing.*HF_HUB_OFFLINE"):
        L.load_loss_network("someone/arcface-ts", "identity network (loss.identity_net)")
    assert L.load_loss_network(None, "x") is None


def test_loss_network_loads_torchscript_frozen(tmp_path):
    from train_helpers import save_standin_loss_nets

    ident, perc = save_standin_loss_nets(tmp_path)
    net = L.load_loss_network(ident, "identity network")
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 16)
    assert not any(p.requires_grad for p in net.parameters())
    pnet = L.load_loss_network(tmp_path, "perceptual network", filename=perc.name)   # a folder + file name
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(pnet(x, x), torch.zeros(2), atol=1e-6) and (pnet(x, -x) > 0).all()


def test_discriminator_shapes_and_losses():
    d = L.Discriminator(64, 8)
    out = d(torch.zeros(3, 3, 64, 64))
    assert out.shape == (3,)
    real, fake = torch.full((4,), 5.0), torch.full((4,), -5.0)
    assert float(L.discriminator_loss(real, fake)) < 0.02 < float(L.discriminator_loss(fake, real))
    assert float(L.generator_adv_loss(real)) < float(L.generator_adv_loss(fake))


def test_discriminator_skip_equals_a_strided_1x1_convolution():
    """The skip path is computed as stride-1 on the subsampled input: same output as the original
    1x1 stride-2 convolution with the same weights (forward only: that direction is safe everywhere)."""
    torch.manual_seed(0)
    block = L._DBlock(8, 16)
    for size in (16, 15):
        x = torch.randn(2, 8, size, size)
        ref = F.conv2d(x, block.skip.weight, stride=2)
        got = block.skip(x[:, :, ::2, ::2].contiguous())
        assert got.shape == ref.shape
        assert torch.allclose(got, ref, atol=1e-6)


def test_discriminator_backward_on_channels_last_few_channels_does_not_crash(tmp_path):
    """Regression: torch's oneDNN corrupted the heap (SIGABRT / segfault on AVX-512 CPUs) in the weight
    gradient of a 1x1 stride-2 conv on channels-last inputs with < 16 channels — the shape of the tiny
    config's discriminator fed from NHWC numpy batches. Run in a child process so a crash is a failure,
    not the end of the test session."""
    import subprocess
    import sys
    code = (
        "import numpy as np, torch\n"
        "from sserd_core.train.losses import Discriminator, discriminator_loss\n"
        "torch.set_num_threads(1)\n"
        "d = Discriminator(size=64, channels=8)\n"
        "for _ in range(20):\n"
        "    nhwc = np.random.rand(4, 64, 64, 3).astype(np.float32)\n"
        "    x = torch.from_numpy(nhwc).permute(0, 3, 1, 2)\n"                      # channels-last strides
        "    y = torch.randn(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)\n"
        "    loss = discriminator_loss(d(x), d(y))\n"
        "    d.zero_grad(); loss.backward()\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


def _tiny_stage1(tmp_path):
    import tomllib

    from sserd_core.train.config import TrainConfig
    from sserd_core.train.data import FrameCache
    from sserd_core.train.trainer import build_model
    from train_helpers import TINY_CONFIG, make_synthetic_cache

    cache = make_synthetic_cache(tmp_path / "cache", actors=("A1",), emotions=("neutral", "happy", "sad"), frames=4)
    raw = tomllib.loads(TINY_CONFIG.read_text())
    raw["data"]["cache"] = str(cache)
    torch.manual_seed(0)
    return build_model(TrainConfig.from_dict(raw)), FrameCache(cache)


def test_stage1_nce_is_fed_the_official_codes(tmp_path):
    """Official coach_finetune_stage1: the W+ codes the decoder returns (encoder output + latent_avg), every layer;
    similarity = cosine per layer averaged over the layers."""
    from sserd_core.train.trainer import GeneratorStep

    net, data = _tiny_stage1(tmp_path)
    net.eval()
    x = data.tensor([0, 1])
    with torch.no_grad():
        out = GeneratorStep(net, noise="zero")(1, x, x)
        raw, w, _, _ = net.encode(x)
    assert torch.equal(out["codes"], w) and torch.allclose(w, raw + net.latent_avg)
    assert out["codes"].shape == (2, net.n_styles, net.config.style_dim)


def test_nce_moves_on_two_clearly_different_emotions(tmp_path):
    """The loss has a signal through the real encoder: optimising it alone on happy vs sad frames of one actor
    separates their codes (0.1·ln 2 would be no signal at all). On the full stage-1 loss of an *untrained* tiny
    encoder the term stays at 0.1·ln K for 100 steps: every input gets nearly the same code (see docs/TRAINING.md)."""
    import math

    net, data = _tiny_stage1(tmp_path)
    net.train()
    happy, sad = data.by["A1"][4][:2], data.by["A1"][5][:2]
    x = data.tensor(np.concatenate([happy, sad]))
    actors, emotions = ["A1"] * 4, [4, 4, 5, 5]
    pool = L.LatentPool()
    with torch.no_grad():
        pool.add(net.encode(x)[1], actors, emotions)
    opt = torch.optim.Adam(net.encoder.parameters(), lr=1e-3)
    losses = []
    for step in range(24):
        w = net.encode(x)[1]
        loss = L.info_nce(w, actors, emotions, pool, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        pool.add(w, actors, emotions)
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(math.log(2), abs=0.01)  # codes all alike at the start
    assert losses[-1] < 0.6 * math.log(2), losses
