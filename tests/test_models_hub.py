"""save_pretrained / from_pretrained round trips, the Hugging Face cache offline, push_to_hub."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models_helpers import populate_hf_cache, tiny_net, one_thread  # noqa: F401 (fixture)
from sserd_core.errors import SSERDError
from sserd_core.models import SSERDNet
from sserd_core.models.hub import push_to_hub, resolve_model_dir

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


def assert_same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    def public(cfg):
        return json.loads(json.dumps({k: v for k, v in dict(cfg).items() if not k.startswith("_")}))
    assert public(a.config) == public(b.config)


def test_local_round_trip_is_exact(tmp_path):
    net = tiny_net(seed=3)
    net.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = SSERDNet.from_pretrained(tmp_path / "m").eval()
    assert_same_model(net, loaded)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net(x, reference=x.flip(0)), loaded(x, reference=x.flip(0)), rtol=0, atol=0)


def test_resolve_rejects_non_model_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SSERDError, match="not a SSERD model folder"):
        resolve_model_dir(tmp_path / "empty")
    (tmp_path / "x.pt").write_bytes(b"0")
    with pytest.raises(SSERDError, match="convert it first"):
        resolve_model_dir(tmp_path / "x.pt")
    with pytest.raises(SSERDError, match="neither an existing folder nor"):
        resolve_model_dir("no such thing")


HUB_SCRIPT = r"""
import json, sys, torch
from sserd_core.errors import SSERDError
from sserd_core.models import SSERDNet
from sserd_core.neural import load_editor
cache = sys.argv[1]
out = {}
net = SSERDNet.from_pretrained("sserd-test/tiny", cache_dir=cache)            # diffusers through the cache
ed = load_editor("sserd-test/tiny", cache_dir=cache, device="cpu")            # the project's loader
out["sum"] = {k: float(v.double().sum()) for k, v in net.state_dict().items()}
out["editor_same"] = all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ed.net.state_dict().values()))
try:
    load_editor("sserd-test/not-cached", cache_dir=cache)
except SSERDError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def test_hub_repo_id_from_cache_offline(tmp_path):
    net = tiny_net(seed=5)
    net.save_pretrained(tmp_path / "m")
    cache = tmp_path / "hf"
    populate_hf_cache(cache, "sserd-test/tiny", tmp_path / "m")
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", HUB_SCRIPT, str(cache)], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    expected = {k: float(v.double().sum()) for k, v in net.state_dict().items()}
    assert out["sum"] == expected
    assert out["editor_same"] is True
    assert "sserd-test/not-cached is not in the Hugging Face cache" in out["error"]
    assert "HF_HUB_OFFLINE" in out["error"]


class FakeApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))

        class Info:
            commit_url = f"https://huggingface.co/{kw['repo_id']}/commit/abc"
        return Info()


def test_push_to_hub_uploads_the_model_folder(tmp_path):
    tiny_net().save_pretrained(tmp_path / "m")
    api = FakeApi()
    url = push_to_hub(tmp_path / "m", "me/sserd-tiny", api=api, private=True)
    assert url == "https://huggingface.co/me/sserd-tiny/commit/abc"
    assert api.calls[0] == ("create_repo", "me/sserd-tiny", {"private": True, "exist_ok": True, "repo_type": "model"})
    upload = api.calls[1][1]
    assert upload["folder_path"] == str(tmp_path / "m") and upload["repo_id"] == "me/sserd-tiny"
    with pytest.raises(SSERDError, match="not a SSERD model folder"):
        push_to_hub(tmp_path, "me/x", api=api)
