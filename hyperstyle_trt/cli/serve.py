"""`hs-serve`: serve the Inverter behind NVIDIA Triton Inference Server.

    hs-serve repo model_repo --config tiny --device cpu --max-batch 8 --instances 1
    hs-serve repo model_repo --checkpoint hyperstyle_ffhq.pt --w-encoder faces_w_encoder.pt --device cuda
    hs-serve repo model_repo --export-dir hs_export --executor tensorrt --device cuda --instances 2
    hs-serve repo ngc_repo --export-dir hs_export --device cuda --layout ngc   # tensorrt_plan x 3 + BLS loop
    hs-serve start model_repo --http-port 8000          # binds 127.0.0.1; Ctrl-C / SIGTERM stops it
    hs-serve start model_repo --check-interval 0        # no supervisor (a dead stub is not repaired)
    hs-serve start ngc_repo --dry-run                   # print the tritonserver command (memory pool flags) only
    hs-serve infer photo.jpg --url 127.0.0.1:8000 --out served/   # aligns the best face, as hs-invert does
    hs-serve infer crop.png --no-align                  # already an FFHQ-aligned square crop: resized only

`repo` parses the model-source options (core.source) into a ModelSource and writes a model repository
(runtime.serving.repository, or runtime.serving.ngc with --layout ngc), `start` checks the repository
(repository.check_repository: weights and exports unchanged and intact, else one line and exit 2), then runs a local
tritonserver on it (runtime.serving.server: binary from --tritonserver, $TRITONSERVER, or `make triton`; CUDA /
pinned memory pool flags from the repository's sidecars, runtime.serving.pools) under a supervisor that reloads a
model whose stub died and restarts a server that exited, with a timestamped line for each (server.Supervisor); a
server that cannot load a model is one line with the reason from its log and exit 2. `infer` checks that the server
and its model are ready (else one line `error: cannot reach tritonserver at <url>: <reason>`), aligns each photo at
the model's input size with runtime.align's Aligner (runtime.serving.client.model_input), sends it through the HTTP
client and writes the inversions. User errors print one line `error: ...` and exit 2; a photo that fails is one line
and exit 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from hyperstyle_trt.core.entry import run
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource, model_source_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Serve HyperStyle inversion with Triton Inference Server (python backend around runtime.Inverter)."""


@cli.command("repo")
@click.argument("out", type=click.Path())
@model_source_options(export_dir=True, executor=True, device=None, precision=None)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
              help="cpu: instance_group KIND_CPU; cuda: KIND_GPU.")
@click.option("--max-batch", "max_batch", type=int, default=8, show_default=True,
              help="Inverter max batch = max_batch_size (the dynamic batcher counts images).")
@click.option("--instances", type=int, default=1, show_default=True, help="Model instances (per GPU with cuda).")
@click.option("--iters", type=int, default=5, show_default=True, help="Refinement steps T.")
@click.option("--threads", type=int, default=None, help="Torch threads per instance (default: cores / instances).")
@click.option("--queue-delay-us", "queue_delay_us", type=int, default=2000, show_default=True,
              help="Dynamic batcher: longest wait for a fuller batch.")
@click.option("--python-env", "python_env", default=None, type=click.Path(),
              help="Environment the stubs run (default: this interpreter's).")
@click.option("--layout", default="inverter", show_default=True, type=click.Choice(["inverter", "ngc"]),
              help="inverter: one python model around runtime.Inverter; ngc: the export's engines as three "
                   "tensorrt_plan models + a BLS loop model (NGC Triton container; needs --export-dir).")
def repo_cmd(out, max_batch, instances, iters, threads, queue_delay_us, python_env, layout, **kw):
    """Write a model repository OUT with the model `hyperstyle`."""
    from hyperstyle_trt.runtime.serving.repository import RepoSpec, write_repository

    src = ModelSource.from_options(kw)  # --config / --checkpoint + --w-encoder / --export-dir, executor, precision
    if layout == "ngc":
        from hyperstyle_trt.runtime.serving.ngc import write_ngc_repository

        if src.export_dir is None or src.config or src.checkpoint or src.executor or src.device != "cuda":
            raise HsError("--layout ngc serves an export's TensorRT engines on GPUs: give --export-dir and "
                          "--device cuda, and no --config / --checkpoint / --w-encoder / --executor")
        dirs = write_ngc_repository(out, src.export_dir, max_batch=max_batch, iters=iters, instances=instances,
                                    precision=src.precision, queue_delay_us=queue_delay_us)
        click.echo(f"wrote {', '.join(d.name for d in dirs)} under {Path(out)} (tensorrt_plan x 3 + BLS loop; "
                   "for the NGC Triton container, not runnable with the wheel's server)")
        return 0

    spec = RepoSpec(src, max_batch=max_batch, instances=instances, iters=iters, threads=threads,
                    queue_delay_us=queue_delay_us, python_env=python_env)
    model_dir = write_repository(out, spec)
    click.echo(f"wrote {model_dir} ({'KIND_GPU' if spec.device == 'cuda' else 'KIND_CPU'} x {instances}, "
               f"max batch {max_batch}, T={iters}, executor {spec.source.executor}, "
               f"{spec.source.precision or 'export precision'})")
    click.echo(f"start it with: hs-serve start {Path(out)}")
    return 0


