"""StyleGAN2 generator in StyleGANEX form (the SSERD decoder), pure PyTorch.

StyleGANEX turns StyleGAN2 into a fully convolutional network: its first layers are
dilated instead of upsampled, so the generator starts from an encoder feature map ``f``
of any size (``H/8 × W/8`` of the encoder's input) instead of the learned 4×4 constant.
Layers at StyleGAN resolutions 4…32 keep the spatial size of ``f`` (dilation 8, 4, 2, 1
emulates their receptive field); from resolution 64 on every block upsamples ×2. With
``size=1024`` a 256×256 aligned face gives a 1024×1024 output.

Parameter and buffer names are those of the official implementation (``decoder.*`` in a
SSERD / StyleGANEX checkpoint), so converted weights load with a strict key match.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn import functional as F

from .ops import FusedLeakyReLU, fused_leaky_relu, make_kernel, upfirdn2d


def generator_channels(size: int, channel_multiplier: int = 2, channel_base: int = 16384, channel_max: int = 512) -> dict:
    """Feature channels per StyleGAN resolution ``{4: …, 8: …, …, size: …}``.

    ``min(channel_max, channel_base * channel_multiplier // res)``; the defaults give the
    official table (512 up to 32, then 256·m, 128·m, 64·m, 32·m, 16·m for 64…1024).
    """
    return {2 ** i: int(min(channel_max, channel_base * channel_multiplier // 2 ** i))
            for i in range(2, int(math.log2(size)) + 1)}


def _blur3x3() -> torch.Tensor:
    """The 3×3 binomial kernel ``[1 2 1]ᵀ[1 2 1] / 16`` StyleGANEX uses to emulate upsampling at dilation."""
    k = torch.tensor([1.0, 2.0, 1.0])
    return (k[:, None] * k[None, :] / 16.0).view(1, 1, 3, 3)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    """×2 FIR upsampling (buffer ``kernel`` ``[k, k]``)."""

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, down=1, pad=self.pad)


class Blur(nn.Module):
    """FIR low-pass (buffer ``kernel`` ``[k, k]``), gain ``upsample_factor²`` after an upsampling conv."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor ** 2)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate: weight ``[out, in, k, k]`` ~ N(0,1) scaled by ``1/sqrt(fan_in)``."""

    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True, dilation=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride,
                        padding=self.padding, dilation=self.dilation)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate and learning-rate multiplier ``lr_mul``.

    ``weight`` ``[out, in]``, ``bias`` ``[out]``; ``activation='fused_lrelu'`` applies the
    scaled leaky ReLU after the bias.
    """

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and demodulated) convolution, optionally ×2 upsampling.

    ``weight`` ``[1, out, in, k, k]``; ``modulation`` maps a style ``[B, style_dim]`` to
    per-input-channel scales. With ``dilation > 1`` an upsampling layer does not change the
    spatial size: a dilated transposed 3×3 blur followed by a dilated transposed conv
    stands in for "upsample + blur + conv" (StyleGANEX), buffer ``blur_weight`` ``[1,1,3,3]``.
    """

    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False,
                 downsample=False, blur_kernel=(1, 3, 3, 1), dilation=1):
        super().__init__()
        self.kernel_size, self.in_channel, self.out_channel = kernel_size, in_channel, out_channel
        self.upsample, self.downsample, self.dilation = upsample, downsample, dilation
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
            if dilation > 1:
                self.register_buffer("blur_weight", _blur3x3())
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = (kernel_size - 1) // 2 * dilation
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, cin, h, w = x.shape
        s = self.modulation(style).view(b, 1, cin, 1, 1)
        weight = self.scale * self.weight * s  # [B, out, in, k, k]
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(b, self.out_channel, 1, 1, 1)
        k = self.kernel_size
        if self.upsample:
            x = x.reshape(1, b * cin, h, w)
            wt = weight.transpose(1, 2).reshape(b * cin, self.out_channel, k, k)
            if self.dilation > 1:
                d = self.dilation // 2
                x = F.conv_transpose2d(x, self.blur_weight.to(x.dtype).repeat(b * cin, 1, 1, 1), padding=0,
                                       groups=b * cin, dilation=d)
                out = F.conv_transpose2d(x, wt, padding=self.dilation, groups=b, dilation=d)
                return out.reshape(b, self.out_channel, out.shape[2], out.shape[3])
            out = F.conv_transpose2d(x, wt, padding=0, stride=2, groups=b)
            out = out.reshape(b, self.out_channel, out.shape[2], out.shape[3])
            return self.blur(out)
        if self.downsample:
            x = self.blur(x)
            x = x.reshape(1, b * cin, x.shape[2], x.shape[3])
            out = F.conv2d(x, weight.reshape(b * self.out_channel, cin, k, k), padding=0, stride=2, groups=b)
            return out.reshape(b, self.out_channel, out.shape[2], out.shape[3])
        x = x.reshape(1, b * cin, h, w)
        out = F.conv2d(x, weight.reshape(b * self.out_channel, cin, k, k), padding=self.padding, groups=b,
                       dilation=self.dilation)
        return out.reshape(b, self.out_channel, out.shape[2], out.shape[3])


class NoiseInjection(nn.Module):
    """Adds ``weight`` (``[1]``) × per-pixel noise; ``noise=None`` draws fresh N(0,1) noise."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        elif noise.shape[-2:] != x.shape[-2:]:
            noise = F.adaptive_avg_pool2d(noise, x.shape[-2:])
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """StyleGAN's learned 4×4 input ``input`` ``[1, C, 4, 4]`` (kept for checkpoint compatibility)."""

    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False, blur_kernel=(1, 3, 3, 1),
                 demodulate=True, dilation=1):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, demodulate=demodulate, dilation=dilation)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise=None, use_noise=True):
        out = self.conv(x, style)
        if use_noise:
            out = self.noise(out, noise=noise)
        return self.activate(out)


