"""Stopping a job on SIGINT / SIGTERM / SIGHUP, once, whatever arrives after.

The first signal wins: it is recorded and raised in the main thread as
:class:`~sserd_core.errors.Interrupted` (a ``KeyboardInterrupt``), so every ``finally`` and
``with`` block cleans up as for Ctrl-C. Every later signal is only counted: it never interrupts
the clean-up itself. That matters for native code: a second exception raised while a
``Thread.join`` waits for the encoder or the decoder made the clean-up close an FFmpeg codec
that its thread was still using (a use-after-free: exit 139), left the staging folder half
removed, or printed ``Exception ignored ... Interrupted`` from a generator's ``finally``.

Background threads never see the signals (:func:`~sserd_core.media.worker_thread_signals`
blocks them there); they stop through their own stop flags and are joined before the job
returns. Where the first exception lands somewhere Python cannot raise it (a finaliser or
a native callback: "unraisable"), it is not lost: the flag stays set and the next
:func:`check` — at every frame, every muxed packet and before publishing — raises it again.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Optional

from .errors import Interrupted

SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))

_state = {"signum": None, "count": 0, "exiting": False}


def requested() -> Optional[int]:
    """The number of the signal that asked the job to stop (None while none has)."""
    return _state["signum"]


def check() -> None:
    """Raise :class:`Interrupted` if a signal has asked the job to stop (a checkpoint in long loops)."""
    signum = _state["signum"]
    if signum is not None:
        raise Interrupted(signum)


_hold = threading.local()  # .published: set while a signal held back during publication is delivered


def publishing_interrupted() -> bool:
    """True inside a signal handler that runs because a signal was held back during publication."""
    return bool(getattr(_hold, "published", False))


def _handler(signum, frame) -> None:
    # imports nothing: the signal may arrive while a module is half imported
    _state["count"] += 1
    if _state["signum"] is not None or _state["exiting"]:
        return  # the job is already stopping: never interrupt its clean-up
    _state["signum"] = int(signum)
    raise Interrupted(signum, published=publishing_interrupted())


def _unraisable(hook):
    def quiet(unraisable) -> None:
        if isinstance(unraisable.exc_value, Interrupted) and _state["signum"] is not None:
            return  # our own stop, landed where it cannot be raised: check() raises it again
        hook(unraisable)
    return quiet


def install() -> Optional[dict]:
    """Install the handlers (main thread only; None elsewhere, where signals are left alone). Returns what
    :func:`uninstall` needs."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _state["signum"], _state["count"], _state["exiting"] = None, 0, False
    old = {}
    for sig in SIGNALS:
        try:
            old[sig] = signal.signal(sig, _handler)
        except ValueError:  # pragma: no cover - not the main interpreter
            break
    saved = {"handlers": old, "unraisable": sys.unraisablehook}
    sys.unraisablehook = _unraisable(sys.unraisablehook)
    return saved


def uninstall(saved: Optional[dict]) -> None:
    """Put back what :func:`install` replaced — unless a signal stopped the job: the process is then on its
    way out with 128 + N, and the signals are ignored from here on rather than killing it half-way
    through its last words."""
    if saved is None:
        return
    if _state["signum"] is None:
        for sig, h in saved["handlers"].items():
            signal.signal(sig, h)
        sys.unraisablehook = saved["unraisable"]
    else:
        # more signals of a burst are ignored by the kernel from here on: Python's own shutdown puts
        # SIG_DFL back for every handler it installed (a late SIGTERM would then kill the process
        # before it exits with its code), but leaves SIG_IGN alone. Later API calls in this process
        # are not stopped by the old signal.
        for sig in saved["handlers"]:
            signal.signal(sig, signal.SIG_IGN)
        _state["signum"], _state["exiting"] = None, True


__all__ = ["SIGNALS", "check", "install", "requested", "uninstall"]
