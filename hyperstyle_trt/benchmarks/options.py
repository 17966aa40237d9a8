"""Click pieces the benchmark commands share: comma-list options and options that take several values.

    @click.command(cls=GreedyCommand, greedy=("--layers",))
    @click.option("--layers", multiple=True)      # `--layers a b --batch 1` -> layers == ("a", "b")
    @click.option("--sweep", callback=csv_list(int))   # "1,2,4" -> (1, 2, 4); None stays None
"""

from __future__ import annotations

from typing import Callable, Sequence

import click


def csv_list(kind: type = str) -> Callable:
    """A click callback: "a,b" -> ("a", "b") (kind int: integers, else a one-line usage error); None stays None."""

    def conv(ctx, param, value):
        if value is None:
            return None
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        if kind is int:
            try:
                return tuple(int(v) for v in items)
            except ValueError:
                raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
        return tuple(items)

    return conv


def spread(args: Sequence[str], greedy: Sequence[str]) -> list[str]:
    """`--opt a b c` -> `--opt a --opt b --opt c` for the options in `greedy` (also `--opt=a b`): every value up to
    the next token that starts with "-" (or "--", after which nothing is rewritten)."""
    out: list[str] = []
    cur = None
    args = list(args)
    for i, a in enumerate(args):
        if a == "--":
            out.extend(args[i:])
            break
        if a.startswith("-"):
            name = a.split("=", 1)[0]
            cur = name if name in greedy else None
            out.append(a)
            continue
        if cur is not None and out[-1] != cur:  # a second (third, ...) value of a greedy option
            out.append(cur)
        out.append(a)
    return out


class GreedyCommand(click.Command):
    """A click command whose options named in `greedy` (declared multiple=True) take every value that follows them,
    (one or more values): `--layers conv1 to_rgbs.0` is `--layers conv1 --layers to_rgbs.0`."""

    def __init__(self, *args, greedy: Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.greedy = tuple(greedy)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread(args, self.greedy))
