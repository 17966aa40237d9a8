"""`hs-export`: ONNX graphs (plain / plugin, fp32 / fp16) and TensorRT engines for HyperStyle.

Thin CLI: flags (--config, --checkpoint, --w-encoder: the model-source group of core.source) -> frozen ExportConfig
-> engines.pipeline.run_export -> summary table. User errors print one line `error: ...` on stderr and exit 2; exit 1
when an artifact failed verification or building, or a selected graph could not be produced (e.g. the plugin ops
are not importable: SKIPPED rows, no silent fallback).

    hs-export                                  # FFHQ-1024, embedded default weights, fp16, plain + plugin, engines
    hs-export --config tiny --out /tmp/t       # CPU-test sized
    hs-export --checkpoint hyperstyle_ffhq.pt --w-encoder faces_w_encoder.pt --fp32 --plugin --max-batch 4
    hs-export --dry-run                        # print the resolved config and exit
    hs-export --force                          # export every graph again (default: unchanged graphs are reused)

A second run into the same --out reuses every graph whose inputs are unchanged (export/reuse.py: weights, config,
precision, exporter sources and versions; the files' sha256 re-checked); the summary marks them `(reused)`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import click

from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.source import ModelSource, model_source_options


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _summary(report, console) -> None:
    from rich.table import Table

    t = Table(title=f"hs-export: {report.config['out']}  ({report.seconds:.1f} s)")
    for col in ("file", "kind", "size", "time (s)", "max err", "status"):
        t.add_column(col, justify="right" if col in ("size", "time (s)", "max err") else "left",
                     no_wrap=col != "status", overflow="fold")
    for a in report.artifacts:
        err = "" if a.max_rel_err is None else f"{a.max_abs_err:.2e}"
        style = "red" if a.status.startswith(("FAIL", "SKIPPED")) else None
        status = f"{a.status} (reused)" if a.reused else a.status
        t.add_row(a.path.name, a.kind, _fmt_size(a.size), f"{a.seconds:.1f}", err, status, style=style)
    console.print(t)
    console.print("max err = max |graph - PyTorch fp32 reference| of the worst output, on CPU "
                  "(ONNX Runtime / onnx.reference; tolerances in export/verify.py)")
    for n in report.notes:
        console.print(f"note: {n}")
    if report.engines_skipped:
        console.print(f"[bold yellow]{report.engines_skipped}[/] (ONNX graphs were still exported)")


class _Steps:
    """rich progress: a spinner with elapsed time per long step, then a line with its duration."""

    def __init__(self, console):
        self.console = console

    @contextlib.contextmanager
    def __call__(self, desc: str):
        t0 = time.perf_counter()
        with self.console.status(f"{desc} ..."):
            yield
        self.console.print(f"  {desc}: {time.perf_counter() - t0:.1f} s")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--fp16/--fp32", "fp16", default=True, show_default=True, help="Graph precision (strongly typed).")
@click.option("--both-precisions", is_flag=True, help="Export fp32 and fp16.")
@model_source_options(precision_flag=False)  # --config, --checkpoint, --w-encoder (precision: --fp16/--fp32)
@click.option("--max-batch", type=int, default=8, show_default=True, help="Dynamic batch upper bound / profile.")
@click.option("--opt-batch", type=int, default=None, help="Also build a profile tuned for exactly this batch.")
@click.option("--plain-batch", type=int, default=1, show_default=True, help="Fixed batch of the plain generator.")
@click.option("--out", "out", default="hs_export", show_default=True, type=click.Path(), help="Output directory.")
@click.option("--plain", "plain", is_flag=True, help="Only the plain (standard-op) graphs.")
@click.option("--plugin", "plugin", is_flag=True, help="Only the plugin graphs. Neither flag: both.")
@click.option("--engines/--no-engines", default=True, show_default=True, help="Build TensorRT engines.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Compare graphs with PyTorch on CPU.")
@click.option("--compute-capability", "ccs", multiple=True, help="TensorRT-RTX target (e.g. SM86); default portable.")
@click.option("--aot-plugins", "aot_plugins", is_flag=True,
              help="Full TensorRT >= 10.9: embed the plugin kernels (AOT QDPs); the engine runs without Python.")
@click.option("--cache-dir", default=None, type=click.Path(), help="Engine cache (default <out>/.engine_cache).")
@click.option("--force", is_flag=True,
              help="Export every graph again, even those in --out whose inputs (weights, config, precision, "
                   "exporter version) are unchanged.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config as JSON and exit.")
@interruptible
def cli(fp16, both_precisions, max_batch, opt_batch, plain_batch, out, plain, plugin, engines, verify, ccs,
        aot_plugins, cache_dir, force, dry_run, **kw):
    """Export HyperStyle to ONNX (w_encoder, hypernet, generator) and build TensorRT engines."""
    from hyperstyle_trt.export.config import ExportConfig

    precisions = ("fp32", "fp16") if both_precisions else (("fp16",) if fp16 else ("fp32",))
    variants = ("plain", "plugin") if plain == plugin else (("plain",) if plain else ("plugin",))
    # ExportConfig first: --dry-run prints the resolved config without touching the checkpoint files
    cfg = ExportConfig(config=kw["config"], checkpoint=kw["checkpoint"], w_encoder=kw["w_encoder"],
                       precisions=precisions, variants=variants, max_batch=max_batch, opt_batch=opt_batch,
                       plain_batch=plain_batch,
                       out=Path(out), build_engines=engines, verify=verify, compute_capabilities=tuple(ccs),
                       cache_dir=Path(cache_dir) if cache_dir else None, aot_plugins=aot_plugins)
    if dry_run:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return 0
    source = ModelSource.from_options(kw)  # checkpoint + W encoder: both or neither, both files exist
    if aot_plugins:  # fail before minutes of export, not at the engine step
        from hyperstyle_trt.engines.builder import check_aot
        from hyperstyle_trt.core.flavor import get_flavor

        check_aot(get_flavor())
    from rich.console import Console

    from hyperstyle_trt.engines.pipeline import run_export

    console = Console(width=None if sys.stdout.isatty() else 140)  # logs and CI: no 80-column wrapping
    if source.embedded:
        from hyperstyle_trt.models.checkpoint import DEFAULT_NOTICE

        click.echo(DEFAULT_NOTICE, err=True)
    report = run_export(cfg, step=_Steps(console), force=force)
    _summary(report, console)
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 1 artifact failures, 2 user error, 130 interrupted)."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
