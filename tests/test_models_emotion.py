"""SSERD's emotion module: shapes, gradients, and the no-edit behaviour it learns."""

import pytest
import torch

from models_helpers import one_thread  # noqa: F401 (fixture)
from sserd_core.models import EmotionModule

pytestmark = pytest.mark.usefixtures("one_thread")




def small_module(**kw):
    cfg = dict(d_model=32, nhead=4, dim_feedforward=64, depth=2, heads=8, dim_head=4, mlp_dim=1)
    cfg.update(kw)
    return EmotionModule(**cfg)


def test_official_defaults():
    m = EmotionModule()
    assert m.config.d_model == 512 and m.config.nhead == 4 and m.config.depth == 2
    assert m.cross_attention.multihead_attn.num_heads == 4
    assert m.transformer.layers[0][0].to_qkv.weight.shape == (3 * 8 * 64, 512)
    assert m.transformer.layers[0][1].net[1].weight.shape == (1, 512)


def test_attention_shapes_and_normalisation():
    torch.manual_seed(0)
    m = small_module().eval()
    src, ref = torch.randn(3, 18, 32), torch.randn(3, 10, 32)
    edit, attn = m(src, ref, return_attention=True)
    assert edit.shape == (3, 18, 32)
    assert attn.shape == (3, 4, 18, 10)  # [B, heads, source tokens, reference tokens]
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 4, 18))
    # one reference broadcasts over a batch of sources
    assert m(src, ref[:1]).shape == (3, 18, 32)
    torch.testing.assert_close(m(src[:1], ref[:1]), m(src, ref[:1])[:1])


def test_gradients_reach_every_used_parameter():
    torch.manual_seed(0)
    m = small_module()
    src = torch.randn(2, 6, 32, requires_grad=True)
    ref = torch.randn(2, 6, 32, requires_grad=True)
    m(src, ref).pow(2).sum().backward()
    assert src.grad.abs().sum() > 0 and ref.grad.abs().sum() > 0
    no_grad = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    # norm1 is defined but unused in the official CrossAttention (kept for checkpoint compatibility)
    assert sorted(no_grad) == ["cross_attention.norm1.bias", "cross_attention.norm1.weight"]


def _toy_batch(emotions, n, gen):
    """Neutral source faces of random identities; references of other identities with a random emotion.

    A code is ``identity + emotion``; the edit that turns the source into the reference's
    emotion is ``emotion[ref] - emotion[neutral]``, zero for a neutral reference.
    """
    k, length, d = emotions.shape
    src = torch.randn(n, length, d, generator=gen) + emotions[0]
    kr = torch.randint(0, k, (n,), generator=gen)
    ref = torch.randn(n, length, d, generator=gen) + emotions[kr]
    return src, ref, emotions[kr] - emotions[0], kr


def test_learns_zero_edit_when_reference_is_the_source():
    torch.manual_seed(0)
    emotions = torch.randn(3, 4, 32)
    m = small_module()

    def ratio():
        with torch.no_grad():
            src, ref, _, kr = _toy_batch(emotions, 256, torch.Generator().manual_seed(1))
            same = m(src, src).norm(dim=-1).mean()
            emotional = m(src[kr != 0], ref[kr != 0]).norm(dim=-1).mean()
        return float(same / emotional)

    before = ratio()
    opt = torch.optim.Adam(m.parameters(), 5e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        src, ref, target, _ = _toy_batch(emotions, 32, gen)
        loss = (m(src, ref) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = ratio()
    assert before > 0.5, before  # untrained: same-code and emotional edits are alike in size
    assert after < 0.25, after   # trained: reference = source gives (close to) no edit
    with torch.no_grad():
        src, ref, target, kr = _toy_batch(emotions, 256, torch.Generator().manual_seed(2))
        err = (m(src, ref) - target).norm(dim=-1).mean() / target[kr != 0].norm(dim=-1).mean()
    assert err < 0.3, float(err)
