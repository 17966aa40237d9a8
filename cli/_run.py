"""The entry-point wrapper every console script in cli/ shares: a user error (HsError) or a bad flag becomes one
`error: ...` line and an exit code, never a traceback; Ctrl-C is `error: interrupted` and exit 130."""

from __future__ import annotations

import functools
import sys

import click

from core.errors import HsError


class Interrupted(Exception):
    """Ctrl-C inside a command, carried past click (whose own handler prints a blank line first)."""


def interruptible(fn):
    """Decorator for a click command's function: KeyboardInterrupt leaves it as `Interrupted`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted from None
    return wrapper


def run(command: click.Command, argv: list[str] | None) -> int:
    """Run `command` on `argv` (None: the console script's own argv, and exit with the code). The command's integer
    return value is the exit code (None: 0); HsError: 2; click usage errors: click's code; Ctrl-C: 130."""
    try:
        rc = command.main(args=argv, standalone_mode=False)
        code = rc if isinstance(rc, int) else 0
    except HsError as e:
        click.echo(f"error: {e}", err=True)
        code = 2
    except (Interrupted, click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C: in the command, in click, here
        click.echo("error: interrupted", err=True)
        code = 130
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        code = e.exit_code
    if argv is None:  # console script
        sys.exit(code)
    return code
