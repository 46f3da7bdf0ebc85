"""Pure-PyTorch StyleGAN2 ops: FIR up/down-sampling (``upfirdn2d``) and fused bias + leaky ReLU.

StyleGAN2 / StyleGANEX ship these as custom CUDA kernels that must be compiled; here they
are written with ordinary ``torch`` ops (pad, reshape, ``conv2d``), so the networks run on
CPU, CUDA, MPS or anything else torch supports, in fp32, fp16 or bf16, with autograd.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable FIR taps ``[k]`` → normalised 2-D kernel ``float32 [k, k]`` (sums to 1)."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def _pair(v: Union[int, Sequence[int]]) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up=1, down=1, pad=(0, 0)) -> torch.Tensor:
    """Upsample (zero insertion) → pad → FIR filter → downsample (stride), per channel.

    - ``x``: ``[N, C, H, W]``.
    - ``kernel``: ``[kh, kw]`` FIR filter (applied as a true convolution, i.e. flipped).
    - ``up`` / ``down``: int or ``(x, y)`` factors.
    - ``pad``: ``(p0, p1)`` for both axes or ``(px0, px1, py0, py1)``; negative values crop.

    Returns ``[N, C, (H*up_y + py0 + py1 - kh) // down_y + 1, ...]`` — the same arithmetic
    as the reference CUDA op of StyleGAN2.
    """
    up_x, up_y = _pair(up)
    down_x, down_y = _pair(down)
    if len(pad) == 2:
        px0, px1 = pad
        py0, py1 = pad
    else:
        px0, px1, py0, py1 = pad
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    y = x.reshape(n * c, 1, h, w)
    if up_x > 1 or up_y > 1:
        # zero insertion: put each sample at the top-left of an up_y × up_x cell
        y = y.reshape(n * c, 1, h, 1, w, 1)
        y = F.pad(y, [0, up_x - 1, 0, 0, 0, up_y - 1])
        y = y.reshape(n * c, 1, h * up_y, w * up_x)
    # positive padding adds zeros, negative padding crops
    y = F.pad(y, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    y = y[:, :, max(-py0, 0): y.shape[2] - max(-py1, 0), max(-px0, 0): y.shape[3] - max(-px1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(dtype=y.dtype, device=y.device).view(1, 1, kh, kw)
    y = F.conv2d(y, weight, stride=(down_y, down_x))
    return y.reshape(n, c, y.shape[2], y.shape[3])


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = math.sqrt(2)) -> torch.Tensor:
    """``leaky_relu(x + bias, slope) * scale`` with ``bias`` ``[C]`` broadcast over dim 1.

    The √2 gain keeps activations at unit variance (StyleGAN2's equalised learning rate).
    """
    if bias is not None:
        shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
        x = x + bias.view(*shape).to(x.dtype)
    return F.leaky_relu(x, negative_slope=negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias then scaled leaky ReLU (parameter ``bias`` ``[C]``)."""

    def __init__(self, channels: int, bias: bool = True, negative_slope: float = 0.2, scale: float = math.sqrt(2)):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)
