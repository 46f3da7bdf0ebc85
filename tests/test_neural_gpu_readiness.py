"""The one-command GPU readiness script runs end to end (here on the CPU with the tiny model) and writes its tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "assets" / "sample.mp4").is_file(), reason="assets/sample.mp4 not generated yet")
def test_gpu_readiness_script_writes_inference_and_training_tables(tmp_path):
    out = tmp_path / "ready"
    p = subprocess.run([sys.executable, "bench/gpu_readiness.py", "--tiny", "--device", "cpu", "--out", str(out),
                        "--dtypes", "fp32", "--batches", "2", "--sizes", "256", "--train-steps", "1",
                        "--train-batch", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    (point,) = res["inference"]
    assert point["error"] is None and point["fps"] > 0 and point["face_px"] == 256 and point["batch"] == 2
    assert point["dtype"] == "float32" or point["dtype"] == "fp32"
    assert [t["stage"] for t in res["training"]] == [1, 2]
    assert all(t["error"] is None and t["sec_per_step"] > 0 for t in res["training"])
    md = (out / "results.md").read_text()
    assert "| fp32 | 2 | 256 | off |" in md and "## Training" in md
