"""Convert an official SSERD checkpoint (``*.pt``) into a ``save_pretrained`` folder.

``sserd convert OFFICIAL.pt OUT_DIR`` reads the checkpoint (``state_dict`` with
``encoder.* / decoder.* / cross_attention.* / transformer.*``, top-level ``latent_avg`` and
``opts``), infers the architecture from its tensor shapes and options, maps every tensor
onto :class:`~sserd_core.models.sserd.SSERDNet` with a strict key *and* shape check, and
writes ``OUT_DIR/config.json``, ``OUT_DIR/diffusion_pytorch_model.safetensors``, a model
card ``README.md`` and ``conversion_report.json``. Anything unmatched is reported key by
key (with the closest expected name for a renamed key) and nothing is written.

Two official layouts are accepted:

- **stage 2** (``models/psp.py``: the editing model) — every tensor, strictly;
- **stage 1** (``models/psp_no_attn.py``: the starting point and the output of the first
  fine-tuning stage) — no ``cross_attention.*`` / ``transformer.*`` tensors at all. The
  emotion module is then initialised freshly (PyTorch's default initialisation, seeded, as
  the official stage 2 starts from such a checkpoint), which the conversion says in one line;
  everything else is matched as strictly as for stage 2. The checkpoint's ``latent_pool``
  (stage 1's InfoNCE memory) is kept in ``OUT_DIR/latent_pool.safetensors`` so stage 2
  continues it, as the official stage 2 does. A checkpoint with only *some* emotion-module
  tensors is neither and is refused.

``sserd prototypes REF_DIR MODEL_DIR`` (label prototypes for a converted folder) is registered
by :mod:`sserd_core.neural.cli`: it needs the neural editor, which sits above this package.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Union

from ..errors import SSERDError

#: stage 1's InfoNCE memory, carried into the converted folder of a stage-1 checkpoint
LATENT_POOL_FILE = "latent_pool.safetensors"
#: the official StyleGAN2 discriminator of a checkpoint, kept for training (``sserd train`` continues it)
DISCRIMINATOR_FILE = "discriminator.safetensors"
#: top-level checkpoint entries used only for training (ignored, listed in the report)
TRAINING_ONLY = ("latent_pool", "discriminator", "left_eye_disc", "right_eye_disc", "mouth_disc", "editing_w",
                 "optimizer", "discriminator_optimizer", "global_step", "best_val_loss")
_PREFIX_MAP = (("cross_attention.", "emotion.cross_attention."), ("transformer.", "emotion.transformer."),
               ("encoder.", "encoder."), ("decoder.", "decoder."))


EMOTION_PREFIXES = ("cross_attention.", "transformer.")
#: seed of the fresh emotion module of a converted stage-1 checkpoint (conversion is reproducible)
FRESH_INIT_SEED = 0


def is_stage1(sd: Mapping) -> bool:
    """True for an official stage-1 (``psp_no_attn``) state dict: no emotion-module tensor at all."""
    return not any(str(k).startswith(EMOTION_PREFIXES) for k in sd)


def to_ours(key: str) -> str:
    """Official ``state_dict`` key → :class:`SSERDNet` key (``cross_attention.x`` → ``emotion.cross_attention.x``)."""
    for a, b in _PREFIX_MAP:
        if key.startswith(a):
            return b + key[len(a):]
    return key


def to_official(key: str) -> str:
    """:class:`SSERDNet` key → official key (inverse of :func:`to_ours`)."""
    for a, b in _PREFIX_MAP:
        if key.startswith(b):
            return a + key[len(b):]
    return key


@dataclass
class ConversionReport:
    """What a conversion matched. Empty ``missing`` / ``unexpected`` / ``wrong_shape`` /
    ``wrong_constant`` means a strict match."""

    source: str
    matched: int = 0
    missing: list = field(default_factory=list)        # [(official key, expected shape)]
    unexpected: list = field(default_factory=list)     # [(official key, shape, closest expected key or None)]
    wrong_shape: list = field(default_factory=list)    # [(official key, checkpoint shape, expected shape)]
    wrong_constant: list = field(default_factory=list)  # [official key] fixed filters with other values
    ignored: list = field(default_factory=list)        # top-level training-only entries
    initialised: list = field(default_factory=list)    # [our key] freshly initialised (stage-1 checkpoints)
    stage: int = 2                                     # 1: psp_no_attn layout (no emotion module), 2: psp
    config: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape or self.wrong_constant)

    def lines(self) -> list[str]:
        """Human-readable report, one finding per line."""
        out = [f"source: {self.source}", f"matched tensors: {self.matched}"]
        out += [f"MISSING     {k}  expected shape {list(s)}" for k, s in self.missing]
        for k, s, near in self.unexpected:
            hint = f"  (did you mean {near}?)" if near else ""
            out.append(f"UNEXPECTED  {k}  shape {list(s)}{hint}")
        out += [f"WRONG SHAPE {k}  checkpoint {list(a)} vs expected {list(b)}" for k, a, b in self.wrong_shape]
        out += [f"WRONG VALUE {k}  (fixed filter differs from StyleGAN2's [1,3,3,1] kernel)" for k in self.wrong_constant]
        out += [f"ignored     {k}  (training-only)" for k in self.ignored]
        out += [f"fresh       {k}  (not in a stage-1 checkpoint)" for k in self.initialised]
        out += [f"note        {n}" for n in self.notes]
        return out

    def summary(self) -> str:
        parts = [f"{len(self.missing)} missing", f"{len(self.unexpected)} unexpected",
                 f"{len(self.wrong_shape)} with the wrong shape"]
        if self.wrong_constant:
            parts.append(f"{len(self.wrong_constant)} with wrong fixed values")
        renamed = [u for u in self.unexpected if u[2]]
        if renamed:
            first = f"unexpected {renamed[0][0]} (did you mean {renamed[0][2]}?)"
        elif self.missing:
            first = f"missing {self.missing[0][0]}"
        elif self.unexpected:
            first = f"unexpected {self.unexpected[0][0]}"
        elif self.wrong_shape:
            k, got, want = self.wrong_shape[0]
            first = f"{k} is {list(got)}, expected {list(want)}"
        elif self.wrong_constant:
            first = f"{self.wrong_constant[0]} has other values"
        else:
            first = ""
        return ", ".join(parts) + (f"; first: {first}" if first else "")


class ConversionError(SSERDError):
    """The checkpoint does not match the SSERD layout; ``.report`` holds the details."""

    def __init__(self, message: str, report: ConversionReport):
        super().__init__(message)
        self.report = report


def load_official_checkpoint(path: Union[str, os.PathLike], trust_pickle: bool = False) -> dict:
    """Read an official ``.pt`` checkpoint on CPU.

    Uses ``torch.load(weights_only=True)`` (no code execution); ``trust_pickle=True``
    allows full unpickling for a file you trust that needs it.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise SSERDError(f"Checkpoint {path} does not exist. Download it from the SSERD release page first.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:  # pickle / zip errors surface in many types
        if not trust_pickle and "weights_only" in str(exc):
            raise SSERDError(f"{path.name} needs full unpickling to load; if you trust the file, rerun with "
                             f"--trust-pickle.") from None
        raise SSERDError(f"Cannot read {path.name} as a PyTorch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160]}).") from None
    if not isinstance(ckpt, Mapping):
        raise SSERDError(f"{path.name} is not a checkpoint dictionary (got {type(ckpt).__name__}).")
    return dict(ckpt)


def _state_dict(ckpt: Mapping) -> dict:
    import torch

    sd = ckpt.get("state_dict", ckpt)
    if isinstance(sd, Mapping) and sd and all(str(k).startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}  # saved from a DataParallel / DDP wrapper
    if not isinstance(sd, Mapping) or not any(str(k).startswith("decoder.") for k in sd):
        raise SSERDError("The checkpoint has no SSERD state_dict (no 'decoder.*' tensors); is it an SSERD / "
                         "StyleGANEX pSp checkpoint?")
    return {k: v for k, v in sd.items() if torch.is_tensor(v)}


def write_latent_pool(pool: Mapping, path: Union[str, os.PathLike], size: int) -> int:
    """Write an InfoNCE memory ``{actor: {emotion name: codes [n, n_styles, d]}}`` (FIFO ``size`` per slot) as
    safetensors (``"<actor>/<emotion>"`` → codes); returns the number of codes written."""
    from safetensors.torch import save_file

    from ..emotion import canonical_label

    tensors = {f"{a}/{canonical_label(e)}": z.detach().float().cpu().contiguous()[-size:]
               for a, slots in pool.items() for e, z in slots.items() if len(z)}
    save_file(tensors, str(path), metadata={"size": str(int(size))})
    return sum(len(z) for z in tensors.values())


def read_latent_pool(path: Union[str, os.PathLike]) -> tuple[dict, int]:
    """``({actor: {emotion: codes}}, size)`` from a file written by :func:`write_latent_pool`."""
    from safetensors import safe_open

    out: dict = {}
    with safe_open(str(path), "pt") as f:
        size = int((f.metadata() or {}).get("size", 8))
        for key in f.keys():
            actor, emotion = key.rsplit("/", 1)
            out.setdefault(actor, {})[emotion] = f.get_tensor(key)
    return out, size


def _count(sd: Mapping, prefix: str) -> int:
    """1 + the largest ``N`` among keys ``prefix + "N.…"`` (0 if none): robust to one missing tensor."""
    idx = [int(k[len(prefix):].split(".", 1)[0]) for k in sd
           if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()]
    return max(idx) + 1 if idx else 0


def infer_config(ckpt: Mapping, input_size: int = 256, alignment: str = "sserd-template",
                 nhead: int = 4, heads: int = 8) -> dict:
    """SSERDNet config from an official checkpoint's tensor shapes and ``opts``.

    Widths come from the tensors (so reduced checkpoints work too); ``nhead`` (cross-attention
    heads) and ``heads`` (transformer heads) cannot be read from shapes and default to the
    official 4 and 8. A stage-1 checkpoint has no emotion module: it gets the official module
    (``models/psp.py``'s fixed sizes, SSERDNet's defaults) at the checkpoint's code width.
    Raises :class:`SSERDError` for layouts SSERDNet does not implement.
    """
    sd = _state_dict(ckpt)
    opts = ckpt.get("opts") or {}
    if not isinstance(opts, Mapping):
        opts = vars(opts) if hasattr(opts, "__dict__") else {}

    def shape(k):
        if k not in sd:
            raise SSERDError(f"The checkpoint lacks {k}, which SSERD needs to infer the architecture.")
        return tuple(sd[k].shape)

    if opts.get("learn_in_w"):
        raise SSERDError("This checkpoint was trained with learn_in_w (one W code); SSERD uses W+ — not supported.")
    if opts.get("encoder_type", "GradualStyleEncoder") != "GradualStyleEncoder":
        raise SSERDError(f"Encoder type {opts.get('encoder_type')} is not supported; SSERD uses GradualStyleEncoder.")
    if opts.get("input_nc", 3) != 3:
        raise SSERDError("Only RGB-input checkpoints (input_nc=3) are supported.")
    n_rgbs = _count(sd, "decoder.to_rgbs.")
    size = 2 ** (n_rgbs + 2)
    if opts.get("output_size") and int(opts["output_size"]) != size:
        raise SSERDError(f"opts.output_size={opts['output_size']} but the decoder has layers for {size} px.")
    style_dim = shape("decoder.style.1.weight")[0]
    n_mlp = _count(sd, "decoder.style.") - 1  # style.0 is the (parameter-free) PixelNorm
    table = {4: shape("decoder.input.input")[1]}
    for k in range(n_rgbs):
        table[2 ** (k + 3)] = shape(f"decoder.to_rgbs.{k}.conv.weight")[2]
    channel_max = max(table.values())
    mult = int(opts.get("channel_multiplier", 2) or 2)
    below = [(r, c) for r, c in sorted(table.items()) if c < channel_max]
    channel_base = (below[0][0] * below[0][1]) // mult if below else channel_max * size
    expect = {r: min(channel_max, channel_base * mult // r) for r in table}
    if expect != table:
        raise SSERDError(f"Unsupported generator channel table {table}; expected the StyleGAN2 pattern "
                         f"min(max, base*multiplier/res).")
    units = (0, 3, 7, 21)
    widths = tuple(shape(f"encoder.body.{u}.res_layer.1.weight")[0] for u in units)
    n_fusion = _count(sd, "encoder.fusion.")
    # use_att = n gives Linear layers at linear.0, .2, …, .2n
    use_att = max(0, sum(1 for k in sd if k.startswith("encoder.fusion.0.linear.") and k.endswith(".weight")) - 1)
    if is_stage1(sd):
        import inspect

        from .sserd import SSERDNet

        params = inspect.signature(SSERDNet.__init__).parameters
        emotion = {k: params[k].default for k in ("dim_feedforward", "depth", "dim_head", "mlp_dim")}
    else:
        qkv = shape("transformer.layers.0.0.to_qkv.weight")[0] // 3 if "transformer.layers.0.0.to_qkv.weight" in sd \
            else shape("transformer.layers.0.0.to_out.0.weight")[1]
        if qkv % heads:
            raise SSERDError(f"Transformer width {qkv} is not divisible by {heads} heads.")
        emotion = dict(dim_feedforward=shape("cross_attention.linear1.weight")[0],
                       depth=_count(sd, "transformer.layers."), dim_head=qkv // heads,
                       mlp_dim=shape("transformer.layers.0.1.net.1.weight")[0])
    return dict(
        size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=mult, channel_base=channel_base,
        channel_max=channel_max, encoder_widths=list(widths), use_skip=n_fusion > 0,
        skip_max_layer=max(1, n_fusion) if n_fusion else int(opts.get("skip_max_layer", 7)),
        use_skip_torgb="encoder.fusion.0.fusion_skip.weight" in sd, use_att=use_att,
        max_pooling=bool(opts.get("max_pooling", False)), nhead=nhead, heads=heads, **emotion,
        input_size=input_size, alignment=alignment)


def _latent_avg(ckpt: Mapping, n_styles: int, style_dim: int, report: ConversionReport):
    import torch

    la = ckpt.get("latent_avg")
    if la is None:
        report.notes.append("no latent_avg in the checkpoint: codes are used without the average-face offset")
        return torch.zeros(n_styles, style_dim)
    la = torch.as_tensor(la).float().cpu()
    if la.shape == (n_styles, style_dim):
        return la
    if la.numel() == style_dim:
        report.notes.append("latent_avg given as one W code; repeated over the W+ layers")
        return la.reshape(1, style_dim).repeat(n_styles, 1)
    report.wrong_shape.append(("latent_avg", tuple(la.shape), (n_styles, style_dim)))
    return None


def match_checkpoint(ckpt: Mapping, net, source: str = "checkpoint") -> tuple[dict, ConversionReport]:
    """Map ``ckpt`` onto ``net`` (an :class:`SSERDNet`) strictly; return ``(state_dict for net, report)``.

    Check ``report.ok`` before loading.
    """
    import torch

    from .manifest import constant, load_manifest

    sd = _state_dict(ckpt)
    report = ConversionReport(source=source, config=dict(net.config), stage=1 if is_stage1(sd) else 2)
    report.ignored = [k for k in ckpt if k in TRAINING_ONLY and not (report.stage == 1 and k == "latent_pool")
                      and k != "discriminator"]
    if ckpt.get("opts") and isinstance(ckpt["opts"], Mapping) and ckpt["opts"].get("start_from_latent_avg") is False:
        report.notes.append("opts.start_from_latent_avg is False: latent_avg is not added")
    expected = {to_official(k): v for k, v in net.state_dict().items() if k != "latent_avg"}
    constants = {e["key"]: e["value"] for e in load_manifest()["entries"] if e["kind"] == "constant"}
    out = {}
    for key in sorted(sd):
        if key not in expected:
            near = difflib.get_close_matches(key, [k for k in expected if k not in sd], n=1, cutoff=0.8)
            report.unexpected.append((key, tuple(sd[key].shape), near[0] if near else None))
            continue
        want = tuple(expected[key].shape)
        got = tuple(sd[key].shape)
        if got != want:
            report.wrong_shape.append((key, got, want))
            continue
        if key in constants and not torch.allclose(sd[key].float().reshape(want),
                                                    constant(constants[key]).reshape(want), atol=1e-6):
            report.wrong_constant.append(key)
            continue
        out[to_ours(key)] = sd[key].detach().to(expected[key].dtype)
        report.matched += 1
    report.missing = [(k, tuple(v.shape)) for k, v in expected.items() if k not in sd]
    if report.stage == 1:
        report.initialised = [to_ours(k) for k, _ in report.missing if k.startswith(EMOTION_PREFIXES)]
        report.missing = [(k, s) for k, s in report.missing if not k.startswith(EMOTION_PREFIXES)]
        report.notes.append(f"stage-1 checkpoint (no cross_attention.* / transformer.* tensors): the emotion module "
                            f"({len(report.initialised)} tensors) is initialised freshly — train stage 2 "
                            f"before editing with this model")
    start_avg = not (isinstance(ckpt.get("opts"), Mapping) and ckpt["opts"].get("start_from_latent_avg") is False)
    la = _latent_avg(ckpt, net.n_styles, net.config.style_dim, report)
    if la is not None:
        out["latent_avg"] = la if start_avg else torch.zeros_like(la)
        report.matched += 1
    return out, report


MODEL_CARD = """---
license: mit
library_name: diffusers
tags: [sserd, stylegan2, styleganex, facial-expression-manipulation, emotion-editing, talking-face]
---
# SSERD (converted)

Speech-preserving facial expression manipulation — *Self-Supervised Emotion Representation
Disentanglement for Speech-Preserving Facial Expression Manipulation* (Xu et al., ACM MM 2024).
Converted from the official checkpoint `{source}` (github.com/ZH-Xu410/SSERD, MIT) with
`sserd convert`; weights unchanged, {matched} tensors matched strictly.

- Class: `sserd_core.models.SSERDNet` (diffusers `ModelMixin`/`ConfigMixin`); load with
  `SSERDNet.from_pretrained(path_or_repo_id)` or `sserd_core.neural.load_editor(path_or_repo_id)`.
- Input: {input_size}×{input_size} face aligned with `{alignment}`, RGB in −1…1.
  Output: {output_size}×{output_size} px, −1…1.
- Decoder: StyleGANEX at StyleGAN size {size}, W+ with {n_styles} codes of {style_dim}.
- Label-driven editing needs `emotion_prototypes.safetensors` (`sserd prototypes REF_DIR MODEL_DIR`);
  reference-driven editing needs only a reference face image.
{stage_note}
Use (from the folder that holds this model folder): `sserd edit INPUT.mp4 -o OUTPUT.mp4 --model {repo} --reference FACE.png`
(a face image showing the target emotion; after `sserd prototypes`, `--emotion happy` works too). The
paper's tables: `sserd eval --data MEAD_ROOT --out RESULTS --checkpoint SSERD={repo}` (the project's docs/EVALUATION.md).
"""


def convert_checkpoint(checkpoint: Union[str, os.PathLike, Mapping], out_dir: Union[str, os.PathLike], *,
                       input_size: int = 256, alignment: str = "sserd-template", nhead: int = 4, heads: int = 8,
                       trust_pickle: bool = False) -> ConversionReport:
    """Convert an official checkpoint (path or loaded dict) into ``out_dir``; return the report.

    Raises :class:`ConversionError` (an :class:`SSERDError`) listing what did not match,
    without writing anything, if the match is not strict.
    """
    import torch

    from .sserd import SSERDNet

    source = str(checkpoint) if not isinstance(checkpoint, Mapping) else "<in-memory checkpoint>"
    ckpt = checkpoint if isinstance(checkpoint, Mapping) else load_official_checkpoint(checkpoint, trust_pickle)
    config = infer_config(ckpt, input_size=input_size, alignment=alignment, nhead=nhead, heads=heads)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FRESH_INIT_SEED)  # the fresh emotion module of a stage-1 checkpoint is reproducible
        net = SSERDNet(**config)
    state, report = match_checkpoint(ckpt, net, Path(source).name)
    if not report.ok:
        raise ConversionError(f"{Path(source).name} does not match the SSERD layout: {report.summary()}.", report)
    fresh = set(report.initialised)
    state.update({k: v for k, v in net.state_dict().items() if k in fresh})
    net.load_state_dict(state, strict=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(out, safe_serialization=True)
    if report.stage == 1 and ckpt.get("latent_pool"):
        pool = {a: {e: torch.stack([torch.as_tensor(c).float() for c in codes]) for e, codes in slots.items() if len(codes)}
                for a, slots in ckpt["latent_pool"].items()}
        n = write_latent_pool(pool, out / LATENT_POOL_FILE, max(len(z) for d in pool.values() for z in d.values()))
        report.notes.append(f"latent_pool ({n} codes) kept in {LATENT_POOL_FILE} for stage 2")
    if ckpt.get("discriminator"):
        report.notes.append(_keep_discriminator(ckpt["discriminator"], out / DISCRIMINATOR_FILE))
    report.config = dict(net.config)
    (out / "conversion_report.json").write_text(json.dumps(
        {**asdict(report), "ok": report.ok, "lines": report.lines()}, indent=1, default=str))
    (out / "README.md").write_text(MODEL_CARD.format(
        source=Path(source).name, matched=report.matched, input_size=input_size, alignment=alignment,
        output_size=net.output_size, size=config["size"], n_styles=net.n_styles, style_dim=config["style_dim"],
        repo=out.name, stage_note="" if report.stage == 2 else
        "- **Stage-1 checkpoint**: the emotion module is freshly initialised (it was not in the checkpoint); "
        "this folder is a training start (`sserd train`, stage 2), not an editing model.\n"))
    return report


def _keep_discriminator(sd: Mapping, path: Path) -> str:
    """Write the checkpoint's discriminator (official StyleGAN2 layout, checked by loading it) beside the model."""
    import torch
    from safetensors.torch import save_file

    from .discriminator import OfficialDiscriminator

    try:
        disc = OfficialDiscriminator.from_state_dict({k: torch.as_tensor(v) for k, v in sd.items()})
    except (SSERDError, KeyError, RuntimeError, ValueError) as exc:
        return f"the checkpoint's discriminator is not in the official StyleGAN2 layout; not kept ({exc})"
    save_file({k: v.contiguous() for k, v in disc.state_dict().items()}, str(path))
    return (f"discriminator ({disc.size} px StyleGAN2, {sum(p.numel() for p in disc.parameters())} weights) kept in "
            f"{path.name}: training from this folder continues it")


# ---------------------------------------------------------------- CLI
def _cmd_convert(args) -> int:
    try:
        report = convert_checkpoint(args.checkpoint, args.out_dir, input_size=args.input_size,
                                    alignment=args.alignment, trust_pickle=args.trust_pickle)
    except ConversionError as exc:
        for line in exc.report.lines():
            print(line)
        raise
    if args.verbose:
        for line in report.lines():
            print(line)
    print(f"converted {report.matched} tensors strictly → {args.out_dir}")
    for n in report.notes:
        print(f"note: {n}")
    return 0


def register(subparsers) -> None:
    """Add ``sserd convert`` to an argparse ``subparsers`` object.

    Each subparser sets ``func(args) -> int``; errors are raised as :class:`SSERDError`.
    """
    p = subparsers.add_parser("convert", help="convert an official SSERD checkpoint (.pt) into a model folder",
                              description="Map an official SSERD checkpoint onto the project's SSERDNet with "
                                          "strict key and shape checks and write a save_pretrained folder "
                                          "(safetensors, config, model card).")
    p.add_argument("checkpoint", help="official checkpoint (.pt) from the SSERD GitHub release page: a stage-2 "
                                      "(editing) checkpoint, or a stage-1 one (psp_no_attn, e.g. the README's "
                                      "pretrain.pt) as a training start — its emotion module is initialised freshly")
    p.add_argument("out_dir", help="output folder (created)")
    p.add_argument("--input-size", type=int, default=256, help="aligned crop side the model was trained on (256)")
    p.add_argument("--alignment", default="sserd-template", choices=["sserd-template", "ffhq"],
                   help="face alignment the model was trained with (official: sserd-template)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow full unpickling (only for files you trust) if the safe loader refuses the file")
    p.add_argument("-v", "--verbose", action="store_true", help="print the full match report")
    p.set_defaults(func=_cmd_convert)