@cli.command("start")
@click.argument("repo", type=click.Path())
@click.option("--http-port", "http_port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", "grpc_port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", "metrics_port", type=int, default=8002, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address every endpoint binds to.")
@click.option("--tritonserver", "tritonserver", default=None, type=click.Path(),
              help="tritonserver binary (default: $TRITONSERVER, then the `make triton` folder).")
@click.option("--log-file", "log_file", default=None, type=click.Path(),
              help="Server log (default: <repo>.tritonserver.log beside the repository).")
@click.option("--ready-timeout", "ready_timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for every model to load.")
@click.option("--exit-timeout", "exit_timeout", type=int, default=30, show_default=True,
              help="On Ctrl-C / SIGTERM: seconds Triton waits for in-flight requests and open connections.")
@click.option("--check-interval", "check_interval", type=float, default=1.0, show_default=True,
              help="Seconds between the supervisor's checks (stub processes, model readiness, server alive); "
                   "0: no supervisor.")
@click.option("--dry-run", "dry_run", is_flag=True,
              help="Print the memory pool sizing and the tritonserver command, start nothing.")
def start_cmd(repo, http_port, grpc_port, metrics_port, host, tritonserver, log_file, ready_timeout, exit_timeout,
              check_interval, dry_run):
    """Run tritonserver on REPO until Ctrl-C / SIGTERM (with CUDA / pinned memory pools sized from REPO), and
    repair it while it runs (a model whose stub died is reloaded, a server that exited is restarted)."""
    import shlex
    import time

    from hyperstyle_trt.runtime.serving.pools import repository_pools
    from hyperstyle_trt.runtime.serving.repository import check_repository
    from hyperstyle_trt.runtime.serving.server import TritonServer, find_tritonserver, serve_forever

    if check_interval < 0:
        raise HsError(f"--check-interval must be >= 0 seconds, got {check_interval}")
    checked = [] if dry_run else check_repository(repo)  # HsError: one line, exit 2, before any server runs
    pools = repository_pools(repo)
    server = TritonServer(repo, install=find_tritonserver(tritonserver), host=host, http_port=http_port,
                          grpc_port=grpc_port, metrics_port=metrics_port, log_file=log_file,
                          extra_args=tuple(pools.flags()), exit_timeout=exit_timeout)
    click.echo(pools.describe())
    if dry_run:
        click.echo(shlex.join(server.command()))
        return 0
    if checked:
        click.echo(f"checked {', '.join(checked)}: model.py, weights / export unchanged since hs-serve repo")
    click.echo(f"starting {server.install.binary} (log {server.log_file})")

    def log(msg):
        click.echo(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}")

    def ready(s, waited):
        click.echo(f"ready after {waited:.1f} s (pid {s.pid}): http {s.http_url}  grpc {s.host}:{s.grpc_port}  "
                   f"metrics {s.metrics_url}; Ctrl-C stops it")

    rc = serve_forever(server, ready_timeout=ready_timeout, on_ready=ready, supervise=check_interval > 0,
                       interval=check_interval or 1.0, log=log)
    reaped = f", killed {len(server.reaped)} process(es) it left behind" if server.reaped else ""
    click.echo(f"stopped (tritonserver exit code {server.proc.returncode}{reaped})")
    return 0 if rc == 0 else 1


@cli.command("infer")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--url", default="127.0.0.1:8000", show_default=True, help="Server HTTP host:port.")
@click.option("--out", "out", default="served", show_default=True, type=click.Path(), help="Output directory.")
@click.option("--no-align", "no_align", is_flag=True,
              help="The photos are already FFHQ-aligned square crops: resize them to the model's input only "
                   "(a non-square photo is refused). Default: detect and align the best face, as hs-invert.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for each answer.")
@click.option("--connect-timeout", "connect_timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for a connection.")
def infer_cmd(images, url, out, no_align, timeout, connect_timeout):
    """Invert photos on a running server: each is FFHQ-aligned at the served model's input size (best face, the
    Aligner hs-invert uses) and sent; writes <out>/<name>.png, <out>/<name>_codes.npy and, when aligned,
    <out>/<name>_aligned.png (what was sent). The server and model must answer ready before any photo is read
    (else one line, exit 2); a photo that fails (unreadable, no face, not square with --no-align) is one line and
    the others are still sent (exit 1)."""
    import numpy as np
    from PIL import Image

    from hyperstyle_trt.core.atomic import atomic_path
    from hyperstyle_trt.core.errors import one_line
    from hyperstyle_trt.runtime.serving.client import InversionClient, ServerUnreachable, model_input

    def write_png(a: np.ndarray, path: Path) -> None:
        with atomic_path(path) as tmp:
            Image.fromarray(a).save(tmp, format="PNG")

    with InversionClient(url, timeout=timeout, connect_timeout=connect_timeout) as c:
        shape = c.check_ready()  # ServerUnreachable: one line, before any photo is read
        if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
            raise HsError(f"the served model takes images {list(shape)}, expected [S,S,3]")
        s = shape[0]
        aligner = None
        if not no_align:
            from hyperstyle_trt.runtime.align import Aligner

            aligner = Aligner(output_size=s)
        failed = 0
        for p in images:
            try:
                x, how = model_input(p, s, aligner)  # [s,s,3] uint8
                res = c.invert(x)
            except ServerUnreachable:
                raise
            except HsError as e:
                msg = one_line(e)
                click.echo(f"error: {msg if p in msg else f'{p}: {msg}'}", err=True)
                failed += 1
                continue
            stem = Path(p).stem
            write_png(res.inversion[0], Path(out) / f"{stem}.png")
            with atomic_path(Path(out) / f"{stem}_codes.npy") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, res.codes[0])
            if aligner is not None:
                write_png(x, Path(out) / f"{stem}_aligned.png")
            click.echo(f"{p} -> {Path(out) / (stem + '.png')} ({how})")
    if failed:
        click.echo(f"{len(images) - failed} of {len(images)} photo(s) inverted, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 1 a failure, 2 user error)."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
