"""Render the README's before/after pictures from the sample clips (docs/images/*.png)."""

from pathlib import Path

import cv2
import numpy as np

from sserd_core import media, pipeline

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"


def label(img, text):
    img = img.copy()
    cv2.rectangle(img, (0, 0), (img.shape[1], 26), (0, 0, 0), -1)
    cv2.putText(img, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def row(clip, labels, frame_index=30):
    video = pipeline.load_video(clip, end=(frame_index + 2) / 25)
    track = pipeline.disentangle_content(video)
    src = [f.rgb for f in media.iter_frames(video)][frame_index]
    crop = (slice(24, 360), slice(56, 392))
    tiles = [label(src[crop], "source")]
    for lab in labels:
        got = {}
        pipeline.render_face(track, pipeline.extract_emotion(lab), "/tmp/_readme.mp4",
                             frame_sink=lambda i, rgb: got.__setitem__(i, rgb))
        tiles.append(label(got[frame_index][crop], lab))
    return np.concatenate(tiles, 1)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    a = row(ROOT / "assets" / "sample.mp4", ["neutral", "sad", "surprised", "angry", "fear", "disgusted"])
    b = row(ROOT / "assets" / "sample_hopper.mp4", ["happy", "sad", "angry", "disgusted"])
    media.write_image(OUT / "before_after_astronaut.png", a)
    media.write_image(OUT / "before_after_hopper.png", b)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
