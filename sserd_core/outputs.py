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
output path the user asked for. Never one of the job's inputs: every path the job reads (the
source, a reference image or clip, a model folder) is compared with every destination by
identity — the real path after symlinks and ``..``, and the device and inode, so a hard link
is caught too — and a model folder cannot receive an output anywhere inside it. A file the
job writes into an existing folder (a preview frame) never replaces a file that is already
there. Right before publishing, every destination is checked again (the world may have
changed while the job ran: a folder made where a file goes, a preview file appeared);
publishing is then all or nothing: an output it replaces is kept as a hard link until every
rename has succeeded, and restored if one fails. A replaced file keeps its permission bits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import stat
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


def _user_path(path) -> str:
    """A path as the user knows it: a file in a job's staging folder is named by where it was going to appear
    (the staging folder sits in the output's own folder, under the output's own name)."""
    p = Path(os.fsdecode(path))
    for i, part in enumerate(p.parts):
        if part.endswith(PARTIAL_SUFFIX):
            rest = [x for x in p.parts[i + 1:] if x != ".scratch"]
            return str(Path(*p.parts[:i], *rest[:1])) if rest and not rest[0].startswith(".") and \
                p.parts[i + 1:i + 2] != (".scratch",) else f"the folder {Path(*p.parts[:i])}"
    return str(p)


def describe_os_error(exc: OSError, what: str = "") -> str:
    """One sentence for an OS error while writing (disk full, permission, read-only folder ...)."""
    where = f" {what}" if what else (f" {_user_path(exc.filename)}" if getattr(exc, "filename", None) else "")
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


# ------------------------------------------------------------------ file identity

def file_key(path: PathLike) -> Optional[tuple]:
    """``(st_dev, st_ino)`` of what ``path`` names after symlinks (None if it does not exist)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def real(path: PathLike) -> Path:
    """``path`` made absolute with every symlink and ``..`` resolved (what it would name if created)."""
    return Path(os.path.realpath(os.fspath(path)))


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: the same real path, or the same device and inode (a hard link)."""
    if real(a) == real(b):
        return True
    ka, kb = file_key(a), file_key(b)
    return ka is not None and ka == kb


