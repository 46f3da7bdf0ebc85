"""Screenshots of the expression controls in a real headless Chromium (docs/images/controls_*.png).

    python scripts/make_controls_screenshots.py [--only node|space]

- ``controls_node.png``: the ComfyUI graph editor (the pinned ComfyUI in ``$COMFYUI_DIR``, run with the venv in
  ``$COMFYUI_VENV``, as the tests run it) with the shipped workflow ``sserd_expression_controls`` loaded and
  queued: Expression Controls shows its note and its one-frame preview (source | edited).
- ``controls_space.png``: the Space (``python app.py``) with a clip uploaded, a few sliders moved and the
  preview shown.

Needs Debian's ``chromium`` and ``chromium-driver``; writes PNGs of at most ~300 kB. Not run by the tests.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "docs" / "images"
MAX_BYTES = 300_000
#: the Space screenshot's sliders: a smile with raised cheeks on Grace Hopper (neutral in the source)
SPACE_CONTROLS = {"smile": 1.0, "cheek_raise": 0.8, "brow_inner": 0.4}
#: and the time of its preview frame (seconds from Start)
SPACE_AT = 1.2


def chromium(width: int, height: int):
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium must not phone home or fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={width},{height}", "--no-first-run", "--disable-background-networking",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    drv.set_script_timeout(300)
    return drv


def save_small(png: bytes, path: Path, crop=None) -> Path:
    """The screenshot (cropped to ``crop`` = (left, top, right, bottom) px), as a PNG of at most MAX_BYTES:
    fewer colours, then a smaller size, until it fits."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    if crop:
        img = img.crop(tuple(int(round(v)) for v in crop))
    scale = 1.0
    while True:
        im = img if scale == 1.0 else img.resize((int(img.width * scale), int(img.height * scale)), Image.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "PNG",
                                                                                                  optimize=True)
        if buf.tell() <= MAX_BYTES or scale < 0.4:
            break
        scale *= 0.85
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    print(f"wrote {path} ({im.width}x{im.height}, {buf.tell() // 1000} kB)")
    return path


# ----------------------------------------------------------------------------- ComfyUI

NODE_JS = """
  const [wf, done] = arguments;
  (async () => {
    const app = window.app;
    await app.loadGraphData(wf);
    await new Promise(r => setTimeout(r, 500));
    const byType = t => app.graph._nodes.find(n => n.type === t);
    const node = byType('SSERD_ExpressionControls');
    await app.queuePrompt(0, 1);
    const t0 = Date.now();
    while (Date.now() - t0 < 240000) {
      const q = await (await fetch('/queue')).json();
      const imgs = node.imgs || [];
      if (imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0) && node.sserdNote?.text
          && !q.queue_running.length && !q.queue_pending.length) break;
      await new Promise(r => setTimeout(r, 250));
    }
    // the view: Disentangle Content | Expression Controls | Render Face at scale 1
    const grow = n => { const s = n.computeSize(); n.setSize([Math.max(n.size[0], s[0]), Math.max(n.size[1], s[1])]); };
    grow(node);
    // Render Face's summary lines are wider than its default width: give them room (Mux Audio and Save Video
    // move right to make it)
    const render = byType('SSERD_RenderFace');
    render.setSize([450, render.size[1]]);
    for (const n of app.graph._nodes.filter(n => ['SSERD_MuxAudio', 'SaveVideo'].includes(n.type))) n.pos[0] += 160;
    app.canvas.ds.scale = 1.0;
    app.canvas.ds.offset = [-360, 120];
    await new Promise(r => setTimeout(r, 1500));
    app.canvas.draw(true, true);
    const rect = document.querySelector('#graph-canvas').getBoundingClientRect();
    const box = n => { const [x, y, w, h] = n.getBounding();
      return [rect.left + (x + app.canvas.ds.offset[0]) * app.canvas.ds.scale,
              rect.top + (y + app.canvas.ds.offset[1]) * app.canvas.ds.scale, w * app.canvas.ds.scale,
              h * app.canvas.ds.scale]; };
    done({controls: box(node), content: box(byType('SSERD_DisentangleContent')),
          render: box(byType('SSERD_RenderFace')), note: node.sserdNote.text, imgs: (node.imgs || []).length});
  })().catch(e => done({error: String(e && e.stack || e)}));
"""


