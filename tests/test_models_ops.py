"""The generator's pure-PyTorch ops against straightforward reference computations."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from models_helpers import one_thread  # noqa: F401 (fixture)
from sserd_core.models.ops import fused_leaky_relu, make_kernel, upfirdn2d
from sserd_core.models.stylegan2 import ModulatedConv2d, ToRGB, Upsample

pytestmark = pytest.mark.usefixtures("one_thread")


def reference_upfirdn2d(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple) -> np.ndarray:
    """Textbook definition on one 2-D signal: zero-insert, pad (negative = crop), convolve, subsample."""
    h, w = x.shape
    u = np.zeros((h * up, w * up))
    u[::up, ::up] = x
    p0, p1 = pad
    u = np.pad(u, ((max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0))))
    u = u[max(-p0, 0): u.shape[0] - max(-p1, 0), max(-p0, 0): u.shape[1] - max(-p1, 0)]
    y = convolve2d(u, k, mode="valid")  # true convolution (kernel flipped)
    return y[::down, ::down]


@pytest.mark.parametrize("up,down,pad,kshape", [
    (2, 1, (2, 1), (4, 4)),
    (1, 2, (1, 1), (4, 4)),
    (1, 1, (1, 2), (3, 4)),   # asymmetric kernel: catches a missing flip
    (2, 2, (-1, 0), (3, 3)),  # negative padding crops
    (3, 1, (2, 2), (5, 2)),
])
def test_upfirdn2d_matches_explicit_convolution(up, down, pad, kshape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 9, 9))
    k = rng.normal(size=kshape)
    got = upfirdn2d(torch.from_numpy(x), torch.from_numpy(k), up=up, down=down, pad=pad).numpy()
    for n in range(2):
        for c in range(3):
            ref = reference_upfirdn2d(x[n, c], k, up, down, pad)
            assert got.shape[2:] == ref.shape
            np.testing.assert_allclose(got[n, c], ref, atol=1e-10)


def test_upsample_preserves_a_constant_image_and_doubles_size():
    x = torch.full((1, 2, 8, 8), 0.7)
    y = Upsample([1, 3, 3, 1])(x)
    assert y.shape == (1, 2, 16, 16)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 0.7))


def test_fused_leaky_relu_matches_formula_and_has_gradients():
    x = torch.randn(2, 5, 3, 3, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    y = fused_leaky_relu(x, b)
    z = x.detach() + b.detach().view(1, 5, 1, 1)
    torch.testing.assert_close(y.detach(), torch.where(z >= 0, z, 0.2 * z) * math.sqrt(2))
    y.sum().backward()
    assert x.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_modulated_conv_matches_per_sample_reference():
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, 3, style_dim=8)
    x, style = torch.randn(3, 4, 7, 7), torch.randn(3, 8)
    got = conv(x, style)
    for i in range(3):
        s = conv.modulation(style[i:i + 1])[0]  # [in]
        w = conv.weight[0] * conv.scale * s.view(1, 4, 1, 1)
        w = w / torch.sqrt((w ** 2).sum([1, 2, 3], keepdim=True) + 1e-8)
        ref = torch.nn.functional.conv2d(x[i:i + 1], w, padding=1)
        torch.testing.assert_close(got[i:i + 1], ref, atol=1e-5, rtol=1e-5)


def test_dilated_upsampling_layers_keep_size_and_match_standard_when_dilation_is_one():
    """StyleGANEX: dilation>1 'upsampling' keeps the spatial size; dilation 1 is StyleGAN2's ×2 upsampling."""
    torch.manual_seed(1)
    x, style = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    for d in (2, 4, 8):
        conv = ModulatedConv2d(4, 4, 3, 8, upsample=True, dilation=d)
        assert conv(x, style).shape == (2, 4, 8, 8)
        rgb = ToRGB(4, 8, dilation=d)
        assert rgb(x, style, skip=torch.randn(2, 3, 8, 8)).shape == (2, 3, 8, 8)
    conv = ModulatedConv2d(4, 4, 3, 8, upsample=True, dilation=1)
    assert conv(x, style).shape == (2, 4, 16, 16)
    # the dilated blur of ToRGB is a normalised low-pass: a constant skip passes unchanged
    rgb = ToRGB(4, 8, dilation=4)
    with torch.no_grad():
        rgb.conv.weight.zero_()
        rgb.bias.zero_()
    skip = torch.full((1, 3, 16, 16), 0.25)
    out = rgb(torch.randn(1, 4, 16, 16), torch.randn(1, 8), skip=skip)
    torch.testing.assert_close(out[..., 2:-2, 2:-2], skip[..., 2:-2, 2:-2])


def test_make_kernel_normalises():
    k = make_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4) and abs(float(k.sum()) - 1) < 1e-6