def signature(path: PathLike) -> Optional[tuple]:
    """What identifies a file's content cheaply: device, inode, size and modification time (None if missing)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Input:
    """A path a job reads, with what it is for messages (``"the input video"``, ``"the reference"``, ...)."""

    def __init__(self, path: PathLike, role: str = "an input of this job"):
        self.path = Path(path)
        self.role = role
        self.real = real(path)
        self.key = file_key(path)
        self.is_dir = self.real.is_dir()

    def clashes_with(self, destination: PathLike) -> bool:
        """True when writing ``destination`` would replace this input (or write into it, for a folder)."""
        d = real(destination)
        if d == self.real:
            return True
        k = file_key(destination)
        if k is not None and k == self.key:
            return True
        if self.is_dir and self.real in d.parents:
            return True  # an output inside a model folder the job reads
        return False

    def refusal(self, destination: PathLike, what: str = "Output path") -> str:
        inside = self.is_dir and real(destination) != self.real and file_key(destination) != self.key
        where = f"inside {self.role} {self.path}" if inside else f"{self.role} ({self.path})"
        return (f"{what} {destination} is {where}; choose another path (a file the job reads is never "
                "overwritten).")


def as_inputs(inputs) -> list:
    """Normalise ``inputs`` (paths, :class:`Input` objects, or a mapping role → path) to :class:`Input` objects;
    arrays and None are skipped."""
    if isinstance(inputs, dict):
        items = [Input(p, role) for role, p in inputs.items() if _is_path(p)]
    else:
        items = [p if isinstance(p, Input) else Input(p) for p in inputs if isinstance(p, Input) or _is_path(p)]
    return items


def _is_path(p) -> bool:
    return isinstance(p, (str, os.PathLike)) and str(p) != ""


def check_destination(destination: PathLike, inputs, what: str = "Output path") -> None:
    """Raise :class:`SSERDError` if writing ``destination`` would overwrite (or write into) one of ``inputs``."""
    for inp in as_inputs(inputs):
        if inp.clashes_with(destination):
            raise SSERDError(inp.refusal(destination, what))


# ------------------------------------------------------------------ holding signals during publication

from .stop import _hold, publishing_interrupted  # noqa: E402 - the flag the signal handler reads


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


# ------------------------------------------------------------------ this process's staging folders and publications

_live: set = set()          # staging folders made and not yet removed
_published: list = []      # outputs published since the process started (the CLI runs one job)


def live_staging() -> list:
    """Staging folders this process made that still exist (a clean-up that could not remove one)."""
    return sorted(p for p in _live if p.exists())


def published_since_start() -> list:
    """The outputs this process has published (renamed into place)."""
    return list(_published)


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

    def __init__(self, inputs=()):
        self._inputs = as_inputs(inputs)
        self._stage_dirs: dict[Path, Path] = {}      # destination folder -> its staging folder
        self._entries: list[tuple[Path, Path, bool]] = []  # (staged, final, is_folder)
        self._created_dirs: list[Path] = []
        self._finals: set[Path] = set()
        self._scratch_dir: Optional[Path] = None

    # -- planning
    def _check_final(self, path: PathLike) -> Path:
        final = real(path)
        for inp in self._inputs:
            if inp.clashes_with(final):
                if inp.role == "an input of this job" and inp.real == final:
                    raise SSERDError(f"Output path {path} is the input file; choose another output path "
                                     "(the input is never modified).")
                raise SSERDError(inp.refusal(path))
        if final in self._finals:
            raise SSERDError(f"Two outputs of one job have the same path {path}; give each its own path.")
        self._finals.add(final)
        return final

    def _stage_dir(self, folder: Path) -> Path:
        folder = real(folder)
        if folder in self._stage_dirs:
            return self._stage_dirs[folder]
        self._make_parents(folder)
        try:
            d = Path(tempfile.mkdtemp(prefix=".sserd.", suffix=PARTIAL_SUFFIX, dir=str(folder)))
        except OSError as exc:
            raise SSERDError(describe_os_error(exc, f"to {folder}")) from exc
        _live.add(d)
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
    def _plan(self) -> list:
        """Check every destination again, right before publishing: ``[(staged, final, is_folder, members)]``.

        The world may have changed while the job ran; any of these makes the whole job fail with
        nothing published: a folder (or anything but a file) where a file goes, a file where a folder
        goes, a file already in a preview folder where the job would add one, two outputs on one path,
        an output on one of the job's inputs."""
        plan, seen = [], {}

        def claim(final: Path, what: str) -> None:
            for inp in self._inputs:
                if inp.clashes_with(final):
                    raise SSERDError(inp.refusal(final, what))
            if final in seen:
                raise SSERDError(f"Two outputs of one job would have the same path {final} ({seen[final]} and "
                                 f"{what.lower()}); give each its own path.")
            seen[final] = what.lower()

        for staged, final, is_folder in self._entries:
            if not staged.exists():
                raise SSERDError(f"Internal error: the output {final.name} was never written.")
            if not is_folder:
                claim(final, "The output")
                if final.is_dir() or (final.exists() and not final.is_file()):
                    raise SSERDError(f"{final} became a folder while the job ran; nothing was written. Remove it "
                                     "or choose another output path.")
                plan.append((staged, final, False, []))
                continue
            if final.exists() and not final.is_dir():
                raise SSERDError(f"{final} is no longer a folder (something replaced it while the job ran); "
                                 "nothing was written. Remove it or choose another preview folder.")
            into = final.is_dir()  # an existing folder: the files are added to it; else the folder is renamed
            members = sorted(staged.iterdir())
            for f in members:
                claim(final / f.name, "A preview frame")
                if into and os.path.lexists(final / f.name):
                    raise SSERDError(f"{final / f.name} already exists and this job did not write it; nothing was "
                                     "written. Move it away, or choose another output name (preview frames never "
                                     "replace a file).")
            plan.append((staged, final, True, members if into else None))
        return plan

    def commit(self) -> None:
        """Publish every staged output (all must exist), then remove the staging folders.

        All or nothing: each destination is checked again first (:meth:`_plan`); an output that replaces
        an existing file keeps that file as a hard link in the staging folder until every rename has
        succeeded, and a failed rename puts back everything published so far."""
        from . import stop

        stop.check()  # a stop that could not be raised where it arrived: nothing is published
        plan = self._plan()
        with _signals_held():
            done: list = []  # what to undo: ("file", final, backup or None) / ("member", path) / ("folder", path)
            try:
                for staged, final, is_folder, members in plan:
                    if not is_folder:
                        backup = self._keep_replaced(staged, final)
                        os.replace(staged, final)
                        done.append(("file", final, backup))
                    elif members is not None:  # into an existing folder
                        for f in members:
                            target = final / f.name
                            if os.path.lexists(target):  # appeared in the last instant: never replaced
                                raise FileExistsError(errno.EEXIST, "a file appeared there while publishing",
                                                      str(target))
                            os.replace(f, target)
                            done.append(("member", target, None))
                    else:
                        os.rename(staged, final)  # fails if something made a non-empty folder there meanwhile
                        done.append(("folder", final, None))
            except OSError as exc:
                self._undo(done)
                raise SSERDError(describe_os_error(exc, str(getattr(exc, "filename", None) or final))
                                 + " Nothing was published.") from exc
            except BaseException:
                self._undo(done)
                raise
            # what reached its final place (not the staging folder of an enclosing job)
            _published.extend(path for _, path, _ in done if not any(d in path.parents for d in _live))
            self._entries.clear()
            self._created_dirs.clear()  # now hold published files
            self._cleanup()

    def _keep_replaced(self, staged: Path, final: Path) -> Optional[Path]:
        """Before ``staged`` replaces an existing file ``final``: give ``staged`` that file's permission bits, and
        keep the file itself as a hard link beside ``staged`` (restored if publishing fails). None: nothing to keep."""
        try:
            st = os.lstat(final)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode):
            with contextlib.suppress(OSError):
                os.chmod(staged, stat.S_IMODE(st.st_mode))
        backup = staged.parent / f".replaced.{staged.name}"
        try:
            os.link(final, backup, follow_symlinks=False)
        except OSError:  # a file system without hard links: it cannot be put back, but it is not lost either
            return None
        return backup

    @staticmethod
    def _undo(done: list) -> None:
        for kind, path, backup in reversed(done):
            with contextlib.suppress(OSError):
                if kind == "file" and backup is not None:
                    os.replace(backup, path)
                elif kind == "file" or kind == "member":
                    os.unlink(path)
                elif kind == "folder":
                    shutil.rmtree(path)

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
            if not d.exists():
                _live.discard(d)
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


__all__ = ["Input", "OutputSet", "PARTIAL_SUFFIX", "check_destination", "check_free_space", "check_writable_folder",
           "describe_os_error", "file_key", "publishing_interrupted", "real", "same_file", "signature", "stale_partials"]
