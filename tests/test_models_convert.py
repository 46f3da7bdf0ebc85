"""Official checkpoint → SSERDNet folder, with strict key / shape matching."""

import json

import pytest
import torch

from models_helpers import TINY_INPUT, TINY_SYMBOLS, official_tiny_checkpoint, one_thread  # noqa: F401 (fixture)
from sserd_core.errors import SSERDError
from sserd_core.models import SSERDNet
from sserd_core.cli import main
from sserd_core.models.convert import ConversionError, convert_checkpoint, infer_config, to_official
from sserd_core.models.manifest import load_manifest, official_layout

pytestmark = pytest.mark.usefixtures("one_thread")


def test_sserdnet_reproduces_the_official_manifest():
    """At the official size, our module tree has exactly the official tensor names and shapes."""
    with torch.device("meta"):
        net = SSERDNet()
    ours = {to_official(k): tuple(v.shape) for k, v in net.state_dict().items()}
    layout = {k: v["shape"] for k, v in official_layout().items()}
    assert set(ours) == set(layout)
    assert {k: s for k, s in ours.items() if layout[k] != s} == {}
    assert len(layout) == 925 and layout["encoder.featlayer.weight"] == (512, 768, 1, 1)
    assert layout["decoder.convs.15.conv.weight"] == (1, 32, 32, 3, 3)
    assert sum(1 for e in load_manifest()["entries"] if e.get("when") == "use_skip_torgb") == 14


@pytest.fixture(scope="module")
def tiny_ckpt_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "sserd_tiny.pt"
    torch.save(official_tiny_checkpoint(), path)
    return path


