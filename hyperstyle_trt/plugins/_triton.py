"""Shared helpers for the Triton kernels in plugins/: availability checks, tile configs, a Triton-interpreter worker
process (CPU tests), AOT compilation to PTX/CUBIN and raw-pointer tensors.

Nothing here touches CUDA or compiles a kernel at import; this module imports without triton and without a GPU.

Launch ABI of every kernel in plugins/ (docs/tensorrt_plugins.md §3):
    (input pointers in plugin input order, int32 scalars, output pointers) + 2 hidden trailing pointers
Triton (>= 3.3) appends two `.u64 .ptr .global` params to every kernel entry: `global_scratch` and
`profile_scratch`. Passing NULL for both is valid when the compiled kernel's `global_scratch_size` is 0, which
`compile_aot` asserts. Absent optional inputs (e.g. `delta` when delta_mode=0) are compiled as constexpr None and do
not appear in the entry at all.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import pickle
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from hyperstyle_trt.core.errors import HsError

HIDDEN_TRAILING_PARAMS = 2  # Triton's global_scratch + profile_scratch pointers

# Triton's own signature type names (its "fp16"/"fp32" coincide with core.precision's names, but "bf16" has no
# precision of ours and these are Triton's spelling, not ours): kept here rather than derived from core.precision.
_TORCH_TO_TRITON = {torch.float16: "fp16", torch.float32: "fp32", torch.bfloat16: "bf16"}


def cdiv(a, b):
    """Ceil division that also works on symbolic shape expressions supporting `+`, `-` and `//`."""
    return (a + b - 1) // b


@dataclass(frozen=True)
class TileConfig:
    """Deterministic launch configuration (no autotuning: a TensorRT enqueue must reproduce it).

    block_m: output pixels per program (for the upsampling conv: low-resolution positions, x4 phases);
    block_n: output channels per program; block_k: input channels per K step; num_warps / num_stages: Triton's.
    """

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int

    def constexprs(self) -> dict[str, int]:
        return {"BLOCK_M": self.block_m, "BLOCK_N": self.block_n, "BLOCK_K": self.block_k}


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def require_cuda_kernels(op: str, *tensors: torch.Tensor) -> None:
    """Raise HsError (one line) unless the Triton CUDA path can run: triton installed, CUDA present, CUDA inputs."""
    if not triton_available():
        raise HsError(f"{op}: impl='cuda' needs triton (pip install 'hyperstyle-trt[kernels]'); use impl='ref'")
    if not torch.cuda.is_available():
        raise HsError(f"{op}: impl='cuda' needs a CUDA GPU (torch.cuda.is_available() is False); use impl='ref'")
    bad = [tuple(t.shape) for t in tensors if t is not None and not t.is_cuda]
    if bad:
        raise HsError(f"{op}: impl='cuda' needs CUDA tensors; got CPU tensors of shapes {bad}")


def check_dtype(op: str, *tensors: torch.Tensor | None) -> torch.dtype:
    """All float inputs share one dtype T in {fp16, fp32} (plugins/README.md); returns T."""
    dts = {t.dtype for t in tensors if t is not None}
    if len(dts) != 1 or next(iter(dts)) not in (torch.float16, torch.float32):
        raise HsError(f"{op}: all float inputs must share one dtype, fp16 or fp32; got {sorted(map(str, dts))}")
    return next(iter(dts))


def triton_dtype(dtype: torch.dtype) -> str:
    return _TORCH_TO_TRITON[dtype]


@contextlib.contextmanager
def _interpret(flag: bool):
    from triton import knobs

    old = knobs.runtime.interpret
    knobs.runtime.interpret = flag
    try:
        yield
    finally:
        knobs.runtime.interpret = old


def _resolve(target: str) -> Callable[..., Any]:
    mod, _, name = target.partition(":")
    return getattr(importlib.import_module(mod), name)


def serve_interpreter() -> None:
    """Child side of InterpreterWorker: read pickled (target, args, kwargs) requests on stdin, answer on stdout."""
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to stderr, the answer pipe stays clean
    inp = sys.stdin.buffer
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        target, args, kwargs = pickle.loads(inp.read(int.from_bytes(head, "little")))
        try:
            ans = ("ok", _resolve(target)(*args, **kwargs))
        except Exception:  # reported to the parent with its traceback
            ans = ("err", traceback.format_exc())
        data = pickle.dumps(ans, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(len(data).to_bytes(8, "little") + data)
        out.flush()


class InterpreterWorker:
    """A persistent child process with TRITON_INTERPRET=1 that runs kernel launchers on CPU tensors.

    Triton decides interpreter vs compiled when `triton` is imported, so the interpreter gets its own process: the
    calling process (e.g. a pytest session that also runs GPU tests) keeps compiled kernels.
        w = InterpreterWorker(); y = w.call("hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton", x, ...); w.close()
    """

    def __init__(self) -> None:
        env = dict(os.environ, TRITON_INTERPRET="1", TRITON_DEFAULT_FP_FUSION="1")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-c",
                                      "from hyperstyle_trt.plugins._triton import serve_interpreter as s; s()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def call(self, target: str, *args, **kwargs) -> Any:
        """Run `module:function`(*args, **kwargs) in the interpreter process; returns its (pickled) result."""
        data = pickle.dumps((target, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.write(len(data).to_bytes(8, "little") + data)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(8)
        if len(head) < 8:
            raise RuntimeError(f"interpreter worker died (exit code {self.proc.poll()})")
        status, val = pickle.loads(self.proc.stdout.read(int.from_bytes(head, "little")))
        if status == "err":
            raise RuntimeError(f"{target} failed in the Triton interpreter:\n{val}")
        return val

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def launch_on_stream(stream: int | None, fn: Callable[[], Any]) -> Any:
    """Run fn with torch's current CUDA stream set to the raw handle `stream` (0: the legacy default stream, as
    TensorRT means it; None: leave torch's current stream).

    Triton launches on torch's current stream, so this is how a raw cudaStream_t from a TensorRT enqueue is honoured.
    """
    if stream is None:
        return fn()
    s = torch.cuda.default_stream() if stream == 0 else torch.cuda.ExternalStream(stream)
    with torch.cuda.stream(s):
        return fn()


class _CudaArray:
    """Minimal __cuda_array_interface__ (v3) view of a raw device pointer, for torch.as_tensor (zero copy)."""

    _TYPESTR = {torch.float16: "<f2", torch.float32: "<f4", torch.uint8: "|u1"}  # the array interface's typestr

    def __init__(self, ptr: int, shape: tuple[int, ...], dtype: torch.dtype):
        self.__cuda_array_interface__ = {"shape": tuple(int(s) for s in shape), "typestr": self._TYPESTR[dtype],
                                         "data": (int(ptr), False), "version": 3, "strides": None, "stream": None}


def tensor_from_ptr(ptr: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Contiguous CUDA tensor aliasing device memory at `ptr` (no copy, no ownership)."""
    return torch.as_tensor(_CudaArray(ptr, shape, dtype), device="cuda")


