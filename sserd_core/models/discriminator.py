"""The official SSERD discriminator (StyleGAN2's, with the official state-dict keys).

A network of the models layer: ``sserd convert`` keeps an official checkpoint's discriminator with it,
and training (``sserd_core.train``) continues it.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

from ..errors import SSERDError


class _ConvLayer(nn.Sequential):
    """StyleGAN2 ConvLayer: [Blur] → EqualConv2d (stride 2 when downsampling) → [FusedLeakyReLU] (official keys)."""

    def __init__(self, cin: int, cout: int, k: int, downsample: bool = False, bias: bool = True, activate: bool = True):
        from ..models.ops import FusedLeakyReLU
        from ..models.stylegan2 import Blur, EqualConv2d

        layers = []
        if downsample:
            p = (4 - 2) + (k - 1)
            layers.append(Blur([1, 3, 3, 1], pad=((p + 1) // 2, p // 2)))
        layers.append(EqualConv2d(cin, cout, k, padding=0 if downsample else k // 2, stride=2 if downsample else 1,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(cout, bias=bias))
        super().__init__(*layers)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = _ConvLayer(cin, cin, 3)
        self.conv2 = _ConvLayer(cin, cout, 3, downsample=True)
        self.skip = _ConvLayer(cin, cout, 1, downsample=True, activate=False, bias=False)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / 2 ** 0.5


class OfficialDiscriminator(nn.Module):
    """The official SSERD discriminator (``models/stylegan2/model.py``: StyleGAN2's, built for ``size`` — 1024 in the
    official coaches — with ``channel_multiplier`` 2, minibatch-stddev, and a final linear on the 1×1 map that a
    256 px input leaves), with the official state-dict keys, so the ``discriminator`` of an official checkpoint
    loads into it strictly. Inputs larger than ``size`` are randomly cropped to it, as the official ``forward``."""

    def __init__(self, size: int = 1024, channel_multiplier: int = 2, channels: Optional[dict] = None):
        super().__init__()
        from ..models.stylegan2 import EqualLinear

        ch = channels or {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier,
                          128: 128 * channel_multiplier, 256: 64 * channel_multiplier, 512: 32 * channel_multiplier,
                          1024: 16 * channel_multiplier}
        self.size = size
        convs: list[nn.Module] = [_ConvLayer(3, ch[size], 1)]
        c = ch[size]
        log = int(math.log2(size))
        for i in range(log, 2, -1):
            convs.append(_ResBlock(c, ch[2 ** (i - 1)]))
            c = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.final_conv = _ConvLayer(c + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4], ch[4], activation="fused_lrelu"), EqualLinear(ch[4], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-1]
        if h > self.size:
            i, j = (int(torch.randint(0, h + 1 - self.size, (1,))) for _ in range(2))
            x = x[:, :, i:i + self.size, j:j + self.size]
        out = self.convs(x)
        b, c, hh, ww = out.shape
        group = min(b, 4)
        while b % group:  # the official code needs the batch divisible by the group
            group -= 1
        sd = out.view(group, -1, 1, c, hh, ww)
        sd = torch.sqrt(sd.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        out = torch.cat([out, sd.repeat(group, 1, hh, ww)], 1)
        out = self.final_conv(out).view(b, -1)
        if out.shape[1] != self.final_linear[0].weight.shape[1]:
            raise SSERDError(f"The official discriminator (built for {self.size} px) leaves a "
                             f"{hh}×{ww} map for {h} px faces; it needs faces of {self.size // 4} px "
                             "(256 px for the official one), as in the official training.")
        return self.final_linear(out).squeeze(1)

    @classmethod
    def from_state_dict(cls, sd: dict) -> "OfficialDiscriminator":
        """Build the discriminator an official ``discriminator`` state dict was saved from (size and channel widths
        read from its shapes) and load it strictly."""
        n_blocks = len({k.split(".")[1] for k in sd if k.startswith("convs.") and k.split(".")[1] != "0"})
        size = 2 ** (n_blocks + 2)
        widths = [int(sd["convs.0.0.weight"].shape[0])] + [int(sd[f"convs.{i}.conv2.1.weight"].shape[0])
                                                           for i in range(1, n_blocks + 1)]
        channels = {size // 2 ** i: w for i, w in enumerate(widths)}
        net = cls(size, channels=channels)
        missing, unexpected = net.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()}, strict=False)
        # the Blur kernels are constants (buffers) that some exports omit; every parameter must match
        missing = [k for k in missing if not k.endswith(".kernel")]
        if missing or unexpected:
            raise SSERDError(f"The checkpoint's discriminator does not match the official layout (missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]}).")
        return net
