"""`hs-bench`: benchmark entry point. Sub-commands register here and only compose library functions.

    hs-bench kernels [--batch 1 --batch 8] [--layers ...]   fused modconv kernels vs the PyTorch/cuDNN route (GPU)
    hs-bench tune [--json out.json]                          candidate tiles of every kernel, every layer (GPU)
    hs-bench codegen [--arch 90] [--dtype fp16]             what the kernels compile to: registers, spills, loads (CPU)
"""

from __future__ import annotations

import sys

import click

from core.errors import HsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """hyperstyle-trt benchmarks (latency with max error beside it)."""


def _forward(name: str, module: str, doc: str) -> None:
    """Register `hs-bench <name>`: its arguments go unparsed to `<module>.main(argv)` (argparse there)."""

    @cli.command(name=name, help=doc, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                                         "help_option_names": []})
    @click.pass_context
    def command(ctx: click.Context) -> None:
        import importlib

        rc = importlib.import_module(module).main(list(ctx.args))
        if rc:
            ctx.exit(rc)


_forward("kernels", "benchmarks.kernels",
         "Fused modulated-conv kernels vs the PyTorch reference route, every FFHQ-1024 layer (needs a CUDA GPU).")
_forward("tune", "benchmarks.tune",
         "Time candidate tiles / split-K / fused-vs-staged for every FFHQ-1024 layer (needs a CUDA GPU).")
_forward("codegen", "benchmarks.codegen",
         "Compile every FFHQ-1024 kernel variant for a GPU arch without one; report registers, spills, loads.")


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