def test_convert_loads_every_tensor_strictly(tiny_ckpt_path, tmp_path):
    out = tmp_path / "model"
    report = convert_checkpoint(tiny_ckpt_path, out, input_size=TINY_INPUT)
    assert report.ok and report.matched == 925
    assert sorted(report.ignored) == ["latent_pool"]
    # the official discriminator is kept for training, loadable into the official layout
    from safetensors.torch import load_file

    kept = load_file(str(out / "discriminator.safetensors"))
    ref = official_tiny_checkpoint()["discriminator"]
    assert set(kept) == set(ref) and all(torch.equal(kept[k], ref[k]) for k in ref)
    for name in ("config.json", "diffusion_pytorch_model.safetensors", "README.md", "conversion_report.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["_class_name"] == "SSERDNet"
    assert cfg["size"] == 1024 and cfg["style_dim"] == TINY_SYMBOLS["S"] and cfg["encoder_widths"] == [16, 24, 32, 48]
    assert cfg["use_att"] == 1 and cfg["skip_max_layer"] == 7 and cfg["use_skip_torgb"] is False
    assert "sserd_tiny.pt" in (out / "README.md").read_text()
    net = SSERDNet.from_pretrained(out)
    ckpt = official_tiny_checkpoint()
    sd = net.state_dict()
    for key, value in ckpt["state_dict"].items():
        ours = "emotion." + key if key.startswith(("cross_attention.", "transformer.")) else key
        assert torch.equal(sd[ours], value), key
    assert torch.equal(sd["latent_avg"], ckpt["latent_avg"])
    # the converted network runs: 64 px aligned face → 256 px face
    with torch.no_grad():
        y = net.eval()(torch.rand(1, 3, TINY_INPUT, TINY_INPUT) * 2 - 1, reference=torch.zeros(1, 3, 64, 64))
    assert y.shape == (1, 3, 256, 256) and torch.isfinite(y).all()


def test_infer_config_reads_widths_from_shapes():
    cfg = infer_config(official_tiny_checkpoint())
    net = SSERDNet(**cfg)
    assert net.decoder.channels == {4: 32, 8: 32, 16: 32, 32: 32, 64: 16, 128: 8, 256: 4, 512: 2, 1024: 1}
    assert cfg["dim_feedforward"] == 32 and cfg["dim_head"] == 4 and cfg["mlp_dim"] == 1


def _convert_error(ckpt, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ConversionError) as info:
        convert_checkpoint(ckpt, out, input_size=TINY_INPUT)
    assert not out.exists()  # nothing written on a failed match
    return info.value


def test_renamed_key_fails_with_a_suggestion(tmp_path):
    ckpt = official_tiny_checkpoint()
    sd = ckpt["state_dict"]
    sd["encoder.styles.3.linaer.weight"] = sd.pop("encoder.styles.3.linear.weight")
    err = _convert_error(ckpt, tmp_path)
    msg = str(err)
    assert "1 missing, 1 unexpected" in msg
    assert "encoder.styles.3.linaer.weight" in msg and "did you mean encoder.styles.3.linear.weight" in msg
    lines = err.report.lines()
    assert any(line.startswith("MISSING     encoder.styles.3.linear.weight") for line in lines)


def test_missing_and_misshaped_keys_fail(tmp_path):
    ckpt = official_tiny_checkpoint()
    del ckpt["state_dict"]["transformer.layers.1.0.to_qkv.weight"]
    ckpt["state_dict"]["decoder.convs.3.conv.weight"] = torch.zeros(1, 32, 32, 3, 2)
    err = _convert_error(ckpt, tmp_path)
    assert "1 missing" in str(err) and "1 with the wrong shape" in str(err)
    assert ("decoder.convs.3.conv.weight", (1, 32, 32, 3, 2), (1, 32, 32, 3, 3)) in err.report.wrong_shape
    assert err.report.missing == [("transformer.layers.1.0.to_qkv.weight", (96, 32))]


def test_wrong_fixed_filter_is_reported(tmp_path):
    ckpt = official_tiny_checkpoint()
    ckpt["state_dict"]["decoder.convs.0.conv.blur.kernel"] = torch.ones(4, 4)
    err = _convert_error(ckpt, tmp_path)
    assert err.report.wrong_constant == ["decoder.convs.0.conv.blur.kernel"]


def test_cli_convert(tiny_ckpt_path, tmp_path, capsys):
    assert main(["convert", str(tiny_ckpt_path), str(tmp_path / "m"), "--input-size", str(TINY_INPUT)]) == 0
    assert "converted 925 tensors strictly" in capsys.readouterr().out
    bad = official_tiny_checkpoint()
    bad["state_dict"].pop("decoder.to_rgb1.bias")
    torch.save(bad, tmp_path / "bad.pt")
    assert main(["convert", str(tmp_path / "bad.pt"), str(tmp_path / "m2")]) == 1
    got = capsys.readouterr()
    assert "MISSING     decoder.to_rgb1.bias" in got.out          # the match report on stdout
    errors = [ln for ln in got.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "error: bad.pt does not match" in errors[0]   # one error line on stderr, exit 1
    assert main(["convert", str(tmp_path / "nope.pt"), str(tmp_path / "m3")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_non_sserd_file_is_rejected(tmp_path):
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "other.pt")
    with pytest.raises(SSERDError, match="no SSERD state_dict"):
        convert_checkpoint(tmp_path / "other.pt", tmp_path / "o")


def _stage1(ckpt):
    """The official stage-1 layout (models/psp_no_attn.py): no emotion module tensors."""
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items()
                          if not k.startswith(("cross_attention.", "transformer."))}
    return ckpt


def test_stage1_checkpoint_gets_a_fresh_emotion_module(tmp_path, capsys):
    from sserd_core.models.convert import LATENT_POOL_FILE
    from sserd_core.train.losses import LatentPool

    ckpt = _stage1(official_tiny_checkpoint())
    n_emotion = 925 - 1 - len(ckpt["state_dict"])  # 925 = every tensor + latent_avg
    torch.save(ckpt, tmp_path / "stage1.pt")
    assert main(["convert", str(tmp_path / "stage1.pt"), str(tmp_path / "m"), "--input-size", str(TINY_INPUT)]) == 0
    out = capsys.readouterr().out
    fresh = [line for line in out.splitlines() if "initialised freshly" in line]
    assert len(fresh) == 1 and fresh[0].startswith("note: stage-1 checkpoint") and f"({n_emotion} tensors)" in fresh[0]
    report = json.loads((tmp_path / "m" / "conversion_report.json").read_text())
    assert report["ok"] and report["stage"] == 1 and report["matched"] == 925 - n_emotion
    assert len(report["initialised"]) == n_emotion and all(k.startswith("emotion.") for k in report["initialised"])
    net = SSERDNet.from_pretrained(tmp_path / "m")
    sd = net.state_dict()
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(sd[key], value), key  # everything the checkpoint has: strictly as stage 2
    cfg = net.config
    assert (cfg.dim_feedforward, cfg.depth, cfg.heads, cfg.dim_head, cfg.mlp_dim) == (1024, 2, 8, 64, 1)  # psp.py
    # the fresh module is PyTorch's default init, reproducibly (a second conversion gives the same tensors)
    convert_checkpoint(_stage1(official_tiny_checkpoint()), tmp_path / "m2", input_size=TINY_INPUT)
    again = SSERDNet.from_pretrained(tmp_path / "m2").state_dict()
    assert all(torch.equal(sd[k], again[k]) for k in report["initialised"])
    assert sd["emotion.transformer.norm.weight"].eq(1).all() and sd["emotion.cross_attention.linear1.weight"].std() > 0
    # stage 1's InfoNCE memory is kept for stage 2
    pool = LatentPool.load(tmp_path / "m" / LATENT_POOL_FILE)
    assert pool.count("M003", 4) == 1 and pool.total() == 1
    assert "Stage-1 checkpoint" in (tmp_path / "m" / "README.md").read_text()


def test_partial_emotion_module_is_refused(tmp_path):
    ckpt = official_tiny_checkpoint()
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("transformer.")}
    # not stage 1 (it has cross_attention.*): refused as an incomplete stage-2 checkpoint, nothing written
    with pytest.raises(SSERDError, match="lacks transformer.layers.0.0.to_out.0.weight"):
        convert_checkpoint(ckpt, tmp_path / "never", input_size=TINY_INPUT)
    assert not (tmp_path / "never").exists()
