"""Write a Triton Inference Server model repository that serves `runtime.Inverter` (python backend).

    spec = RepoSpec(ModelSource(config="tiny", device="cpu"), max_batch=8, instances=1)
    write_repository("model_repo", spec)

Layout written under OUT (model name `hyperstyle`):

    OUT/hyperstyle/config.pbtxt          input  image     UINT8 [S,S,3]                (S = hypernet input size)
                                         output inversion UINT8 [size,size,3]          (size = generator size)
                                         output codes     FP32  [n_latent,style_dim]   (W+ codes)
                                         max_batch_size = the Inverter's max batch; dynamic batching with
                                         preferred sizes; instance_group KIND_CPU / KIND_GPU x count; parameters
                                         (all strings): executor, precision, max_batch, iters, threads, warmup, source
                                         (config / checkpoint+w_encoder / export_dir), project_root,
                                         EXECUTION_ENV_PATH
    OUT/hyperstyle/1/model.py            runtime/serving/model.py, copied: one Inverter per instance, DLPack I/O
    OUT/hyperstyle/pyenv/bin/activate    what the python backend sources before it starts a stub
                                         (EXECUTION_ENV_PATH): puts the project's environment first on PATH (the
                                         stub's isolated interpreter finds its venv through `python3` on PATH) and
                                         sets OMP_NUM_THREADS
    OUT/hyperstyle/pyenv/lib/libpython*  a link to the libpython of the environment's interpreter (the launcher puts
                                         pyenv/lib first on LD_LIBRARY_PATH; the stub must load that libpython)
    OUT/hyperstyle/hs_serving.json       the RepoSpec, shapes, software versions and the `pools` record
                                         (runtime.serving.pools: what `hs-serve start` sizes Triton's memory
                                         pools from), and `inputs`: the sha256 of model.py and of every file the
                                         model is built from (checkpoint, W encoder, export_summary.json and each
                                         export artifact's sidecar) (sidecar)

`check_repository(repo)` is what `hs-serve start` runs before it starts a server: each model written here must still
match its `inputs` (a weights file replaced, truncated or corrupted, an export redone or damaged, a model.py from
another version of this package: one HsError line naming the file and what to do).

Everything is written through core.atomic. The config text comes from runtime.serving.pbtxt (shared with the NGC
layout) and is checked against Triton's ModelConfig protobuf schema (`validate_config`) when tritonclient's
model_config_pb2 and protobuf are importable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic, write_text_atomic
from hyperstyle_trt.core.config import HyperStyleConfig, get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource
from hyperstyle_trt.runtime.serving.pbtxt import (ModelShapes, model_config_text, preferred_batch_sizes, served_io,
                                                  validate_config)
from hyperstyle_trt.runtime.serving.pools import SIDECAR, served_bytes, transfer_record

MODEL_NAME = "hyperstyle"
DEVICES = ("cpu", "cuda")
MODEL_PY = Path(__file__).with_name("model.py")
PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class RepoSpec:
    """What the served Inverter is built from and how Triton schedules it.

    `source` (core.source.ModelSource, validated there): a preset with embedded default weights (also the default,
    ffhq1024, when nothing is given), a checkpoint + W encoder, or an hs-export directory; its executor / precision
    go to the Inverter (defaults filled here: torch and fp32, or tensorrt and the export's own precision); its
    device must be "cpu" (instance_group KIND_CPU) or "cuda" (KIND_GPU, each instance on
    cuda:<model_instance_device_id>); paths are made absolute. `instances`: instance count (per GPU with KIND_GPU).
    `max_batch`: the Inverter's max batch = max_batch_size. `iters`: T. `threads`: torch threads per instance
    (default: CPU cores / instances, at least 1). `queue_delay_us`: the dynamic batcher's max queue delay.
    `preferred`: preferred batch sizes (default: powers of two in 2..max_batch, and max_batch). `python_env`: the
    environment stubs run (default: the running interpreter's sys.prefix)."""

    source: ModelSource = dataclasses.field(default_factory=lambda: ModelSource(device="cpu", precision=None))
    max_batch: int = 8
    instances: int = 1
    iters: int = 5
    threads: int | None = None
    queue_delay_us: int = 2000
    preferred: tuple[int, ...] | None = None
    python_env: str | None = None

    def __post_init__(self) -> None:
        src = self.source
        if not isinstance(src, ModelSource):
            raise HsError(f"RepoSpec.source must be a core.source.ModelSource, got {type(src).__name__}")
        if src.device not in DEVICES:
            raise HsError(f"--device must be one of {DEVICES} (instance_group KIND_CPU / KIND_GPU), got "
                          f"{src.device!r}")
        fill = {k: str(Path(getattr(src, k)).expanduser().resolve())
                for k in ("checkpoint", "w_encoder", "export_dir") if getattr(src, k) is not None}
        if src.embedded and src.config is None:
            fill["config"] = "ffhq1024"
        if src.executor is None:
            fill["executor"] = "tensorrt" if src.export_dir is not None else "torch"
        if src.precision is None and src.export_dir is None:
            fill["precision"] = "fp32"
        if fill:
            object.__setattr__(self, "source", src.replace(**fill))
        for name, lo in (("max_batch", 1), ("instances", 1), ("iters", 1), ("queue_delay_us", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise HsError(f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v!r}")
        if self.threads is None:
            object.__setattr__(self, "threads", max(1, (os.cpu_count() or 1) // self.instances))
        elif self.threads < 1:
            raise HsError(f"--threads must be >= 1, got {self.threads}")
        pref = self.preferred if self.preferred is not None else preferred_batch_sizes(self.max_batch)
        pref = tuple(int(p) for p in pref)
        bad = [p for p in pref if not 1 <= p <= self.max_batch]
        if bad:
            raise HsError(f"preferred batch sizes {bad} outside 1..{self.max_batch} (--max-batch)")
        object.__setattr__(self, "preferred", pref)
        env = Path(self.python_env or sys.prefix).expanduser().resolve()
        if not (env / "bin").is_dir():
            raise HsError(f"python environment {env} has no bin/ directory")
        object.__setattr__(self, "python_env", str(env))

    @property
    def device(self) -> str:
        return self.source.device

    def to_dict(self) -> dict:
        """The spec as the sidecar records it: the source's fields flattened beside the scheduling fields."""
        d = {k: v for k, v in dataclasses.asdict(self.source).items()}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"})
        d["preferred"] = list(self.preferred)
        return d


def model_config(source: ModelSource) -> HyperStyleConfig:
    """The HyperStyleConfig an Inverter built from `source` will have, read without building it: the preset, the
    checkpoint's `opts`, or the export's `export_summary.json` (its recorded config / checkpoint)."""
    if source.checkpoint is None and source.export_dir is None:
        return get_config(source.config or "ffhq1024")
    if source.checkpoint is not None:
        from hyperstyle_trt.models.checkpoint import config_from_opts, read_checkpoint

        ck = read_checkpoint(source.checkpoint, "HyperStyle checkpoint")
        cfg = config_from_opts(ck.get("opts", {}) or {}, ck.get("state_dict", ck))
        if source.config is not None and get_config(source.config).generator != cfg.generator:
            raise HsError(f"--config {source.config} disagrees with the checkpoint's own config ({cfg.name})")
        return cfg
    summary = Path(source.export_dir) / "export_summary.json"
    try:
        exp = json.loads(summary.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise HsError(f"{summary} is missing or unreadable: --export-dir must be an hs-export output") from None
    if exp.get("checkpoint"):
        return model_config(ModelSource(checkpoint=exp["checkpoint"], w_encoder=exp.get("w_encoder")))
    return get_config(exp.get("config") or "ffhq1024")


def config_pbtxt(spec: RepoSpec, shapes: ModelShapes, env_dir: Path | None, name: str = MODEL_NAME) -> str:
    """The model's config.pbtxt text (see the module docstring)."""
    src = spec.source
    params = {"executor": src.executor, "precision": src.precision or "", "max_batch": spec.max_batch,
              "iters": spec.iters, "threads": spec.threads, "warmup": "yes", "project_root": PROJECT_ROOT}
    for k in ("config", "checkpoint", "w_encoder", "export_dir"):
        if getattr(src, k) is not None:
            params[k] = getattr(src, k)
    if env_dir is not None:
        params["EXECUTION_ENV_PATH"] = env_dir
    if src.device == "cuda":
        params["FORCE_CPU_ONLY_INPUT_TENSORS"] = "yes"  # inputs arrive from HTTP/gRPC in host memory
    return model_config_text(name, served_io(shapes), spec.max_batch, "KIND_GPU" if src.device == "cuda" else
                             "KIND_CPU", spec.instances, preferred=spec.preferred,
                             queue_delay_us=spec.queue_delay_us, parameters=params)


def _libpython() -> Path | None:
    """The running interpreter's shared libpython (by its SONAME, what the stub links), or None for a statically
    linked interpreter."""
    libdir = sysconfig.get_config_var("LIBDIR")
    for name in (sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LDLIBRARY")):
        if libdir and name and ".so" in str(name) and (Path(libdir) / name).exists():
            return Path(libdir) / name
    return None


def write_env_dir(model_dir: Path, spec: RepoSpec) -> Path:
    """`<model_dir>/pyenv`: the EXECUTION_ENV_PATH directory (module docstring). Returns its path."""
    env_dir = model_dir / "pyenv"
    activate = (
        "# Written by hs-serve repo. Triton's python backend sources this file (EXECUTION_ENV_PATH) before it starts\n"
        "# a stub: the stub's isolated interpreter finds its environment through the python3 first on PATH.\n"
        f'export PATH="{spec.python_env}/bin:$PATH"\n'
        f"export OMP_NUM_THREADS={spec.threads}\n"
    )
    write_text_atomic(env_dir / "bin" / "activate", activate)
    lib = _libpython()
    if lib is not None:
        link = env_dir / "lib" / lib.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(lib)
    return env_dir


def write_repository(out: str | os.PathLike, spec: RepoSpec, name: str = MODEL_NAME) -> Path:
    """Write the model repository for `spec` under `out` (module docstring). Returns `out/<name>`. An existing
    model directory of that name is updated in place (its files are replaced atomically)."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise HsError(f"{out} exists and is not a directory")
    cfg = model_config(spec.source)
    shapes = ModelShapes.of(cfg)
    model_dir = out / name
    env_dir = write_env_dir(model_dir, spec)
    text = config_pbtxt(spec, shapes, env_dir, name)
    validate_config(text, str(model_dir / "config.pbtxt"))
    write_text_atomic(model_dir / "config.pbtxt", text)
    with atomic_path(model_dir / "1" / "model.py") as tmp:
        tmp.write_bytes(MODEL_PY.read_bytes())
    from hyperstyle_trt.core.sidecar import software_versions

    inputs = repository_inputs(spec.source, model_dir / "1" / "model.py")
    pools = transfer_record("inverter", "KIND_GPU" if spec.device == "cuda" else "KIND_CPU", spec.instances,
                            spec.max_batch, spec.iters, served_bytes(served_io(shapes)))
    write_json_atomic(model_dir / SIDECAR, {
        "model": name, "layout": "inverter", "spec": spec.to_dict(), "hs_config": cfg.name,
        "shapes": dataclasses.asdict(shapes), "pools": pools, "inputs": inputs,
        "versions": software_versions()})
    return model_dir


def _export_files(export_dir: Path) -> list[Path]:
    """export_summary.json and every artifact sidecar (<artifact>.json) of an hs-export directory, sorted."""
    return sorted(p for p in export_dir.glob("*.json") if p.is_file())


def repository_inputs(source: ModelSource, model_py: Path) -> dict[str, str]:
    """{path: sha256} of the files a served model depends on: its model.py, the checkpoint and W encoder, or the
    export's summary and artifact sidecars (each sidecar records its artifact's own sha256)."""
    from hyperstyle_trt.core.sidecar import sha256_file

    files = [model_py] + [Path(p) for p in (source.checkpoint, source.w_encoder) if p]
    if source.export_dir:
        files += _export_files(Path(source.export_dir))
    return {str(f): sha256_file(f) for f in files}


def check_repository(repo: str | os.PathLike) -> list[str]:
    """Check every model `write_repository` wrote under `repo` (those with an `hs_serving.json` of layout
    "inverter") before a server loads it; returns the names checked. HsError (one line) when a model's model.py
    is not this package's, a weights file is missing, not a PyTorch checkpoint, or changed since the repository
    was written (sha256), an export's summary or sidecars changed (a stale export: hs-export ran again), or an
    export artifact no longer matches the sha256 its sidecar records (corrupt)."""
    from hyperstyle_trt.core.sidecar import sha256_file, sha256_files

    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise HsError(f"model repository {repo} is not a directory")
    checked = []
    for side_path in sorted(repo.glob(f"*/{SIDECAR}")):
        model_dir = side_path.parent
        try:
            side = json.loads(side_path.read_text())
            spec = side["spec"] if side.get("layout") == "inverter" else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise HsError(f"{side_path} is unreadable or not an hs-serve sidecar: write the repository again with "
                          "hs-serve repo") from None
        if spec is None:
            continue
        redo = f"write the repository again with hs-serve repo (model '{model_dir.name}')"
        model_py = model_dir / "1" / "model.py"
        if not model_py.is_file() or model_py.read_bytes() != MODEL_PY.read_bytes():
            raise HsError(f"{model_py} is missing or not this hyperstyle-trt's runtime/serving/model.py (a "
                          f"repository from another version): {redo}")
        for key, what in (("checkpoint", "HyperStyle checkpoint"), ("w_encoder", "W encoder checkpoint")):
            if spec.get(key):
                from hyperstyle_trt.models.checkpoint import check_torch_file

                check_torch_file(spec[key], f"{what} of model '{model_dir.name}'")
        if spec.get("export_dir"):
            exp = Path(spec["export_dir"])
            if not (exp / "export_summary.json").is_file():
                raise HsError(f"export {exp} of model '{model_dir.name}' has no export_summary.json: --export-dir "
                              "must be an hs-export output")
            recorded = {str(p) for p in (side.get("inputs") or {})}
            now = {str(p) for p in _export_files(exp)}
            if side.get("inputs") is not None and now != {p for p in recorded if Path(p).parent == exp}:
                raise HsError(f"export {exp} of model '{model_dir.name}' is stale: its files changed since the "
                              f"repository was written (hs-export ran again?): {redo}")
            for sc in _export_files(exp):
                rec = _json_or_none(sc)
                if isinstance(rec, dict) and rec.get("sha256") and rec.get("files"):
                    files = [exp / f for f in rec["files"]]
                    missing = [f.name for f in files if not f.is_file()]
                    if missing or sha256_files(files) != rec["sha256"]:
                        why = f"{missing} missing" if missing else "sha256 differs from its sidecar's"
                        raise HsError(f"export artifact {exp / rec.get('artifact', sc.stem)} of model "
                                      f"'{model_dir.name}' is corrupt ({why}): run hs-export again")
        for path, digest in (side.get("inputs") or {}).items():
            f = Path(path)
            if not f.is_file():
                raise HsError(f"{f}, which model '{model_dir.name}' is built from, is missing: {redo}")
            if sha256_file(f) != digest:
                raise HsError(f"{f}, which model '{model_dir.name}' is built from, changed since the repository "
                              f"was written (sha256 differs: replaced, or corrupted): {redo}")
        checked.append(model_dir.name)
    return checked


def _json_or_none(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def inverter_from_parameters(params: dict[str, str], device: str):
    """Build the Inverter a model instance serves from its config parameters (written by `config_pbtxt`) on
    `device` ("cpu" or "cuda:<id>"), through Inverter.from_source. Returns (inverter, iters)."""
    from hyperstyle_trt.runtime import Inverter

    source = ModelSource(**{k: params.get(k) or None for k in ("config", "checkpoint", "w_encoder", "export_dir",
                                                                "executor", "precision")}, device=device)
    return Inverter.from_source(source, max_batch=int(params.get("max_batch", "8"))), int(params.get("iters", "5"))
