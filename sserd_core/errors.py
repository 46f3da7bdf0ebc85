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


class Cancelled(SSERDError):
    """The user stopped the job (ComfyUI interrupt, Ctrl-C, closed Space tab)."""
