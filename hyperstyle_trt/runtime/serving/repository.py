"""Write a Triton Inference Server model repository that serves `runtime.Inverter` (python backend).

    spec = RepoSpec(config="tiny", device="cpu", max_batch=8, instances=1)
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
    OUT/hyperstyle/hs_serving.json       the RepoSpec, shapes and software versions (sidecar)

Everything is written through core.atomic. The config is checked against Triton's ModelConfig protobuf schema
(`validate_config`) when tritonclient's model_config_pb2 and protobuf are importable.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic, write_text_atomic
from hyperstyle_trt.core.config import HyperStyleConfig, get_config
from hyperstyle_trt.core.errors import HsError

MODEL_NAME = "hyperstyle"
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "fp16")
MODEL_PY = Path(__file__).with_name("model.py")
PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ModelShapes:
    """Per-item tensor shapes of the served model (the batch dimension is Triton's)."""

    input_size: int  # S: image [S,S,3] uint8
    output_size: int  # size: inversion [size,size,3] uint8
    n_latent: int
    style_dim: int

    @classmethod
    def of(cls, cfg: HyperStyleConfig) -> "ModelShapes":
        g = cfg.generator
        return cls(cfg.hypernet.input_size, g.size, g.n_latent, g.style_dim)


@dataclass(frozen=True)
class RepoSpec:
    """What the served Inverter is built from and how Triton schedules it.

    Source (one of): `config` (a preset with embedded default weights; also the default, ffhq1024, when nothing is
    given), `checkpoint` + `w_encoder`, or `export_dir` (an hs-export output). `executor` / `precision`: passed to
    the Inverter. `device`: cpu -> instance_group KIND_CPU, cuda -> KIND_GPU (each instance on
    cuda:<model_instance_device_id>). `instances`: instance count (per GPU with KIND_GPU). `max_batch`: the
    Inverter's max batch = max_batch_size. `iters`: T. `threads`: torch threads per instance (default: CPU cores /
    instances, at least 1). `queue_delay_us`: the dynamic batcher's max queue delay. `preferred`: preferred batch
    sizes (default: powers of two in 2..max_batch, and max_batch). `python_env`: the environment stubs run
    (default: the running interpreter's sys.prefix)."""

    config: str | None = None
    checkpoint: str | None = None
    w_encoder: str | None = None
    export_dir: str | None = None
    executor: str | None = None
    precision: str | None = None
    device: str = "cpu"
    max_batch: int = 8
    instances: int = 1
    iters: int = 5
    threads: int | None = None
    queue_delay_us: int = 2000
    preferred: tuple[int, ...] | None = None
    python_env: str | None = None

    def __post_init__(self) -> None:
        if self.export_dir is not None and (self.config or self.checkpoint or self.w_encoder):
            raise HsError("--export-dir carries its own model: drop --config / --checkpoint / --w-encoder")
        if self.checkpoint is not None and self.w_encoder is None:
            raise HsError("a HyperStyle checkpoint needs its W encoder too (faces_w_encoder.pt); pass --w-encoder")
        if self.w_encoder is not None and self.checkpoint is None:
            raise HsError("--w-encoder given without --checkpoint; the W encoder only pairs with a HyperStyle "
                          "checkpoint")
        for name in ("checkpoint", "w_encoder", "export_dir"):
            p = getattr(self, name)
            if p is None:
                continue
            p = Path(p).expanduser().resolve()
            kind = "directory" if name == "export_dir" else "file"
            if not (p.is_dir() if name == "export_dir" else p.is_file()):
                raise HsError(f"--{name.replace('_', '-')} {p} is not an existing {kind}")
            object.__setattr__(self, name, str(p))
        if self.config is None and self.checkpoint is None and self.export_dir is None:
            object.__setattr__(self, "config", "ffhq1024")
        if self.config is not None:
            get_config(self.config)  # HsError naming the presets when unknown
        if self.device not in DEVICES:
            raise HsError(f"--device must be one of {DEVICES}, got {self.device!r}")
        if self.executor is None:
            object.__setattr__(self, "executor", "tensorrt" if self.export_dir is not None else "torch")
        from hyperstyle_trt.runtime.executors import available_executors  # names only: no backend is imported

        if self.executor not in available_executors():
            raise HsError(f"--executor {self.executor!r} unknown; expected one of {available_executors()}")
        if self.precision is None and self.export_dir is None:
            object.__setattr__(self, "precision", "fp32")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise HsError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name, lo in (("max_batch", 1), ("instances", 1), ("iters", 1), ("queue_delay_us", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise HsError(f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v!r}")
        if self.threads is None:
            object.__setattr__(self, "threads", max(1, (os.cpu_count() or 1) // self.instances))
        elif self.threads < 1:
            raise HsError(f"--threads must be >= 1, got {self.threads}")
        pref = self.preferred
        if pref is None:
            pref = sorted({2**k for k in range(1, self.max_batch.bit_length()) if 2**k <= self.max_batch}
                          | ({self.max_batch} if self.max_batch > 1 else set()))
        pref = tuple(int(p) for p in pref)
        bad = [p for p in pref if not 1 <= p <= self.max_batch]
        if bad:
            raise HsError(f"preferred batch sizes {bad} outside 1..{self.max_batch} (--max-batch)")
        object.__setattr__(self, "preferred", pref)
        env = Path(self.python_env or sys.prefix).expanduser().resolve()
        if not (env / "bin").is_dir():
            raise HsError(f"python environment {env} has no bin/ directory")
        object.__setattr__(self, "python_env", str(env))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["preferred"] = list(self.preferred)
        return d


def model_config(spec: RepoSpec) -> HyperStyleConfig:
    """The HyperStyleConfig the served Inverter will have, read without building it: the preset, the
    checkpoint's `opts`, or the export's `export_summary.json` (its recorded config / checkpoint)."""
    if spec.config is not None and spec.checkpoint is None:
        return get_config(spec.config)
    if spec.checkpoint is not None:
        from hyperstyle_trt.models.checkpoint import config_from_opts, read_checkpoint

        ck = read_checkpoint(spec.checkpoint, "HyperStyle checkpoint")
        cfg = config_from_opts(ck.get("opts", {}) or {}, ck.get("state_dict", ck))
        if spec.config is not None and get_config(spec.config).generator != cfg.generator:
            raise HsError(f"--config {spec.config} disagrees with the checkpoint's own config ({cfg.name})")
        return cfg
    summary = Path(spec.export_dir) / "export_summary.json"
    try:
        exp = json.loads(summary.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise HsError(f"{summary} is missing or unreadable: --export-dir must be an hs-export output") from None
    if exp.get("checkpoint"):
        return model_config(RepoSpec(checkpoint=exp["checkpoint"], w_encoder=exp.get("w_encoder"),
                                     python_env=spec.python_env))
    return get_config(exp.get("config") or "ffhq1024")


def _param(key: str, value) -> str:
    v = json.dumps(str(value))  # a protobuf text string literal (JSON escaping is a subset that protobuf reads)
    return f'parameters: {{ key: "{key}", value: {{ string_value: {v} }} }}'


def config_pbtxt(spec: RepoSpec, shapes: ModelShapes, env_dir: Path | None, name: str = MODEL_NAME) -> str:
    """The model's config.pbtxt text (see the module docstring)."""
    s = shapes
    kind = "KIND_GPU" if spec.device == "cuda" else "KIND_CPU"
    params = {"executor": spec.executor, "precision": spec.precision or "", "max_batch": spec.max_batch,
              "iters": spec.iters, "threads": spec.threads, "warmup": "yes", "project_root": PROJECT_ROOT}
    for k in ("config", "checkpoint", "w_encoder", "export_dir"):
        if getattr(spec, k) is not None:
            params[k] = getattr(spec, k)
    if env_dir is not None:
        params["EXECUTION_ENV_PATH"] = env_dir
    if spec.device == "cuda":
        params["FORCE_CPU_ONLY_INPUT_TENSORS"] = "yes"  # inputs arrive from HTTP/gRPC in host memory
    lines = [
        f'name: "{name}"',
        'backend: "python"',
        f"max_batch_size: {spec.max_batch}",
        f'input [ {{ name: "image", data_type: TYPE_UINT8, dims: [ {s.input_size}, {s.input_size}, 3 ] }} ]',
        "output [",
        f'  {{ name: "inversion", data_type: TYPE_UINT8, dims: [ {s.output_size}, {s.output_size}, 3 ] }},',
        f'  {{ name: "codes", data_type: TYPE_FP32, dims: [ {s.n_latent}, {s.style_dim} ] }}',
        "]",
        f"instance_group [ {{ kind: {kind}, count: {spec.instances} }} ]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(str(p) for p in spec.preferred)} ]",
        f"  max_queue_delay_microseconds: {spec.queue_delay_us}",
        "}",
    ]
    lines += [_param(k, v) for k, v in params.items()]
    return "\n".join(lines) + "\n"


def _model_config_pb2():
    """tritonclient's ModelConfig protobuf module, loaded from its file (tritonclient.grpc's package __init__
    needs grpcio, which the http extra does not bring). None when tritonclient or protobuf is missing."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        return None
    try:
        mspec = importlib.util.spec_from_file_location("_hs_triton_model_config_pb2", path)
        mod = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(mod)
    except ImportError:
        return None
    return mod


def validate_config(text: str, where: str = "config.pbtxt"):
    """Parse `text` strictly as Triton's ModelConfig (unknown fields, bad enums and type errors fail). Returns the
    parsed message, or None when the schema is not importable. HsError naming the problem otherwise."""
    mod = _model_config_pb2()
    if mod is None:
        return None
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, mod.ModelConfig())
    except text_format.ParseError as e:
        raise HsError(f"{where} is not a valid Triton ModelConfig: {e}") from None


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
    cfg = model_config(spec)
    shapes = ModelShapes.of(cfg)
    if spec.max_batch < 1:
        raise HsError("--max-batch must be >= 1")
    model_dir = out / name
    env_dir = write_env_dir(model_dir, spec)
    text = config_pbtxt(spec, shapes, env_dir, name)
    validate_config(text, str(model_dir / "config.pbtxt"))
    write_text_atomic(model_dir / "config.pbtxt", text)
    with atomic_path(model_dir / "1" / "model.py") as tmp:
        tmp.write_bytes(MODEL_PY.read_bytes())
    from hyperstyle_trt.core.sidecar import software_versions

    write_json_atomic(model_dir / "hs_serving.json", {
        "model": name, "spec": spec.to_dict(), "hs_config": cfg.name, "shapes": dataclasses.asdict(shapes),
        "versions": software_versions()})
    return model_dir


def read_parameters(model_config_json: str | dict) -> dict[str, str]:
    """The string parameters of a model config as Triton hands it to `initialize` (args["model_config"])."""
    cfg = json.loads(model_config_json) if isinstance(model_config_json, str) else model_config_json
    return {k: v.get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}


def inverter_from_parameters(params: dict[str, str], device: str):
    """Build the Inverter a model instance serves from its config parameters (written by `config_pbtxt`) on
    `device` ("cpu" or "cuda:<id>"). Returns (inverter, iters)."""
    from hyperstyle_trt.runtime import Inverter

    executor, precision = params.get("executor", "torch"), params.get("precision") or None
    max_batch = int(params.get("max_batch", "8"))
    if params.get("export_dir"):
        inv = Inverter.from_export(params["export_dir"], executor=executor, device=device, precision=precision,
                                  max_batch=max_batch)
    else:
        inv = Inverter.from_checkpoint(params.get("checkpoint") or None, w_encoder=params.get("w_encoder") or None,
                                       config=params.get("config") or None, executor=executor, device=device,
                                       precision=precision or "fp32", max_batch=max_batch)
    return inv, int(params.get("iters", "5"))
