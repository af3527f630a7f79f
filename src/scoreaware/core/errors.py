"""The errors a user can act on. One base, so the CLI has one place that turns them into a
one-line message (no traceback) and library callers can catch every anticipated failure."""

from __future__ import annotations


class StageError(Exception):
    """A stage cannot run as asked; the message names the file (and line or field) and tells the
    user what to do."""


class ManifestError(StageError):
    """A manifest that cannot be read as cuts; the message starts with ``file:line:``."""


# ----------------------------------------------------------------------------- paths
