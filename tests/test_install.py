"""Quickstart 1 as a newcomer runs it: the base install is small, pulls no CUDA wheel, and the
default (landmark, CPU) edit runs without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, SAMPLE

from sserd_core import media

pytestmark = pytest.mark.slow  # a real pip install

_EDIT_AND_CHECK = """
import sys
from sserd_core import cli
rc = cli.main(["edit", sys.argv[1], "-o", sys.argv[2], "--emotion", "sad", "--end", "1", "-q"])
assert rc == 0, rc
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH_LOADED" if loaded else "NO_TORCH")
"""


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.timeout(1200)
def test_base_install_is_small_has_no_cuda_and_edits_without_torch(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                       env=env, timeout=1100)
    assert r.returncode == 0, r.stderr[-3000:]
    listed = json.loads(subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True,
                                       text=True, check=True, env=env).stdout)
    names = {d["name"].lower() for d in listed}
    assert "torch" not in names, "the base install must not pull torch"
    assert not [n for n in names if n.startswith("nvidia-") or n == "triton"], sorted(names)
    site = next((venv / "lib").glob("python3*/site-packages"))
    size = _dir_size(site)
    assert size < 1 * 2**30, f"base install is {size / 2**20:.0f} MiB"
    out = tmp_path / "sad.mp4"
    run = subprocess.run([str(py), "-c", _EDIT_AND_CHECK, str(SAMPLE), str(out)], capture_output=True, text=True,
                         env=env, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("NO_TORCH"), run.stdout
    info = media.probe_video(out)
    assert info.n_frames == 25 and info.has_audio
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "base_install.json").write_text(json.dumps(
        {"site_packages_mib": round(size / 2**20), "packages": sorted(names)}, indent=1))
