"""Triton model configs (config.pbtxt), written in one place for both layouts (repository.py: the `hyperstyle`
python model around runtime.Inverter; ngc.py: three `tensorrt_plan` sub-models + the BLS loop model), checked
against Triton's ModelConfig protobuf schema when tritonclient's model_config_pb2 and protobuf are importable, and
read back (`read_parameters`: the string parameters as a model's `initialize` receives them).

    text = model_config_text("hyperstyle", served_io(shapes), max_batch=8, kind="KIND_CPU", count=1,
                             preferred=(2, 4, 8), queue_delay_us=2000, parameters={"iters": 5})
    validate_config(text, "repo/hyperstyle/config.pbtxt")
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.config import HyperStyleConfig
from hyperstyle_trt.core.errors import HsError, one_line


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a Triton model: name, Triton data type (TYPE_UINT8, TYPE_FP32, ...), per-item dims
    (the batch dimension is Triton's when max_batch_size > 0)."""

    name: str
    data_type: str
    dims: tuple[int, ...]

    def text(self) -> str:
        return f'{{ name: "{self.name}", data_type: {self.data_type}, dims: [ {", ".join(map(str, self.dims))} ] }}'


@dataclass(frozen=True)
class ModelShapes:
    """Per-item tensor shapes of the served `hyperstyle` model (the batch dimension is Triton's)."""

    input_size: int  # S: image [S,S,3] uint8
    output_size: int  # size: inversion [size,size,3] uint8
    n_latent: int
    style_dim: int

    @classmethod
    def of(cls, cfg: HyperStyleConfig) -> "ModelShapes":
        g = cfg.generator
        return cls(cfg.hypernet.input_size, g.size, g.n_latent, g.style_dim)


def served_io(s: ModelShapes) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The `hyperstyle` model's I/O, the same in both layouts: input image UINT8 [S,S,3]; outputs inversion UINT8
    [size,size,3] and codes FP32 [n_latent,style_dim]."""
    return ([TensorSpec("image", "TYPE_UINT8", (s.input_size, s.input_size, 3))],
            [TensorSpec("inversion", "TYPE_UINT8", (s.output_size, s.output_size, 3)),
             TensorSpec("codes", "TYPE_FP32", (s.n_latent, s.style_dim))])


def preferred_batch_sizes(max_batch: int) -> tuple[int, ...]:
    """The dynamic batcher's default preferred sizes: powers of two in 2..max_batch, and max_batch (none for 1)."""
    if max_batch <= 1:
        return ()
    return tuple(sorted({2**k for k in range(1, max_batch.bit_length()) if 2**k <= max_batch} | {max_batch}))


def param_line(key: str, value) -> str:
    """One string parameter (`value` as str; JSON escaping is a subset of what protobuf text reads)."""
    return f'parameters: {{ key: "{key}", value: {{ string_value: {json.dumps(str(value))} }} }}'


def model_config_text(name: str, io: tuple[list[TensorSpec], list[TensorSpec]], max_batch: int, kind: str,
                      count: int, backend: str = "python", platform: str | None = None,
                      preferred: tuple[int, ...] | None = None, queue_delay_us: int | None = None,
                      parameters: dict | None = None, extra: str = "") -> str:
    """A config.pbtxt: `platform` (e.g. "tensorrt_plan") replaces `backend`; max_batch 0 = no Triton batch
    dimension; kind KIND_CPU / KIND_GPU x count instances; `queue_delay_us` not None turns dynamic batching on
    (with `preferred` sizes when given); `parameters` {key: value} become string parameters; `extra` is appended
    verbatim (more parameters)."""
    rows = [f'name: "{name}"', f'platform: "{platform}"' if platform else f'backend: "{backend}"',
            f"max_batch_size: {max_batch}"]
    for section, ts in zip(("input", "output"), io):
        rows += [f"{section} [", ",\n".join("  " + t.text() for t in ts), "]"]
    rows.append(f"instance_group [ {{ kind: {kind}, count: {count} }} ]")
    if queue_delay_us is not None:
        rows.append("dynamic_batching {")
        if preferred:
            rows.append(f"  preferred_batch_size: [ {', '.join(str(p) for p in preferred)} ]")
        rows += [f"  max_queue_delay_microseconds: {queue_delay_us}", "}"]
    rows += [param_line(k, v) for k, v in (parameters or {}).items()]
    return "\n".join(rows) + "\n" + extra


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
        raise HsError(f"{where} is not a valid Triton ModelConfig: {one_line(e)}") from None


def read_parameters(model_config_json: str | dict) -> dict[str, str]:
    """The string parameters of a model config as Triton hands it to `initialize` (args["model_config"])."""
    cfg = json.loads(model_config_json) if isinstance(model_config_json, str) else model_config_json
    return {k: v.get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}
