"""The one path from an exception to what the user sees: a one-line message and exit 1 (exit 2 for
a bad option value), never a traceback.

Every command runs under :class:`GuardedGroup` (the root group), which turns whatever escapes a
command into a click error through :func:`as_click_error`. Errors the user can act on are
`StageError`s (every library error type a user can cause derives from it) and configuration
errors; a command whose library raises plain ``ValueError``/``RuntimeError`` for bad input
declares those with :func:`user_errors`. Anything else is reported as an internal error with its
type; ``-vv`` shows the traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import click

from scoreaware.core.errors import StageError
from scoreaware.core.redact import redact
from scoreaware.train.config import ConfigError


def as_click_error(exc: Exception) -> click.ClickException:
    """What `exc` looks like to the user, with every known secret scrubbed (`core.redact`)."""
    error = _as_click_error(exc)
    error.message = redact(error.message)
    return error


def _as_click_error(exc: Exception) -> click.ClickException:
    if isinstance(exc, ConfigError):
        return click.BadParameter(str(exc))
    if isinstance(exc, StageError):
        return click.ClickException(str(exc))
    if isinstance(exc, EOFError):  # click would print a bare "Aborted!"
        return click.ClickException(f"input ended early: {exc or 'unexpected end of file'} (a truncated file?)")
    if isinstance(exc, OSError) and exc.filename:
        return click.ClickException(f"{exc.filename}: {exc.strerror or exc}")
    detail = " ".join(str(exc).split())[:400]
    return click.ClickException(f"internal error: {type(exc).__name__}: {detail}\n"
                                "(rerun with -vv to see the traceback; please report it)")


def user_errors(*types: type[Exception]) -> Callable:
    """Declare exception types that mean bad input for this command (shown as their message)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (StageError, ConfigError):
                raise
            except types as exc:  # shown by GuardedGroup like every other StageError
                raise StageError(str(exc)) from None

        return wrapper

    return decorate


class GuardedGroup(click.Group):
    """The root group: no traceback reaches the user (click's own exits, usage errors and Ctrl-C
    keep their behaviour)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit, SystemExit,
                KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            raise as_click_error(exc) from None
