"""Check SSERDNet against the official SSERD modules, numerically (a development check).

    git clone https://github.com/ZH-Xu410/SSERD /path/to/SSERD
    python bench/check_official_equivalence.py --official-src /path/to/SSERD [--size 256]

Builds the official ``GradualStyleEncoder``, StyleGANEX ``Generator``, ``CrossAttention`` and
``Transformer`` from the official source (imported at run time from your clone, not copied
into this project) with random weights, converts their state dicts with
:func:`sserd_core.models.convert.match_checkpoint` (strict), and compares the codes, the
editing vector and the edited image of both implementations on random inputs.
The official transformer imports ``einops``; if it is not installed, a two-pattern stand-in
is used. Exit code 0 when everything matches within 1e-4.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _einops_standin():
    def rearrange(t, pattern, h=None):
        if pattern == "b n (h d) -> b h n d":
            b, n, hd = t.shape
            return t.reshape(b, n, h, hd // h).transpose(1, 2)
        if pattern == "b h n d -> b n (h d)":
            b, hh, n, d = t.shape
            return t.transpose(1, 2).reshape(b, n, hh * d)
        raise ValueError(f"einops stand-in: unsupported pattern {pattern!r}")

    mod = types.ModuleType("einops")
    mod.rearrange = rearrange
    sys.modules["einops"] = mod


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official-src", required=True, help="a clone of github.com/ZH-Xu410/SSERD")
    p.add_argument("--size", type=int, default=256, help="StyleGAN size (1024 is the released model; slow on CPU)")
    p.add_argument("--input", type=int, default=64, help="aligned input side (multiple of 32)")
    args = p.parse_args(argv)
    try:
        import einops  # noqa: F401
    except ImportError:
        _einops_standin()
    sys.path.insert(0, str(Path(args.official_src).resolve()))
    from models.encoders.psp_encoders import GradualStyleEncoder
    from models.stylegan2.model import Generator
    from models.transformer import CrossAttention, Transformer

    from sserd_core.models import SSERDNet
    from sserd_core.models.convert import infer_config, match_checkpoint

    torch.manual_seed(0)
    n_styles = 2 * (args.size.bit_length() - 1) - 2
    opts = argparse.Namespace(n_styles=n_styles, use_skip=True, use_sft=False, skip_max_layer=7,
                              use_skip_torgb=False, use_att=1, input_nc=3, max_pooling=False)
    enc = GradualStyleEncoder(50, "ir_se", opts).eval()
    gen = Generator(args.size, 512, 8).eval()
    ca = CrossAttention(d_model=512, nhead=4, dim_feedforward=1024).eval()
    tr = Transformer(dim=512, depth=2, heads=8, dim_head=64, mlp_dim=1, dropout=0).eval()
    with torch.no_grad():  # move away from the zero / identity initialisations so the check bites
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
        for name, prm in gen.named_parameters():
            if name.endswith(("noise.weight", "activate.bias")) or (name.endswith("bias") and "rgb" in name):
                prm.normal_(0, 0.1)
    latent_avg = torch.randn(n_styles, 512) * 0.5
    sd = {}
    for prefix, m in (("encoder", enc), ("decoder", gen), ("cross_attention", ca), ("transformer", tr)):
        sd.update({f"{prefix}.{k}": v for k, v in m.state_dict().items()})
    ckpt = {"state_dict": sd, "latent_avg": latent_avg, "opts": {"output_size": args.size}}
    net = SSERDNet(**infer_config(ckpt, input_size=args.input))
    state, report = match_checkpoint(ckpt, net, "official modules")
    print(f"strict key/shape match: {report.ok} ({report.matched} tensors) {report.summary()}")
    if not report.ok:
        return 1
    net.load_state_dict(state, strict=True)
    net.eval()
    x = torch.rand(2, 3, args.input, args.input) * 2 - 1
    ref = torch.rand(2, 3, args.input, args.input) * 2 - 1
    with torch.no_grad():
        codes, feats, _ = enc(x, return_feat=True, return_full=True)
        codes = codes + latent_avg.repeat(2, 1, 1)
        codes_ref, _, _ = enc(ref, return_feat=True, return_full=True)
        edit = tr(ca(codes.permute(1, 0, 2), codes_ref.permute(1, 0, 2)).permute(1, 0, 2))
        img, _ = gen([codes], input_is_latent=True, first_layer_feature=feats[0:2], first_layer_feature_ind=0,
                     skip_layer_feature=feats[2:], fusion_block=enc.fusion, zero_noise=True, editing_w=edit)
        _, my_codes, _, _ = net.encode(x)
        my_edit = net.emotion(my_codes, net.encode_reference(ref))
        my_img = net(x, reference=ref, noise_mode="zero")
    diffs = {"codes": (my_codes - codes).abs().max().item(), "edit": (my_edit - edit).abs().max().item(),
             "image": (my_img - img).abs().max().item()}
    print(f"image {tuple(img.shape)}; max |ours - official|: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return 0 if max(diffs.values()) < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
