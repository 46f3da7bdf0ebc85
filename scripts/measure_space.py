"""Time the Space as a user meets it: start ``python app.py``, edit a clip through ``gradio_client``.

    python scripts/measure_space.py [--clip assets/sample.mp4] [--runs 3] [--out test-artifacts/space_speed.json]

Prints (and writes) one JSON object: for each run the wall time of the request as the client
sees it and the app's own summary figures (frames, seconds, rendering frames/s), then the
medians. docs/SPACE.md quotes these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None) -> dict:
    from gradio_client import Client, handle_file

    from space_helpers import frames_in_range, start_space, stop_space

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(ROOT / "assets" / "sample.mp4"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--emotion", default="sad")
    ap.add_argument("--intensity", type=float, default=0.9)
    ap.add_argument("--out", default=str(ROOT / "test-artifacts" / "space_speed.json"))
    a = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        space = start_space(Path(tmp))
        try:
            client = Client(space.url, verbose=False)
            for _ in range(a.runs):
                t0 = time.monotonic()
                _, _, _, summary = client.predict(handle_file(a.clip), "label", a.emotion, a.intensity, None, "", 0,
                                                  None, None, "landmark", "", api_name="/edit")
                wall = time.monotonic() - t0
                m = re.search(r"Edited\*\* (\d+) frames in ([\d.]+) s \(rendering ([\d.]+) frames/s", summary)
                runs.append({"request_seconds": round(wall, 2), "frames": int(m[1]), "edit_seconds": float(m[2]),
                             "rendering_fps": float(m[3])})
        finally:
            stop_space(space)
    result = {
        "clip": Path(a.clip).name, "frames": frames_in_range(a.clip, 0, 1e9), "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2), "runs": runs,
        "median_request_seconds": statistics.median(r["request_seconds"] for r in runs),
        "median_rendering_fps": statistics.median(r["rendering_fps"] for r in runs),
        "median_overall_fps": round(statistics.median(r["frames"] / r["edit_seconds"] for r in runs), 1),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
