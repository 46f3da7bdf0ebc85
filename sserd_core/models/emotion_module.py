"""SSERD's emotion module: cross-attention emotion extractor + 2-layer transformer.

Given the source face's W+ codes (query) and a reference face's codes (key/value), it
produces an *editing vector* ``Δw`` ``[B, n_styles, d]`` that is added to the source codes
before decoding (``w + Δw``). Cross-attention lets every source layer code pick the
emotion-bearing parts of the reference codes; the transformer refines them.

Official hyper-parameters (SSERD ``models/psp.py``): cross-attention ``d_model=512``,
4 heads, feed-forward 1024, GELU, post-norm; transformer ``dim=512, depth=2, heads=8,
dim_head=64, mlp_dim=1`` (pre-norm blocks, a final LayerNorm). Parameter names follow
the official ``cross_attention.*`` / ``transformer.*`` keys.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class CrossAttention(nn.Module):
    """Post-norm cross-attention block: ``x = norm2(q + MHA(q, kv, kv)); x = norm3(x + FFN(x))``.

    ``norm1`` exists (unused) because the official module defines it and its checkpoints
    carry its weights. Tensors are batch-first ``[B, L, d]``.
    """

    def __init__(self, d_model: int, nhead: int = 4, dim_feedforward: int = 1024):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.activation = nn.GELU()

    def forward(self, query: torch.Tensor, memory: torch.Tensor, return_attention: bool = False):
        attended, weights = self.multihead_attn(query, memory, memory, need_weights=return_attention,
                                                average_attn_weights=False)
        x = self.norm2(query + attended)
        x = self.norm3(x + self.linear2(self.activation(self.linear1(x))))
        return (x, weights) if return_attention else x


class Attention(nn.Module):
    """Pre-norm multi-head self-attention (``norm``, fused ``to_qkv``, ``to_out.0``)."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.project_out = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim)) if self.project_out else nn.Identity()

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class FeedForward(nn.Module):
    """Pre-norm MLP ``LayerNorm → Linear → GELU → Linear`` (indices 0, 1, 4 as in the official ``net``)."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden_dim), nn.GELU(), nn.Identity(),
                                 nn.Linear(hidden_dim, dim), nn.Identity())

    def forward(self, x):
        return self.net(x)


class Transformer(nn.Module):
    """``depth`` residual (attention, MLP) blocks and a final LayerNorm, over the ``n_styles`` tokens."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(nn.ModuleList([Attention(dim, heads, dim_head), FeedForward(dim, mlp_dim)])
                                    for _ in range(depth))

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


class EmotionModule(ModelMixin, ConfigMixin):
    """Emotion extractor: ``Δw = Transformer(CrossAttention(q=w_source, kv=w_reference))``.

    Config: ``d_model`` (= the generator's style dim, 512), ``nhead`` (4),
    ``dim_feedforward`` (1024), ``depth`` (2), ``heads`` (8), ``dim_head`` (64), ``mlp_dim`` (1).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, d_model: int = 512, nhead: int = 4, dim_feedforward: int = 1024, depth: int = 2,
                 heads: int = 8, dim_head: int = 64, mlp_dim: int = 1):
        super().__init__()
        self.cross_attention = CrossAttention(d_model, nhead, dim_feedforward)
        self.transformer = Transformer(d_model, depth, heads, dim_head, mlp_dim)

    def forward(self, source_codes: torch.Tensor, reference_codes: torch.Tensor, return_attention: bool = False):
        """Editing vector.

        - ``source_codes``: ``[B, L, d]`` W+ codes of the face to edit (query; in SSERD
          these include ``latent_avg``).
        - ``reference_codes``: ``[B, Lr, d]`` encoder codes of the reference face (key and
          value; in SSERD *without* ``latent_avg``, exactly as the encoder outputs them).

        Returns ``Δw`` ``[B, L, d]`` (and, with ``return_attention``, the cross-attention
        weights ``[B, nhead, L, Lr]``, rows summing to 1).
        """
        if source_codes.ndim != 3 or reference_codes.ndim != 3:
            raise ValueError("source_codes and reference_codes must be [B, L, d]")
        if reference_codes.shape[0] == 1 and source_codes.shape[0] > 1:
            reference_codes = reference_codes.expand(source_codes.shape[0], -1, -1)
        if return_attention:
            x, weights = self.cross_attention(source_codes, reference_codes, return_attention=True)
            return self.transformer(x), weights
        return self.transformer(self.cross_attention(source_codes, reference_codes))
