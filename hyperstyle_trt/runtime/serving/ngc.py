"""The NGC layout: three `tensorrt_plan` models served by Triton itself plus a BLS loop model (python backend).

    write_ngc_repository("ngc_repo", export_dir="hs_export", max_batch=8, iters=5)

For users of NVIDIA's Triton container (its tensorrt backend; the nvidia-pytriton wheel has none). Written under
OUT:

    OUT/hs_w_encoder/config.pbtxt, 1/model.plan     platform tensorrt_plan (model.plan: a link to the export's engine)
    OUT/hs_hypernet/config.pbtxt,  1/model.plan
    OUT/hs_generator/config.pbtxt, 1/model.plan
    OUT/hyperstyle/config.pbtxt, 1/model.py          python backend, runtime/serving/bls_model.py: the T-step loop
                                                     as 2T+2 BLS calls; same I/O as the main layout's `hyperstyle`
    OUT/hyperstyle/hs_serving.json                   sidecar: layout, sub-models, graph I/O dtype and the `pools`
                                                     record (runtime.serving.pools: Δ and images through Triton's
                                                     CUDA pool per inversion, what `hs-serve start` sizes it from)

Tensor names, per-item shapes and dtypes come from core.contract for the export's engine set (variant, precision:
runtime.executors.tensorrt_executor.find_engines). A fixed-batch engine (the plain generator) gets
max_batch_size 0 with its batch in dims; the BLS model pads to it. Every config is checked against Triton's
ModelConfig schema. What this layout needs that this project cannot check (no TensorRT execution, no container
here): engines built with the container's TensorRT version (or version-compatible), and for the plugin generator
AOT plugins (`hs-export --aot-plugins`) or a C++ plugin library loaded by the tensorrt backend: Python plugins do
not load there. `write_graph_repository(..., backend="python")` writes the same layout with python sub-models
instead of engines (the CPU test uses it to run the BLS loop on the real server). Every config.pbtxt comes from
runtime.serving.pbtxt, as the main layout's. The BLS model imports this package in the container: install it there
or mount the checkout at the `project_root` the config names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic, write_text_atomic
from hyperstyle_trt.core.config import HyperStyleConfig
from hyperstyle_trt.core.contract import GRAPHS, GraphIO, delta_modes, graph_io
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import precision as to_precision
from hyperstyle_trt.core.source import ModelSource
from hyperstyle_trt.runtime.serving.pbtxt import (ModelShapes, TensorSpec, model_config_text, preferred_batch_sizes,
                                                  served_io, validate_config)
from hyperstyle_trt.runtime.serving.pools import SIDECAR, ngc_device_terms, served_bytes, transfer_record
from hyperstyle_trt.runtime.serving.repository import MODEL_NAME, PROJECT_ROOT, model_config

BLS_MODEL_PY = Path(__file__).with_name("bls_model.py")
SUBMODELS = {g: f"hs_{g}" for g in GRAPHS}


def _tensors(ts, fixed: int | None) -> list[TensorSpec]:
    """Contract tensors -> Triton tensors: per-item dims, the fixed batch first for a fixed-batch graph."""
    return [TensorSpec(t.name, to_precision(t.dtype).triton, tuple(([fixed] if fixed else []) +
                                                                [int(d) for d in t.shape[1:]])) for t in ts]


def graph_config(name: str, io: GraphIO, max_batch: int, fixed: int | None, backend: str, instances: int,
                 kind: str, extra: str = "") -> str:
    """config.pbtxt of one sub-model (`backend`: "tensorrt" -> platform tensorrt_plan, "python" -> backend)."""
    return model_config_text(name, (_tensors(io.inputs, fixed), _tensors(io.outputs, fixed)),
                             0 if fixed else max_batch, kind, instances,
                             platform="tensorrt_plan" if backend == "tensorrt" else None, extra=extra)


def contract_json(cfg: HyperStyleConfig, ios: dict[str, GraphIO], fixed: dict[str, int]) -> str:
    """The `contract` parameter of the BLS model: sub-model names, fixed batches, dtype, Δ names and shapes."""
    hyp = ios["hypernet"]
    deltas = []
    for t in cfg.tuned:
        inp = hyp.tensor(t.input_name)
        acc = [o for o in hyp.outputs if o.name == "acc_" + t.name.replace(".", "_")][0]
        deltas.append({"input": inp.name, "acc": acc.name, "shape": [int(d) for d in inp.shape[1:]]})
    return json.dumps({"dtype": ios["w_encoder"].inputs[0].dtype, "deltas": deltas,
                       "graphs": {g: {"model": SUBMODELS[g], **({"fixed_batch": fixed[g]} if g in fixed else {})}
                                  for g in GRAPHS}}, separators=(",", ":"))


def bls_config(cfg: HyperStyleConfig, ios, fixed, max_batch: int, iters: int, instances: int, kind: str,
               queue_delay_us: int, extra: str = "") -> str:
    """config.pbtxt of the BLS model `hyperstyle`: the main layout's I/O, dynamic batching, and the parameters
    iters, contract and project_root (where the stub finds this package, as the main layout's model.py)."""
    return model_config_text(MODEL_NAME, served_io(ModelShapes.of(cfg)), max_batch, kind, instances,
                             preferred=preferred_batch_sizes(max_batch), queue_delay_us=queue_delay_us,
                             parameters={"iters": iters, "contract": contract_json(cfg, ios, fixed),
                                         "project_root": PROJECT_ROOT}, extra=extra)


def write_graph_repository(out: str | os.PathLike, cfg: HyperStyleConfig, ios: dict[str, GraphIO],
                           fixed: dict[str, int], max_batch: int = 8, iters: int = 5, instances: int = 1,
                           device: str = "cuda", backend: str = "tensorrt", engines: dict[str, Path] | None = None,
                           submodel_py: Path | None = None, submodel_extra: str = "", bls_extra: str = "",
                           queue_delay_us: int = 2000, sidecar: dict | None = None) -> list[Path]:
    """Write the BLS layout (module docstring) for graphs with I/O `ios`. backend "tensorrt": `engines` {graph:
    engine file} are linked as model.plan; "python": `submodel_py` is copied as each sub-model's model.py.
    `sidecar`: more fields for hs_serving.json (the export it came from). Returns the model directories."""
    out = Path(out).expanduser().resolve()
    kind = "KIND_GPU" if device == "cuda" else "KIND_CPU"
    dirs = []
    for g in GRAPHS:
        d = out / SUBMODELS[g]
        text = graph_config(SUBMODELS[g], ios[g], max_batch, fixed.get(g), backend, instances, kind, submodel_extra)
        validate_config(text, str(d / "config.pbtxt"))
        write_text_atomic(d / "config.pbtxt", text)
        if backend == "tensorrt":
            link = d / "1" / "model.plan"
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(Path(engines[g]).resolve())
        else:
            with atomic_path(d / "1" / "model.py") as tmp:
                tmp.write_bytes(Path(submodel_py).read_bytes())
        dirs.append(d)
    d = out / MODEL_NAME
    text = bls_config(cfg, ios, fixed, max_batch, iters, instances, kind, queue_delay_us, bls_extra)
    validate_config(text, str(d / "config.pbtxt"))
    write_text_atomic(d / "config.pbtxt", text)
    with atomic_path(d / "1" / "model.py") as tmp:
        tmp.write_bytes(BLS_MODEL_PY.read_bytes())
    pools = transfer_record("ngc", kind, instances, max_batch, iters, served_bytes(served_io(ModelShapes.of(cfg))),
                            ngc_device_terms(ios, fixed, max_batch, iters))
    write_json_atomic(d / SIDECAR, {"model": MODEL_NAME, "layout": "ngc", "backend": backend, "hs_config": cfg.name,
                                    "submodels": SUBMODELS, "dtype": ios["w_encoder"].inputs[0].dtype,
                                    "fixed_batch": fixed, "pools": pools, **(sidecar or {})})
    return dirs + [d]


def write_ngc_repository(out: str | os.PathLike, export_dir: str | os.PathLike, max_batch: int = 8, iters: int = 5,
                         instances: int = 1, precision: str | None = None, queue_delay_us: int = 2000) -> list[Path]:
    """The NGC layout for the engines of an hs-export directory (module docstring). HsError when the directory has
    no complete engine set, or its engines cannot serve batches up to `max_batch`."""
    from hyperstyle_trt.runtime.executors.tensorrt_executor import find_engines

    variant, prec, files = find_engines(Path(export_dir), precision)
    cfg = model_config(ModelSource(export_dir=str(export_dir)))
    plugin = variant == "plugin"
    modes = delta_modes(cfg, per_channel=plugin)
    ios = {g: graph_io(cfg, g, modes, "B", plugin, prec) for g in GRAPHS}
    fixed = {}
    if not plugin:  # the plain generator is exported with a fixed batch (grouped conv, groups = batch)
        summary = json.loads((Path(export_dir) / "export_summary.json").read_text())
        fixed["generator"] = int(summary["config"].get("plain_batch", 1))
    exported_max = int(json.loads((Path(export_dir) / "export_summary.json").read_text())["config"]["max_batch"])
    if max_batch > exported_max:
        raise HsError(f"--max-batch {max_batch} exceeds the engines' profile (exported with --max-batch "
                      f"{exported_max})")
    return write_graph_repository(out, cfg, ios, fixed, max_batch, iters, instances, "cuda", "tensorrt", files,
                                  queue_delay_us=queue_delay_us,
                                  sidecar={"export_dir": str(Path(export_dir).resolve()), "variant": variant,
                                           "precision": prec})
