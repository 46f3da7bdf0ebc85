"""pSp / StyleGANEX encoder with an IR-SE-50 backbone (the SSERD encoder).

Input: an aligned face ``[B, 3, H, W]`` in −1…1 (H, W multiples of 32; 256×256 in SSERD).
Outputs (see :meth:`PSPEncoder.forward`):

- W+ codes ``[B, n_styles, style_dim]`` from "gradual style blocks" on a feature pyramid
  (coarse codes 0–2 from the 1/16 map, middle 3–6 from 1/8, fine 7+ from 1/4);
- the StyleGANEX first-layer feature ``f`` ``[B, C4, H/8, W/8]`` (and a 3-channel RGB skip
  for the first ToRGB) that replaces StyleGAN's 4×4 constant input;
- the skip features (1/8 … 1/1) that the ``fusion`` layers mix into the decoder.

Parameter names follow the official implementation (``encoder.*`` in a SSERD checkpoint).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn import functional as F

from .stylegan2 import EqualLinear

#: IR-50 units per stage (the only depth SSERD uses; the feature taps below assume it)
IR50_UNITS = (3, 4, 14, 3)


class SEModule(nn.Module):
    """Squeeze-and-excitation: channel gates from global average pooling (``fc1``/``fc2`` 1×1 convs)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, max(1, channels // reduction), 1, bias=False)
        self.fc2 = nn.Conv2d(max(1, channels // reduction), channels, 1, bias=False)

    def forward(self, x):
        g = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(g))))


