"""Time the Space's expression-controls preview as a user meets it: start ``python app.py``, preview one clip
through ``gradio_client`` (``/preview_controls``).

    python scripts/measure_controls_preview.py [--clip assets/sample.mp4] [--moves 10]
                                               [--out test-artifacts/space_controls_latency.json]

The first preview of a clip tracks its face; then ``--moves`` previews at the same frame with other slider values
(a user moving sliders), then three at other frames (a frame not decoded yet). Each time is the request's wall time
as the client sees it (upload, queue and the PNG's download included). Prints (and writes) one JSON object;
docs/SPACE.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def main(argv=None) -> dict:
    from gradio_client import Client, handle_file

    import app
    from sserd_core.controls import CONTROLS
    from space_helpers import frames_in_range, start_space, stop_space

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(ROOT / "assets" / "sample.mp4"))
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "test-artifacts" / "space_controls_latency.json"))
    a = ap.parse_args(argv)

    def values(k: int) -> list:  # smile and brow_inner moved a little on each call
        v = {"smile": round(-0.8 + 0.15 * (k % 10), 2), "brow_inner": round(0.5 - 0.1 * (k % 7), 2)}
        return [v.get(c.name, 0.0) for c in CONTROLS]

    with tempfile.TemporaryDirectory() as tmp:
        space = start_space(Path(tmp))
        try:
            client = Client(space.url, verbose=False)

            def preview(at: float, k: int) -> float:
                t0 = time.monotonic()
                client.predict(handle_file(a.clip), 0, None, None, app.NO_BASE, 1.0, at, *values(k),
                               api_name="/preview_controls")
                return round(time.monotonic() - t0, 3)

            first = preview(4.0, 0)
            moves = [preview(4.0, k) for k in range(1, a.moves + 1)]
            frames = [preview(at, 0) for at in (1.0, 6.0, 7.5)]
            tracked = space.log().count("for the controls preview")
        finally:
            stop_space(space)
    result = {"clip": Path(a.clip).name, "frames": frames_in_range(a.clip, 0, 1e9), "cpus": os.cpu_count(),
              "load_average_1min": round(os.getloadavg()[0], 2), "first_preview_s": first,
              "slider_moves_s": moves, "median_slider_move_s": statistics.median(moves),
              "other_frames_s": frames, "times_tracked": tracked}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
