"""The frame-worker scheduler: how many workers, frames grouped into batches, a batch function run on a
thread pool with its results in order, and BLAS held to one thread while the workers run."""

from __future__ import annotations

import collections
import contextlib
import os
from typing import Optional

import numpy as np

from .. import media
from ..content import ContentTrack


@contextlib.contextmanager
def one_blas_thread(active: bool = True):
    """BLAS (the OpenBLAS copies NumPy, OpenCV and SciPy load) on one thread inside the block.

    A parallel-safe editor's frames are already spread over the cores by the frame workers; a
    BLAS call that hands its few-ms product or solve (the landmark warp's spline) to a thread pool
    only adds threads that spin between calls, on the cores the workers, the decoder and the
    encoder need: measured on 2 busy cores, 99 → 33 ms of CPU per 720p close-up frame. Not for
    other editors (a neural one on the CPU wants its library's threads). Without threadpoolctl,
    nothing changes."""
    if not active:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


#: CPU time of the landmark edit per frame against the encoder's, per unit of the face's share of the frame
#: (the landmarks' bounding box over the frame's area). Measured on 2 cores (x264 veryfast): the edit costs
#: ~125 ns per pixel of that box, the encode ~29 ns per pixel of the frame, so ~4.3; 6 leaves a margin.
EDIT_COST_PER_FACE_SHARE = 6.0


def default_threads(face_fraction: Optional[float] = None) -> int:
    """Frame workers used when none are asked for: one per available core, at most 4, and no more than a
    face of ``face_fraction`` of the frame needs to keep pace with the encoder on those cores.

    Workers only help while the edit is the slower half: a small face is edited faster than its frame is
    encoded, and a second worker then only adds threads that contend for the cores and the GIL. Measured
    with ``bench/bench_speed.py --threads 1 2`` on 2 cores: a 200 px face at 720p (share 0.04) ran 1.43x
    the floor with 1 worker and 1.55x with 2 (CPU 1.57x against 1.71x); a 400 px face at 720p and a 600 px
    one at 1080p (share 0.17) ran 1.91x and 1.66x with 2 workers, 2.02x and 1.87x with 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    n = max(1, min(4, cores))
    if face_fraction is not None and face_fraction > 0:
        n = min(n, max(1, int(np.ceil(cores * EDIT_COST_PER_FACE_SHARE * face_fraction))))
    return n


def face_fraction_of(content: ContentTrack) -> Optional[float]:
    """The tracked face's typical share of the frame: its landmarks' bounding box over the frame's area
    (median over the frames where it was found); None when unknown."""
    lm = content.landmarks[content.found] if content.n_frames else None
    if lm is None or not len(lm) or not content.video.width or not content.video.height:
        return None
    size = np.nanmedian(np.prod(lm.max(1) - lm.min(1), axis=1))
    return float(size) / float(content.video.width * content.video.height) if np.isfinite(size) else None


def batches(frames, n: int, size: int):
    """Group decoded frames (the first ``n``) into lists of ``size``."""
    batch: list = []
    for fr in frames:
        if fr.index >= n:
            break
        batch.append(fr)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ordered(fn, items, workers: int):
    """``fn`` over ``items`` on ``workers`` threads, results yielded in input order.

    At most ``2 * workers`` items are in flight, so memory stays bounded. OpenCV, NumPy and
    FFmpeg release the GIL, so the workers overlap. An exception in a worker (or in the
    consumer, e.g. an interrupt) cancels everything not yet started and is raised here.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sserd-frame",
                              initializer=media.worker_thread_signals)
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            while len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
