"""`hs-bench`: benchmark entry point. Sub-commands register here and only compose library functions.

    hs-bench kernels [--batch 1 --batch 8] [--layers ...]   fused modconv kernels vs the PyTorch/cuDNN route (GPU)
    hs-bench codegen [--arch 90] [--dtype fp16]             what the kernels compile to: registers, spills, loads (CPU)
"""

from __future__ import annotations

import sys

import click

from models.errors import HsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """hyperstyle-trt benchmarks (latency with max error beside it)."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def kernels(ctx: click.Context) -> None:
    """Fused modulated-conv kernels vs the PyTorch reference route, every FFHQ-1024 layer (needs a CUDA GPU)."""
    from benchmarks.kernels import main as kernels_main

    rc = kernels_main(list(ctx.args))
    if rc:
        ctx.exit(rc)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def codegen(ctx: click.Context) -> None:
    """Compile every FFHQ-1024 kernel variant for a GPU arch without one; report registers, spills, loads."""
    from benchmarks.codegen import main as codegen_main

    rc = codegen_main(list(ctx.args))
    if rc:
        ctx.exit(rc)


def main(argv=None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="hs-bench", standalone_mode=False)
    except HsError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        return 1
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
