"""`onnxruntime` executor: the plain graphs of an hs-export directory, I/O-bound to the Inverter's buffers.

Files (export/pipeline.py): `w_encoder_<prec>.onnx`, `hypernet_plain_<prec>.onnx` (dynamic batch, official OIHW Δ
[B,O,I,k,k] everywhere) and `generator_plain_<prec>.onnx` (standard ops; grouped conv with groups = B, so its batch
is fixed to the export's --plain-batch: `fixed_batch["generator"]`, the Inverter runs it on padded row chunks).
The same directory, tensor names and Δ ping-pong as the TensorRT path. CPU by default; device="cuda" uses the
CUDA execution provider where onnxruntime-gpu is installed (ORT runs on its own stream there, so `run` synchronizes
the Inverter's stream before and ORT's outputs after: a correctness path, not capturable).

Each call binds every input and output by name to the given tensors' memory (`IOBinding.bind_input/bind_output`
with `buffer_ptr`): no copies in or out. Sessions and bindings are created once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.contract import GRAPHS, delta_modes, graph_io
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.runtime.executors.base import Executor
from hyperstyle_trt.core.precision import precision as precision_of



def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise HsError("executor 'onnxruntime' needs onnxruntime (pip install 'hyperstyle-trt[export]')") from None
    return onnxruntime


def graph_file(graph: str, precision: str) -> str:
    """The plain-set file name of `graph` (export.pipeline.artifact_name)."""
    return f"{graph}_{precision}.onnx" if graph == "w_encoder" else f"{graph}_plain_{precision}.onnx"


def _summary(path: Path) -> dict:
    p = path / "export_summary.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise HsError(f"cannot read {p} ({type(e).__name__}); re-run hs-export --out {path}") from None


def _model_config(path: Path, precision: str) -> str:
    """The model preset the plain graphs were exported from (their sidecar's model_config)."""
    side = path / (graph_file("generator", precision) + ".json")
    cfg_name = None
    if side.is_file():
        try:
            cfg_name = json.loads(side.read_text()).get("model_config")
        except (OSError, ValueError):
            cfg_name = None
    cfg_name = cfg_name or (_summary(path).get("config") or {}).get("config")
    if not cfg_name:
        raise HsError(f"cannot tell which model {path} was exported from (no sidecar / export_summary.json); "
                      f"re-run hs-export --out {path}")
    return cfg_name


class OnnxRuntimeExecutor(Executor):
    """The plain ONNX graphs on onnxruntime (see the module docstring)."""

    name = "onnxruntime"

    def __init__(self, path: Path, device="cpu", precision: str = "fp32"):
        ort = _ort()
        self.path = Path(path)
        if precision not in ("fp32", "fp16"):
            raise HsError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        missing = [graph_file(g, precision) for g in GRAPHS if not (self.path / graph_file(g, precision)).is_file()]
        if missing:
            flags = "--fp32 " if precision == "fp32" else ""
            raise HsError(f"export directory {self.path} lacks {', '.join(missing)}; create it with "
                          f"hs-export --out {self.path} --plain {flags}--no-engines")
        dev = torch.device(device)
        if dev.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise HsError("device='cuda' needs onnxruntime-gpu (CUDAExecutionProvider not available); "
                              "use device='cpu'")
            if not torch.cuda.is_available():
                raise HsError("device='cuda' but torch.cuda.is_available() is False")
            dev = torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())
            providers = [("CUDAExecutionProvider", {"device_id": dev.index})]
        elif dev.type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise HsError(f"the onnxruntime executor runs on 'cpu' or 'cuda', got {dev}")
        self.cfg = get_config(_model_config(self.path, precision))
        self.device, self.precision = dev, precision
        self.modes = delta_modes(self.cfg, per_channel=False)
        self.ohwi = False
        self.capturable = False
        self._ort_device = ("cuda", dev.index) if dev.type == "cuda" else ("cpu", 0)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.sessions = {}
        fixed = {}
        for g in GRAPHS:
            f = self.path / graph_file(g, precision)
            try:
                self.sessions[g] = ort.InferenceSession(str(f), opts, providers=providers)
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise HsError(f"onnxruntime cannot load {f} ({type(e).__name__}: {one_line(e)})") from None
            b = self._check_io(g, f)
            if b is not None:
                fixed[g] = b
        self.fixed_batch = fixed
        self._bindings = {g: s.io_binding() for g, s in self.sessions.items()}
        self._names = {g: (self.io(g).input_names, self.io(g).output_names) for g in GRAPHS}

    @classmethod
    def from_export(cls, path: Path, device=None, precision: str | None = None,
                    max_batch: int | None = None) -> "OnnxRuntimeExecutor":
        path = Path(path)
        if precision is None:  # the fp32 set when present (the CPU path), else fp16
            precision = "fp32" if (path / graph_file("generator", "fp32")).is_file() or \
                not (path / graph_file("generator", "fp16")).is_file() else "fp16"
        return cls(path, device or "cpu", precision)

    def _check_io(self, graph: str, f: Path) -> int | None:
        """The session's I/O must be the contract's (names, dtypes, non-batch dims); returns a fixed batch or None."""
        sess, io = self.sessions[graph], graph_io(self.cfg, graph, self.modes, "B", False, self.precision)
        want_t = precision_of(self.precision).onnx
        fixed = set()
        for kind, have, want in (("inputs", sess.get_inputs(), io.inputs), ("outputs", sess.get_outputs(), io.outputs)):
            names = [t.name for t in have]
            if sorted(names) != sorted(t.name for t in want):
                raise HsError(f"{f.name}: {kind} {names} are not the contract's {[t.name for t in want]}; "
                              f"re-export with hs-export --out {self.path} --plain")
            by = {t.name: t for t in have}
            for t in want:
                h = by[t.name]
                if h.type != want_t or len(h.shape) != len(t.shape) or list(h.shape[1:]) != list(t.shape[1:]):
                    raise HsError(f"{f.name}: {t.name} is {h.type} {h.shape}, the contract says {want_t} "
                                  f"{list(t.shape)}; re-export with hs-export --out {self.path} --plain")
                if isinstance(h.shape[0], int):
                    fixed.add(h.shape[0])
        if len(fixed) > 1:
            raise HsError(f"{f.name}: inconsistent fixed batch sizes {sorted(fixed)}")
        return fixed.pop() if fixed else None

    def run(self, graph: str, bindings: Mapping[str, torch.Tensor], batch: int, stream) -> None:
        ins, outs = self._names[graph]
        io, (dev, idx) = self._bindings[graph], self._ort_device
        et = precision_of(self.io(graph).inputs[0].dtype).np_dtype()
        io.clear_binding_inputs()
        io.clear_binding_outputs()
        for names, bind in ((ins, io.bind_input), (outs, io.bind_output)):
            for n in names:
                t = bindings[n]
                assert t.is_contiguous() and t.shape[0] == batch, (graph, n, tuple(t.shape), batch)
                bind(n, dev, idx, et, list(t.shape), t.data_ptr())
        if stream is not None:
            stream.synchronize()  # ORT's CUDA EP runs on its own stream
        self.sessions[graph].run_with_iobinding(io)
        if stream is not None:
            io.synchronize_outputs()

    def close(self) -> None:
        self.sessions.clear()
        self._bindings.clear()

    def describe(self) -> dict:
        ort = _ort()
        return super().describe() | {"onnxruntime": ort.__version__, "export_dir": str(self.path),
                                     "fixed_batch": dict(self.fixed_batch)}