@dataclass(frozen=True)
class AotKernel:
    """A kernel compiled ahead of time for one GPU arch, as TensorRT's AOT plugin path wants it.

    name: the `.entry` symbol; ptx / cubin: the code; num_warps: block = (32*num_warps, 1, 1); shared_mem: dynamic
    shared memory bytes to launch with; n_params: `.entry` param count (visible params + HIDDEN_TRAILING_PARAMS).
    """

    name: str
    ptx: str
    cubin: bytes
    num_warps: int
    shared_mem: int
    n_params: int

    @property
    def block(self) -> tuple[int, int, int]:
        return (32 * self.num_warps, 1, 1)


def compile_aot(fn, signature: dict[str, str], constexprs: dict[str, Any], cfg: TileConfig, arch: int = 90,
                divisible_by_16: tuple[str, ...] = ()) -> AotKernel:
    """Compile a @triton.jit kernel for `sm_{arch}` without a GPU (ptxas ships with triton).

    signature: param name -> "*fp16" / "i32" / "constexpr"; constexprs: values of the constexpr params (a pointer
    param given as constexpr None is dropped from the entry). divisible_by_16: params the caller guarantees to be
    multiples of 16 (pointers: 16-byte aligned addresses), which lets Triton vectorize loads. A launch that breaks
    the promise faults or reads wrong data, so only list what the runtime guarantees.
    """
    if not triton_available():
        raise HsError("AOT kernel compilation needs triton (pip install 'hyperstyle-trt[kernels]')")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    with _interpret(False):
        attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in divisible_by_16}
        src = ASTSource(fn, signature=signature, constexprs=constexprs, attrs=attrs)
        ck = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options={"num_warps": cfg.num_warps, "num_stages": cfg.num_stages,
                                     "enable_fp_fusion": True})
    md = ck.metadata
    assert getattr(md, "global_scratch_size", 0) == 0, "kernel needs global scratch: NULL hidden params invalid"
    ptx = ck.asm["ptx"]
    entry = ptx[ptx.index(".entry"):]
    n_params = entry[:entry.index(")")].count(".param")
    return AotKernel(md.name, ptx, ck.asm["cubin"], md.num_warps, md.shared, n_params)