class ToRGB(nn.Module):
    """1×1 modulated conv to RGB plus the upsampled RGB skip of the previous level.

    ``bias`` ``[1, 3, 1, 1]``; at ``dilation > 1`` the skip keeps its size and a dilated
    3×3 blur (buffer ``blur_weight``) stands in for the ×2 upsampling.
    """

    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1), dilation=1):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.dilation = dilation
        if dilation > 1:
            self.register_buffer("blur_weight", _blur3x3())

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            if self.dilation == 1:
                skip = self.upsample(skip)
            else:
                c = skip.shape[1]
                d = self.dilation // 2
                skip = F.conv2d(skip, self.blur_weight.to(skip.dtype).repeat(c, 1, 1, 1), padding=d, groups=c,
                                dilation=d)
            out = out + skip
        return out


class StyleGANEXGenerator(ModelMixin, ConfigMixin):
    """The SSERD decoder: StyleGAN2 synthesis network in StyleGANEX (fully convolutional) form.

    Config: ``size`` (StyleGAN resolution, 1024 in SSERD), ``style_dim`` (W dimension,
    512), ``n_mlp`` (mapping layers, 8), ``channel_multiplier`` (2), ``channel_base`` /
    ``channel_max`` (channel table, see :func:`generator_channels`), ``blur_kernel``.

    :meth:`forward` takes W+ codes ``[B, n_latent, style_dim]`` (``n_latent = 2·log2(size) − 2``,
    18 at 1024) and the encoder's first-layer feature ``f`` ``[B, C4, h, w]``; it returns
    an image ``[B, 3, h·size/32, w·size/32]`` in about −1…1.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 channel_base: int = 16384, channel_max: int = 512, blur_kernel: Sequence[int] = (1, 3, 3, 1),
                 lr_mlp: float = 0.01):
        super().__init__()
        if size < 64 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 64, got {size}")
        blur_kernel = list(blur_kernel)
        self.size = size
        self.style_dim = style_dim
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp,
                                                              activation="fused_lrelu") for _ in range(n_mlp)])
        self.channels = generator_channels(size, channel_multiplier, channel_base, channel_max)
        c4 = self.channels[4]
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, style_dim, blur_kernel=blur_kernel, dilation=8)
        self.to_rgb1 = ToRGB(c4, style_dim, upsample=False)
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_channel = c4
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True, blur_kernel=blur_kernel,
                                         dilation=max(1, 32 // 2 ** (i - 1))))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel,
                                         dilation=max(1, 32 // 2 ** i)))
            self.to_rgbs.append(ToRGB(out_channel, style_dim, dilation=max(1, 32 // 2 ** (i - 1))))
            in_channel = out_channel
        self.n_latent = self.log_size * 2 - 2

    def forward(self, latent: torch.Tensor, first_layer_feature: torch.Tensor,
                skip_layer_features: Optional[Sequence[torch.Tensor]] = None, fusion: Optional[nn.ModuleList] = None,
                editing_w: Optional[torch.Tensor] = None, noise_mode: str = "zero",
                max_side: Optional[int] = None) -> torch.Tensor:
        """Synthesize images.

        - ``latent``: W+ ``[B, n_latent, style_dim]`` (encoder codes incl. ``latent_avg``).
        - ``first_layer_feature``: ``f`` ``[B, C4, h, w]`` replacing the 4×4 constant.
        - ``skip_layer_features`` / ``fusion``: encoder features and the encoder's fusion
          layers (StyleGANEX skip connections); ``None`` disables them.
        - ``editing_w``: ``[B, n_latent, style_dim]`` added to ``latent`` (the emotion edit);
          it also conditions the fusion layers' attention masks.
        - ``noise_mode``: ``"zero"`` (deterministic; no flicker in videos), ``"random"``
          (fresh noise per call), ``"const"`` (the stored ``noises`` buffers).
        - ``max_side``: stop at the first level whose RGB output is at least this many px
          wide and return that level's image (StyleGAN2's progressive RGB skip is a valid
          lower-resolution rendering); saves the costly top levels when the face is small
          in the frame. ``None`` runs every level.

        Returns ``[B, 3, H, W]``, about −1…1.
        """
        if noise_mode not in ("zero", "random", "const"):
            raise ValueError(f"noise_mode must be zero, random or const, got {noise_mode!r}")
        if noise_mode == "const":
            noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        else:
            noise = [None] * self.num_layers
        use_noise = noise_mode != "zero"
        if editing_w is not None:
            latent = latent + editing_w
        out = self.conv1(first_layer_feature, latent[:, 0], noise=noise[0], use_noise=use_noise)
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for k, (conv_up, conv, noise1, noise2, to_rgb) in enumerate(
                zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs)):
            if skip_layer_features is not None and fusion is not None and k < len(skip_layer_features) \
                    and k < len(fusion):
                out, skip = fusion[k](skip_layer_features[k], out, skip,
                                      None if editing_w is None else editing_w[:, i])
            out = conv_up(out, latent[:, i], noise=noise1, use_noise=use_noise)
            out = conv(out, latent[:, i + 1], noise=noise2, use_noise=use_noise)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
            if max_side is not None and skip.shape[-1] >= max_side and k >= 2:
                break
        return skip
