"""User-facing errors.

Every problem a user can cause or fix (a missing file, a clip without a face, a bad
option) is raised as :class:`SSERDError` with a one-line message that says what to do.
The CLI prints it without a traceback, the ComfyUI nodes and the Space show it as is.
"""


class SSERDError(RuntimeError):
    """An error whose message is meant for the user (one line, actionable)."""


class NoFaceError(SSERDError):
    """No face could be found where one is required."""


class MediaError(SSERDError):
    """The input is not a readable video / image / audio file."""


class Interrupted(KeyboardInterrupt):
    """The job was stopped by a signal (SIGINT = Ctrl-C, SIGTERM, SIGHUP).

    A ``KeyboardInterrupt``, so every ``finally`` and every ``except KeyboardInterrupt`` cleans up
    as for Ctrl-C. ``published`` is True when the signal arrived while the finished outputs were
    being renamed into place (they are complete); the CLI exits with ``128 + signum``.
    """

    def __init__(self, signum: int, published: bool = False):
        super().__init__(signum)
        self.signum = int(signum)
        self.published = published
