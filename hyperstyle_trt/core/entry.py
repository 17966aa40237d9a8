"""The one entry-point wrapper: every console script (hs-export, hs-invert, hs-serve, hs-bench) and every
`python -m hyperstyle_trt...` tool runs its click command through `run`. A user error (HsError) or a bad flag becomes
one `error: ...` line and an exit code, never a traceback; Ctrl-C is `error: interrupted` and exit 130. SIGTERM
(`kill`, a batch scheduler, a container stop) behaves like Ctrl-C: while the command runs, `run` turns it into
`Terminated` (a KeyboardInterrupt) in the main thread, so every cleanup that handles Ctrl-C runs too; exit 143.

    @click.command()
    @interruptible
    def cli(...): ...
    def main(argv=None): return run(cli, argv)
"""

from __future__ import annotations

import functools
import signal
import sys
import threading

import click

from hyperstyle_trt.core.errors import HsError, one_line


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) inside a command, carried past click (whose own handler prints a blank line first).
    args[0]: the exit code (130 Ctrl-C, 143 SIGTERM)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread while `run` runs a command: a KeyboardInterrupt, so code that cleans up
    after Ctrl-C cleans up after SIGTERM the same way."""


def _on_sigterm(signum, frame):
    raise Terminated()


def interruptible(fn):
    """Decorator for a click command's function: KeyboardInterrupt leaves it as `Interrupted`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as e:
            raise Interrupted(143 if isinstance(e, Terminated) else 130) from None
    return wrapper


def run(command: click.Command, argv: list[str] | None) -> int:
    """Run `command` on `argv` (None: the console script's own argv, and exit with the code). The command's integer
    return value is the exit code (None: 0); HsError: 2; click usage errors: click's code; Ctrl-C: 130; SIGTERM: 143
    (handled only where SIGTERM still has its default action, from the main thread)."""
    old = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rc = command.main(args=argv, standalone_mode=False)
        code = rc if isinstance(rc, int) else 0
    except HsError as e:
        click.echo(f"error: {one_line(e, limit=2000)}", err=True)
        code = 2
    except (Interrupted, click.exceptions.Abort, KeyboardInterrupt) as e:  # Ctrl-C: in the command, in click, here
        code = e.args[0] if isinstance(e, Interrupted) and e.args else 143 if isinstance(e, Terminated) else 130
        click.echo("error: interrupted" + (" (SIGTERM)" if code == 143 else ""), err=True)
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message(), limit=2000)}", err=True)
        code = e.exit_code
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    if argv is None:  # console script
        sys.exit(code)
    return code
