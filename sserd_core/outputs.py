"""All-or-nothing outputs: a job's files appear together, complete, or not at all.

A job (an edit with its side-by-side, preview PNGs and plot; a mux; a node's render) opens
an :class:`OutputSet`. Every file or folder it will publish is written first under a
private staging folder *in the destination's own folder* (so publishing is a rename on
one file system), named ``.sserd.RANDOM.sserd-partial`` — unique per job, so two jobs, a
user's own files and an earlier run never share a name. Only when the whole job
succeeded are the staged files renamed onto their final names, one after another, with
the interrupt signals held back for those few renames. On any failure — an exception,
a full disk, Ctrl-C, SIGTERM, SIGHUP — the staging folders are removed and nothing is
published; folders the job created for its outputs are removed again if they stayed
empty. A job killed with ``kill -9`` cannot clean up: its staging folder stays, is never
reused or deleted by a later job, and :func:`stale_partials` lists it so the CLI can
say so.

Nothing here touches a path the job did not create, except the final rename onto an
output path the user asked for (never one of the job's inputs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional, Union

from .errors import SSERDError

PARTIAL_SUFFIX = ".sserd-partial"
_OWNER = ".owner"
PathLike = Union[str, os.PathLike]

_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", -1)}
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def describe_os_error(exc: OSError, what: str = "") -> str:
    """One sentence for an OS error while writing (disk full, permission, read-only folder ...)."""
    where = f" {what}" if what else (f" {exc.filename}" if getattr(exc, "filename", None) else "")
    code = getattr(exc, "errno", None)
    if code in _DISK_ERRNOS:
        return f"Not enough disk space (or file size limit reached) while writing{where}; free some space or choose another output folder."
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Cannot write{where}: {exc.strerror or 'permission denied'}; choose a folder you can write to."
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    return f"Could not write{where}: {reason}."


def check_writable_folder(folder: PathLike) -> None:
    """Raise :class:`SSERDError` unless files can be created in ``folder`` (or the folder can be made)."""
    d = Path(folder)
    probe = d
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise SSERDError(f"Cannot create the output folder {d}: {probe} is a file, not a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SSERDError(f"Cannot write to {probe}: permission denied; choose a folder you can write to.")


def check_free_space(folder: PathLike, needed_bytes: int) -> None:
    """Raise :class:`SSERDError` if the file system of ``folder`` has clearly less free space than needed."""
    d = Path(folder)
    while not d.exists() and d.parent != d:
        d = d.parent
    try:
        free = shutil.disk_usage(d).free
    except OSError:
        return
    if free < needed_bytes:
        raise SSERDError(f"Not enough free disk space in {d}: the outputs need about {needed_bytes / 2**20:.0f} MiB, "
                         f"{free / 2**20:.0f} MiB are free; free some space or choose another output folder.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_partials(folder: PathLike) -> list[Path]:
    """Staging folders (``*.sserd-partial``) in ``folder`` whose job is no longer running (e.g. killed with -9)."""
    d = Path(folder)
    if not d.is_dir():
        return []
    found = []
    with contextlib.suppress(OSError):
        for p in d.iterdir():
            if not p.name.endswith(PARTIAL_SUFFIX):
                continue
            owner = p / _OWNER
            alive = False
            with contextlib.suppress(OSError, ValueError):
                host, pid = owner.read_text().split()[:2]
                alive = host == socket.gethostname() and _pid_alive(int(pid))
            if not alive:
                found.append(p)
    return sorted(found)


# ------------------------------------------------------------------ holding signals during publication

_hold = threading.local()
_pending: list = []


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back while files are renamed (main thread only); deliver them afterwards.

    A signal that arrives while the outputs are being published is raised right after the
    last rename, as :class:`~sserd_core.errors.Interrupted` with ``published=True``, so the
    caller can say truthfully that the outputs are complete.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        pending = signal.sigpending() & set(_SIGNALS)
        _hold.published = bool(pending)
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)  # pending signals are delivered here
        finally:
            _hold.published = False


def publishing_interrupted() -> bool:
    """True inside a signal handler that runs because a signal was held back during publication."""
    return bool(getattr(_hold, "published", False))


# ------------------------------------------------------------------ the output set

class OutputSet:
    """Stage a job's outputs and publish them together (see the module docs).

    ::

        with OutputSet(inputs=(src,)) as outs:
            video = outs.file("out/x.mp4")            # write here; appears as out/x.mp4 on success
            frames = outs.folder("out/x_preview")     # a folder to fill
            scratch = outs.scratch("video.mp4")       # an intermediate, never published
            ...
        # here: all published, or (on any exception) none, and no temporary left
    """

    def __init__(self, inputs: tuple = ()):
        self._inputs = [Path(p).resolve() for p in inputs if p is not None and not _is_array(p)]
        self._stage_dirs: dict[Path, Path] = {}      # destination folder -> its staging folder
        self._entries: list[tuple[Path, Path, bool]] = []  # (staged, final, is_folder)
        self._created_dirs: list[Path] = []
        self._finals: set[Path] = set()
        self._scratch_dir: Optional[Path] = None

    # -- planning
    def _check_final(self, path: PathLike) -> Path:
        final = Path(path).resolve()
        for src in self._inputs:
            if final == src:
                raise SSERDError(f"Output path {path} is the input file; choose another output path "
                                 "(the input is never modified).")
        if final in self._finals:
            raise SSERDError(f"Two outputs of one job have the same path {path}; give each its own path.")
        self._finals.add(final)
        return final

    def _stage_dir(self, folder: Path) -> Path:
        folder = folder.resolve()
        if folder in self._stage_dirs:
            return self._stage_dirs[folder]
        self._make_parents(folder)
        try:
            d = Path(tempfile.mkdtemp(prefix=".sserd.", suffix=PARTIAL_SUFFIX, dir=str(folder)))
        except OSError as exc:
            raise SSERDError(describe_os_error(exc, f"to {folder}")) from exc
        (d / _OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        self._stage_dirs[folder] = d
        return d

    def _make_parents(self, folder: Path) -> None:
        missing = []
        p = folder
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for m in reversed(missing):
            try:
                m.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise SSERDError(describe_os_error(exc, f"the folder {m}")) from exc
            self._created_dirs.append(m)

    def file(self, path: PathLike) -> Path:
        """Where to write the output that will appear at ``path`` (same name, in a staging folder)."""
        final = self._check_final(path)
        if final.is_dir():
            raise SSERDError(f"Output path {path} is a folder; give a file name.")
        staged = self._stage_dir(final.parent) / final.name
        self._entries.append((staged, final, False))
        return staged

    def folder(self, path: PathLike) -> Path:
        """A folder to fill; its files appear in ``path`` (created, or added to an existing folder)."""
        final = self._check_final(path)
        if final.exists() and not final.is_dir():
            raise SSERDError(f"{path} exists and is not a folder; choose another preview folder.")
        staged = self._stage_dir(final.parent) / final.name
        staged.mkdir()
        self._entries.append((staged, final, True))
        return staged

    def scratch(self, name: str) -> Path:
        """A path for an intermediate file that is removed with the staging folders, never published."""
        if self._scratch_dir is None:
            base = next(iter(self._stage_dirs.values()), None)
            if base is None:
                base = self._stage_dir(Path(tempfile.gettempdir()))
            self._scratch_dir = base / ".scratch"
            self._scratch_dir.mkdir()
        return self._scratch_dir / name

    # -- finishing
    def commit(self) -> None:
        """Publish every staged output (all must exist), then remove the staging folders."""
        for staged, final, is_folder in self._entries:
            if not staged.exists():
                raise SSERDError(f"Internal error: the output {final.name} was never written.")
        with _signals_held():
            for staged, final, is_folder in self._entries:
                try:
                    if is_folder and final.is_dir():
                        for f in sorted(staged.iterdir()):
                            os.replace(f, final / f.name)
                    else:
                        os.replace(staged, final)
                except OSError as exc:
                    raise SSERDError(describe_os_error(exc, str(final))) from exc
            self._entries.clear()
            self._created_dirs.clear()  # now hold published files
            self._cleanup()

    def abort(self) -> None:
        """Remove everything staged and every folder this job created that is still empty."""
        self._entries.clear()
        self._cleanup()
        for d in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        self._created_dirs.clear()

    def _cleanup(self) -> None:
        for d in self._stage_dirs.values():
            shutil.rmtree(d, ignore_errors=True)
        self._stage_dirs.clear()
        self._scratch_dir = None

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


__all__ = ["OutputSet", "PARTIAL_SUFFIX", "stale_partials", "check_writable_folder", "check_free_space",
           "describe_os_error", "publishing_interrupted"]
