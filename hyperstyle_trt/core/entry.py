"""The one entry-point wrapper: every console script (hs-export, hs-invert, hs-serve, hs-bench) and every
`python -m hyperstyle_trt...` tool runs its click command through `run`. A user error (HsError) or a bad flag becomes
one `error: ...` line and an exit code, never a traceback; Ctrl-C is `error: interrupted` and exit 130.

    @click.command()
    @interruptible
    def cli(...): ...
    def main(argv=None): return run(cli, argv)
"""

from __future__ import annotations

import functools
import sys

import click

from hyperstyle_trt.core.errors import HsError, one_line


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
        click.echo(f"error: {one_line(e, limit=2000)}", err=True)
        code = 2
    except (Interrupted, click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C: in the command, in click, here
        click.echo("error: interrupted", err=True)
        code = 130
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message(), limit=2000)}", err=True)
        code = e.exit_code
    if argv is None:  # console script
        sys.exit(code)
    return code