def comfyui_screenshot(path: Path) -> Path:
    import comfyui_helpers as H
    from sserd_core import pipeline

    python = H.ensure_venv()
    with tempfile.TemporaryDirectory(prefix="sserd-shot-") as tmp:
        srv = H.ComfyServer(python, Path(tmp))
        src = ROOT / "assets" / "sample.mp4"
        pipeline.write_clip(pipeline.load_video(src, end=2.0), srv.input_dir / "sample.mp4", (str(src), 0.0, 2.0))
        settings = Path(tmp) / "user" / "default"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "comfy.settings.json").write_text(json.dumps(
            {"Comfy.TutorialCompleted": True, "Comfy.Notification.ShowVersionUpdates": False}))
        srv.start()
        drv = chromium(1500, 1250)
        try:
            drv.get(srv.url)
            deadline = time.monotonic() + 90
            while not drv.execute_script("return !!(window.app && window.app.graph && window.app.extensions"
                                         " && window.app.extensions.some(e => e.name === 'sserd.emotion'))"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the ComfyUI page did not load the pack's extension")
                time.sleep(0.5)
            got = drv.execute_async_script(NODE_JS, H.load_workflow("sserd_expression_controls"))
            if "error" in got:
                raise RuntimeError(got["error"])
            print("node note:", got["note"].replace("\n", " | "))
            xs = [got[k][0] for k in ("content", "controls", "render")]
            right = [got[k][0] + got[k][2] for k in ("content", "controls", "render")]
            tops = [got[k][1] for k in ("content", "controls", "render")]
            bottom = got["controls"][1] + got["controls"][3]
            crop = (max(0, min(xs) - 20), max(0, min(tops) - 30), max(right) + 20, bottom + 20)  # the badges too
            return save_small(drv.get_screenshot_as_png(), path, crop)
        finally:
            drv.quit()
            srv.stop()


# ----------------------------------------------------------------------------- the Space

def space_screenshot(path: Path) -> Path:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from space_helpers import cut_clip, start_space, stop_space

    with tempfile.TemporaryDirectory(prefix="sserd-shot-") as tmp:
        clip = cut_clip(ROOT / "assets" / "sample_hopper.mp4", Path(tmp) / "sample_hopper.mp4", 2.0)
        space = start_space(Path(tmp) / "space")
        drv = chromium(1400, 1000)
        try:
            drv.get(space.url)
            wait = WebDriverWait(drv, 120)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sserd-video input[type=file]"))
            drv.find_element(By.CSS_SELECTOR, "#sserd-video input[type=file]").send_keys(str(clip))
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sserd-video video"))
            for name, value in SPACE_CONTROLS.items():
                box = drv.find_element(By.CSS_SELECTOR, f"#sserd-control-{name} input[type=number]")
                drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
                box.send_keys(Keys.CONTROL, "a")
                box.send_keys(str(value), Keys.TAB)
            at = drv.find_element(By.CSS_SELECTOR, "#sserd-controls-at input[type=number]")
            at.send_keys(Keys.CONTROL, "a")
            at.send_keys(str(SPACE_AT), Keys.TAB)
            button = drv.find_element(By.CSS_SELECTOR, "#sserd-controls-show")
            drv.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", button)
            note = lambda d: d.find_element(By.CSS_SELECTOR, "#sserd-controls-note").text  # noqa: E731
            # the last preview shown (each slider's release asked for one too, at the time then set), none running
            WebDriverWait(drv, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sserd-controls-preview img")
                                          and "Shown" in note(d) and "processing" not in note(d)
                                          and "smile +1.00" in note(d) and f"({SPACE_AT:.2f} s)" in note(d))
            time.sleep(1.0)
            print("space note:", drv.find_element(By.CSS_SELECTOR, "#sserd-controls-note").text.replace("\n", " | "))
            # the whole section in view: the intro line and both columns
            height = drv.execute_script("return document.documentElement.scrollHeight")
            drv.set_window_size(1400, int(height) + 40)
            time.sleep(1.0)
            drv.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.5)
            box = lambda sel: drv.execute_script(  # noqa: E731 - the element's box in the screenshot's pixels
                "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
                "return [r.left, r.top, r.right, r.bottom];", sel)
            for _ in range(4):  # a taller window until the section's bottom is in the screenshot
                intro, row = box("#sserd-controls-intro"), box("#sserd-controls")
                crop = (row[0] - 10, intro[1] - 10, row[2] + 10, row[3] + 10)
                shown = drv.execute_script("return window.innerHeight")
                if crop[3] <= shown:
                    break
                size = drv.get_window_size()
                drv.set_window_size(size["width"], size["height"] + int(crop[3] - shown) + 60)
                time.sleep(1.0)
                drv.execute_script("window.scrollTo(0, 0)")
            return save_small(drv.get_screenshot_as_png(), path, crop)
        finally:
            drv.quit()
            stop_space(space)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["node", "space"])
    a = ap.parse_args(argv)
    if a.only in (None, "node"):
        comfyui_screenshot(OUT / "controls_node.png")
    if a.only in (None, "space"):
        space_screenshot(OUT / "controls_space.png")


if __name__ == "__main__":
    main()
