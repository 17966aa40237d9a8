"""The Python half of the C++ / C embedding (cpp/): caller-owned raw buffers <-> `runtime.Inverter`.

The C++ library (cpp/src/inverter.cpp) hands every buffer over as a tuple `(address, dtype_code, shape, device)`:
address an int (a host pointer, or a CUDA device pointer when device >= 0), dtype_code 0 = uint8 / 1 = float32,
shape a tuple of ints (C-contiguous), device -1 for host memory or the CUDA ordinal. `Embedded` wraps them without
copying (host: numpy over the memory; device: a `__cuda_array_interface__` view read by torch.as_tensor), checks
every shape before any work (one-line HsError), runs `Inverter.invert` and writes the results into the caller's
output buffers:

    images      uint8 [B,S,S,3] (HWC, 0..255) or float32 [B,3,S,S] (NCHW, [-1,1]); S = input_size, exactly
    out_images  uint8 [B,size,size,3] (as InverterResult.to_uint8) or float32 [B,3,size,size] (InverterResult.images)
    out_codes   float32 [B,n_latent,style_dim] (InverterResult.codes), optional

On CUDA everything (input copy, the loop, the output copies) is enqueued on the caller's stream (a cudaStream_t as an
int; 0 = the legacy default stream) without a host sync unless an output is host memory. Calls are serialized by
the C++ side (one mutex per Inverter); successive calls on different streams are ordered by an event, because the
Inverter's buffers are shared by all calls.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import unit_to_uint8

DTYPES = {0: ("uint8", np.uint8, "|u1"), 1: ("float32", np.float32, "<f4")}


@dataclass(frozen=True)
class Buffer:
    """A caller buffer as the C++ side describes it (see the module docstring)."""

    address: int
    dtype: str  # "uint8" | "float32"
    shape: tuple[int, ...]
    device: int  # -1: host memory; k >= 0: CUDA device k

    @classmethod
    def parse(cls, what: str, view) -> "Buffer":
        address, code, shape, device = view
        if code not in DTYPES:
            raise HsError(f"{what}: dtype code {code}, expected 0 (uint8) or 1 (float32)")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise HsError(f"{what}: negative extent in shape {shape}")
        return cls(int(address), DTYPES[code][0], shape, int(device))

    def describe(self) -> str:
        where = "host" if self.device < 0 else f"cuda:{self.device}"
        return f"{self.dtype} {list(self.shape)} on {where}"

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


class _CudaView:
    """A `__cuda_array_interface__` (v3) over a caller's device pointer; torch.as_tensor reads it without a copy.
    stream None: no synchronization is asked of the consumer (the work runs on the caller's stream anyway)."""

    def __init__(self, b: Buffer, readonly: bool):
        self.__cuda_array_interface__ = {"shape": b.shape, "typestr": DTYPES[1 if b.dtype == "float32" else 0][2],
                                         "data": (b.address, readonly), "version": 3, "strides": None,
                                         "stream": None}


def _tensor(b: Buffer, readonly: bool) -> torch.Tensor:
    """Buffer -> torch tensor over the same memory (no copy)."""
    if b.device < 0:
        return torch.from_numpy(_host_array(b))
    return torch.as_tensor(_CudaView(b, readonly), device=f"cuda:{b.device}")


def _host_array(b: Buffer) -> np.ndarray:
    """Buffer in host memory -> numpy array over it (no copy; writeable so torch.from_numpy does not warn)."""
    raw = (ctypes.c_char * b.nbytes).from_address(b.address)
    return np.frombuffer(raw, dtype=b.dtype).reshape(b.shape)


def uint8_hwc(images: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] float (generator range) -> uint8 [B,H,W,3] on the same device; the formula of
    InverterResult.to_uint8 ((y+1)/2 clamped to [0,1], x255, rounded half to even), without the host copy."""
    return unit_to_uint8(images)


class Embedded:
    """One `runtime.Inverter` and its default T, driven through raw buffers (the object behind hs::Inverter)."""

    def __init__(self, inverter):
        self.inverter = inverter
        self.n_iters = int(inverter.n_iters)
        cfg = inverter.cfg
        self.input_size = int(inverter.input_size)
        self.size = int(inverter.size)
        self.n_latent = int(cfg.generator.n_latent)
        self.style_dim = int(cfg.generator.style_dim)
        self.device = torch.device(inverter.device)
        self._last_event = None  # CUDA: the end of the previous call, for a call on another stream to wait on

    @classmethod
    def create(cls, export_dir: str | None = None, checkpoint: str | None = None, w_encoder: str | None = None,
               config: str | None = None, executor: str | None = None, device: str | None = None,
               precision: str | None = None, max_batch: int = 8, n_iters: int = 5) -> "Embedded":
        """Inverter.from_export(export_dir, ...) when export_dir is given, else Inverter.from_checkpoint(checkpoint or
        None, w_encoder=, config=, ...) with max_batch and n_iters (the default T). None-valued options are left to
        the method's defaults."""
        from hyperstyle_trt.runtime.inverter import Inverter

        kw = {k: v for k, v in dict(executor=executor, device=device, precision=precision).items() if v is not None}
        kw["n_iters"] = n_iters
        if export_dir is not None:
            if checkpoint is not None or w_encoder is not None or config is not None:
                raise HsError("an export directory carries its own weights and config; do not also pass a checkpoint, "
                              "W encoder or config")
            inv = Inverter.from_export(export_dir, max_batch=max_batch, **kw)
        else:
            if config is not None:
                kw["config"] = config
            if w_encoder is not None:
                kw["w_encoder"] = w_encoder
            inv = Inverter.from_checkpoint(checkpoint, max_batch=max_batch, **kw)
        return cls(inv)

    def info(self) -> dict:
        """Sizes for the caller's buffers and the settings (ints; cuda_device -1 on CPU)."""
        dev = -1
        if self.device.type == "cuda":
            dev = self.device.index if self.device.index is not None else torch.cuda.current_device()
        return {"input_size": self.input_size, "size": self.size, "n_latent": self.n_latent,
                "style_dim": self.style_dim, "max_batch": int(self.inverter.max_batch),
                "n_iters": self.n_iters, "cuda_device": dev}

    # ---- validation (before any work) --------------------------------------------------------------------------
    def _cuda_ordinal(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return self.device.index if self.device.index is not None else torch.cuda.current_device()

    def _check_place(self, what: str, b: Buffer) -> None:
        if b.address == 0:
            where = "host memory" if b.device < 0 else f"CUDA memory on device {b.device}"
            raise HsError(f"{what}: null data pointer (expected {b.dtype} {list(b.shape)} in {where})")
        if b.device >= 0:
            ordinal = self._cuda_ordinal()
            if ordinal is None:
                raise HsError(f"{what}: a CUDA buffer (device {b.device}) but this Inverter runs on the CPU; pass host "
                              "buffers or create it with device \"cuda\"")
            if b.device != ordinal:
                raise HsError(f"{what}: on CUDA device {b.device}, this Inverter runs on cuda:{ordinal}")

    def _check_images(self, b: Buffer) -> int:
        s = self.input_size
        want = f"uint8 [B,{s},{s},3] (HWC) or float32 [B,3,{s},{s}] (NCHW, in [-1,1])"
        if len(b.shape) != 4:
            raise HsError(f"images: {b.describe()}, expected {want}")
        if b.shape[0] == 0:
            raise HsError(f"images: batch 0 ({b.describe()}); expected at least one image")
        exp = (b.shape[0], s, s, 3) if b.dtype == "uint8" else (b.shape[0], 3, s, s)
        if b.shape != exp:
            raise HsError(f"images: {b.describe()}, expected {want} (no resizing here: resize to {s}x{s} first)")
        self._check_place("images", b)
        return b.shape[0]

    def _check_out(self, what: str, b: Buffer, exp: tuple[int, ...], dtypes: tuple[str, ...]) -> None:
        if b.dtype not in dtypes or b.shape != exp:
            want = " or ".join(f"{dt} {list(e)}" for dt, e in
                               ((d, exp if d == b.dtype else self._out_shape(exp[0], d)) for d in dtypes))
            raise HsError(f"{what}: {b.describe()}, expected {want}")
        self._check_place(what, b)

    def _out_shape(self, batch: int, dtype: str) -> tuple[int, ...]:
        s = self.size
        return (batch, s, s, 3) if dtype == "uint8" else (batch, 3, s, s)

    # ---- the call ------------------------------------------------------------------------------------------------
    def invert_into(self, images, out_images, out_codes=None, n_iters: int = 0, stream: int = 0) -> None:
        """Invert the caller's `images` buffer and write `out_images` (and `out_codes` when not None); n_iters <= 0:
        the default T; stream: cudaStream_t as an int (CUDA Inverters only; ignored on CPU)."""
        img = Buffer.parse("images", images)
        out = Buffer.parse("out_images", out_images)
        codes = Buffer.parse("out_codes", out_codes) if out_codes is not None else None
        batch = self._check_images(img)
        self._check_out("out_images", out, self._out_shape(batch, out.dtype), ("uint8", "float32"))
        if codes is not None:
            self._check_out("out_codes", codes, (batch, self.n_latent, self.style_dim), ("float32",))
        t = self.n_iters if n_iters <= 0 else int(n_iters)

        if self.device.type != "cuda":
            self._run(img, out, codes, t, None)
            return
        if stream:
            s = torch.cuda.ExternalStream(int(stream), device=self.device)
        else:
            s = torch.cuda.default_stream(self.device)
        with torch.cuda.device(self.device), torch.cuda.stream(s):
            if self._last_event is not None:
                s.wait_event(self._last_event)  # the previous call (maybe on another stream) is done with the buffers
            self._run(img, out, codes, t, s)
            self._last_event = s.record_event()

    def _run(self, img: Buffer, out: Buffer, codes: Buffer | None, t: int, stream) -> None:
        if img.device < 0:
            x = _host_array(img) if img.dtype == "uint8" else _tensor(img, readonly=True)
        else:
            x = _tensor(img, readonly=True)
        kw = {"stream": stream} if stream is not None else {}
        res = self.inverter.invert(x, n_iters=t, **kw)
        dst = _tensor(out, readonly=False)
        dst.copy_(uint8_hwc(res.images) if out.dtype == "uint8" else res.images)
        if codes is not None:
            _tensor(codes, readonly=False).copy_(res.codes)
