"""The project's background threads: signal mask, and decode-ahead."""

from __future__ import annotations

import queue
import threading
from typing import Iterator


def worker_thread_signals() -> None:
    """Called first in every background thread of the project: block SIGINT/SIGTERM/SIGHUP there.

    The kernel hands a process-directed signal to any thread that does not block it; if that is a
    decode, encode or frame-worker thread (or one FFmpeg starts from it, which inherits the mask),
    the main thread would only see it when its current blocking call returns. Blocked here, every
    such signal reaches the main thread at once, where the CLI turns it into a clean stop.
    """
    import signal

    if hasattr(signal, "pthread_sigmask"):
        wanted = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)


def prefetch(iterable, depth: int = 4) -> Iterator:
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead (decoding overlaps compute).

    FFmpeg decodes without holding the GIL, so this runs decode in parallel with the
    caller's work. Exceptions are re-raised in the caller; stopping early (break, an
    exception, a cancelled job) stops the thread. A stop signal (:mod:`sserd_core.stop`) pending when an
    item or the end arrives is raised instead, so a stopped job never reads as a clip that ended early.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def hand_on(item) -> bool:
        """Queue ``item`` for the consumer; False once it has stopped (never blocks past that: a consumer that
        left while the queue was full would otherwise keep this thread, and whoever joins it, waiting)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        worker_thread_signals()
        try:
            for item in iterable:
                if not hand_on(item):
                    return
            hand_on(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            hand_on(exc)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:  # a generator: its decoder is closed here, on the thread that used it
                try:
                    close()
                except Exception:  # noqa: BLE001 - nothing left to report it to
                    pass

    from .. import stop as job_stop

    t = threading.Thread(target=run, name="sserd-decode", daemon=True)
    t.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.2)
            except queue.Empty:
                job_stop.check()  # a stop signal that could not be raised where it arrived
                continue
            if item is done:
                job_stop.check()  # a stop that could not be raised is not the end of the frames (no "no face")
                return
            if isinstance(item, BaseException):
                raise item
            job_stop.check()
            yield item
    finally:
        stop.set()
        # joined, not abandoned: a decoder thread left inside FFmpeg while its container is freed or the
        # interpreter shuts down can crash the process (it stops within one frame: it checks `stop`)
        t.join(timeout=60)
