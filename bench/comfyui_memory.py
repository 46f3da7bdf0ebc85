"""Peak memory of a real ComfyUI server running the label-edit workflow, short vs long clip.

The node pack streams frames and passes videos between nodes as files, so the server's
peak resident memory should not grow with clip length (unless an IMAGE output is
connected). This starts a fresh server per clip (so its peak, VmHWM, belongs to that one
prompt), runs workflows/sserd_label_edit.json on the first N seconds of assets/sample.mp4
and prints the peak RSS and the run time.

    .venv/bin/python bench/comfyui_memory.py [--seconds 2 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import comfyui_helpers as H  # noqa: E402
from test_comfyui_server import SAMPLE, write_clip  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def run(seconds: float, python: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        srv = H.ComfyServer(python, Path(tmp))
        write_clip(SAMPLE, srv.input_dir / "sample.mp4", seconds)
        frames = H.probe(srv.input_dir / "sample.mp4")["frames"]
        srv.start()
        try:
            idle = peak_rss_mib(srv.proc.pid)
            api = H.ui_to_api(H.load_workflow("sserd_label_edit"), srv.object_info())
            t0 = time.perf_counter()
            entry = srv.run(api, timeout=1800)
            took = time.perf_counter() - t0
            assert entry["status"]["status_str"] == "success", H.status_messages(entry)
            return {"seconds": seconds, "frames": frames, "peak_rss_mib_idle": round(idle),
                    "peak_rss_mib": round(peak_rss_mib(srv.proc.pid)), "prompt_s": round(took, 1)}
        finally:
            srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0])
    args = ap.parse_args()
    python = H.ensure_venv()
    for s in args.seconds:
        print(run(s, python), flush=True)


if __name__ == "__main__":
    main()