class BottleneckIRSE(nn.Module):
    """IR-SE residual unit: BN → 3×3 conv → PReLU → 3×3 conv (stride) → BN → SE, plus shortcut."""

    def __init__(self, in_channel: int, depth: int, stride: int):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, 16),
        )

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class GradualStyleBlock(nn.Module):
    """Strided 3×3 convs (log2(spatial) of them) → global pool → EqualLinear: one W code ``[B, out_c]``."""

    def __init__(self, in_c: int, out_c: int, spatial: int, max_pooling: bool = False):
        super().__init__()
        self.out_c = out_c
        self.max_pooling = max_pooling
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            layers += [nn.Conv2d(out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x):
        x = self.convs(x)
        x = F.adaptive_max_pool2d(x, 1) if self.max_pooling else F.adaptive_avg_pool2d(x, 1)
        return self.linear(x.flatten(1))


class AdaptiveInstanceNorm(nn.Module):
    """Instance norm with scale/shift predicted from a condition (``style``: Linear ``cond → 2·C``)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = nn.Linear(cond_dim, channels * 2)
        with torch.no_grad():
            self.style.bias[:channels] = 1
            self.style.bias[channels:] = 0

    def forward(self, x, cond):
        gamma, beta = self.style(cond)[:, :, None, None].chunk(2, 1)
        return gamma * self.norm(x) + beta


class FusionLayer(nn.Module):
    """Fuse an encoder skip feature into the decoder feature (StyleGANEX skip connection).

    ``feat`` ``[B, Cin, h, w]`` (encoder) is mapped to ``Cout`` channels; with
    ``use_att > 0`` it is gated by a mask predicted from the decoder feature and the
    editing vector (VToonify-style), then ``fusion_out`` mixes ``[out, feat]`` back to
    ``Cout`` channels and, with ``use_skip_torgb``, ``fusion_skip`` mixes it into the RGB skip.
    """

    def __init__(self, in_channel: int, out_channel: int, use_skip_torgb: bool = True, use_att: int = 0,
                 style_dim: int = 512):
        super().__init__()
        self.transform = nn.Sequential(nn.Conv2d(in_channel, out_channel, 3, 1, 1), nn.LeakyReLU())
        self.fusion_out = nn.Conv2d(out_channel * 2, out_channel, 3, 1, 1)
        with torch.no_grad():  # start as identity on the decoder feature
            self.fusion_out.weight.mul_(0.01)
            self.fusion_out.weight[:, :out_channel, 1, 1] += torch.eye(out_channel)
        self.use_skip_torgb = use_skip_torgb
        if use_skip_torgb:
            self.fusion_skip = nn.Conv2d(3 + out_channel, 3, 3, 1, 1)
            with torch.no_grad():
                self.fusion_skip.weight.mul_(0.01)
                self.fusion_skip.weight[:, :3, 1, 1] += torch.eye(3)
        self.use_att = use_att
        if use_att:
            layers: list[nn.Module] = [nn.Linear(style_dim, out_channel)]
            for _ in range(use_att):
                layers += [nn.LeakyReLU(0.2), nn.Linear(out_channel, out_channel)]
            layers.append(nn.LeakyReLU(0.2))
            self.linear = nn.Sequential(*layers)
            self.norm = AdaptiveInstanceNorm(out_channel * 2, out_channel)
            self.conv = nn.Conv2d(out_channel * 2, 1, 3, 1, 1, bias=True)

    def forward(self, feat, out, skip, editing_w: Optional[torch.Tensor] = None):
        x = self.transform(feat)
        if self.use_att and editing_w is not None:
            cond = self.linear(editing_w)
            mask = torch.tanh(F.relu(self.conv(self.norm(torch.cat([out, (out - x).abs()], 1), cond))))
            x = x * mask
        out = self.fusion_out(torch.cat([out, x], 1))
        if self.use_skip_torgb:
            skip = self.fusion_skip(torch.cat([skip, x], 1))
        return out, skip


class PSPEncoder(ModelMixin, ConfigMixin):
    """GradualStyleEncoder of pSp in its StyleGANEX form (IR-SE-50 backbone).

    Config: ``n_styles`` (W+ codes, 2·log2(size) − 2 = 18 for a 1024 generator),
    ``style_dim`` (512), ``widths`` (backbone stage widths, official ``(64, 128, 256, 512)``),
    ``decoder_channels`` (generator channels at StyleGAN resolutions 4…256, the fusion
    layers' outputs), ``use_skip`` / ``skip_max_layer`` (how many fusion layers, ≤ 7),
    ``use_skip_torgb``, ``use_att`` (MLP depth of the fusion attention, 0 = none),
    ``max_pooling``.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, n_styles: int = 18, style_dim: int = 512, widths: Sequence[int] = (64, 128, 256, 512),
                 decoder_channels: Sequence[int] = (512, 512, 512, 512, 512, 256, 128), use_skip: bool = True,
                 skip_max_layer: int = 7, use_skip_torgb: bool = False, use_att: int = 1, max_pooling: bool = False):
        super().__init__()
        e1, e2, e3, e4 = widths
        self.input_layer = nn.Sequential(nn.Conv2d(3, e1, 3, 1, 1, bias=False), nn.BatchNorm2d(e1), nn.PReLU(e1))
        units = []
        in_c = e1
        for depth, n in zip(widths, IR50_UNITS):
            units.append(BottleneckIRSE(in_c, depth, 2))
            units += [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
            in_c = depth
        self.body = nn.Sequential(*units)
        s1 = IR50_UNITS[0]
        s2 = s1 + IR50_UNITS[1]
        s3 = s2 + IR50_UNITS[2]
        # taps into the body: end of stage 1 (1/2), stage 2 (1/4), two inside stage 3, end of stage 3 (1/8), stage 4 (1/16)
        self._taps = {s1 - 1: "c128", s2 - 1: "c1", s2 + 3: "c21", s2 + 8: "c22", s3 - 1: "c2", len(units) - 1: "c3"}
        self.coarse_ind, self.middle_ind = 3, 7
        self.styles = nn.ModuleList(
            GradualStyleBlock(e4, style_dim, 16 if i < self.coarse_ind else 32 if i < self.middle_ind else 64,
                              max_pooling) for i in range(n_styles))
        self.latlayer1 = nn.Conv2d(e3, e4, 1)
        self.latlayer2 = nn.Conv2d(e2, e4, 1)
        self.featlayer = nn.Conv2d(3 * e3, decoder_channels[0], 1)
        self.skiplayer = nn.Conv2d(3 * e3, 3, 1)
        self.fusion = None
        if use_skip:
            skip_in = [e3, e3, e3, e3, e2, e1, e1]
            n_fusion = max(1, min(len(skip_in), skip_max_layer))
            self.fusion = nn.ModuleList(
                FusionLayer(skip_in[k], decoder_channels[k], use_skip_torgb, use_att, style_dim)
                for k in range(n_fusion))

    def forward(self, x: torch.Tensor, return_features: bool = True):
        """Encode ``x`` ``[B, 3, H, W]`` (−1…1).

        Returns ``codes`` ``[B, n_styles, style_dim]`` (relative to ``latent_avg``, which
        the caller adds) and, if ``return_features``, ``first_layer`` = ``(f, f_rgb)`` with
        ``f`` ``[B, C4, H/8, W/8]`` and ``f_rgb`` ``[B, 3, H/8, W/8]``, and ``skips`` — the
        encoder features for the fusion layers, coarse to fine:
        ``[c2, c2, c22, c21]`` at 1/8, ``c1`` at 1/4, ``c128`` at 1/2, ``c256`` at 1/1.
        """
        x = self.input_layer(x)
        taps = {"c256": x}
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self._taps:
                taps[self._taps[i]] = x
        c3, c2, c1 = taps["c3"], taps["c2"], taps["c1"]
        latents = [self.styles[j](c3) for j in range(self.coarse_ind)]
        p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer1(c2)
        latents += [self.styles[j](p2) for j in range(self.coarse_ind, self.middle_ind)]
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer2(c1)
        latents += [self.styles[j](p1) for j in range(self.middle_ind, len(self.styles))]
        codes = torch.stack(latents, 1)
        if not return_features:
            return codes
        mid = torch.cat([taps["c21"], taps["c22"], c2], 1)
        first_layer = (self.featlayer(mid), self.skiplayer(mid))
        skips = [c2, c2, taps["c22"], taps["c21"], c1, taps["c128"], taps["c256"]]
        return codes, first_layer, skips
