"""User images -> the Inverter's input tensor [B,3,S,S] in [-1,1], validated before any work.

Accepted (S = cfg.hypernet.input_size):
- numpy / torch uint8 HWC: one image [H,W,3] or a batch [B,H,W,3]; resized to SxS with PIL's bilinear filter
  (the official EncodeTransforms, as models.images.read_image) when not SxS; mapped v/127.5 - 1.
- float tensors or numpy arrays [B,3,S,S] (exactly that shape) in [-1,1], dtype float16 / float32 / float64 /
  bfloat16 (torch).
- any object with `__cuda_array_interface__` (CuPy, pycuda GPUArray, numba) or `__dlpack__`: wrapped as a torch
  tensor without a copy (torch.as_tensor / torch.from_dlpack), then handled as above.

Every check raises a one-line HsError naming what was wrong and what was expected: wrong rank / size / channels,
dtype, batch 0, a device other than the Inverter's (host memory is always accepted), and (when `check_values`)
values outside [-1,1] (tolerance VALUE_SLACK) or NaN / Inf. Host inputs are checked on the host; device float
inputs are checked by the Inverter on its input buffer (one small device->host read per call), see
`value_error`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import uint8_to_unit

VALUE_SLACK = 1e-3  # float inputs may exceed [-1,1] by this much (rounding of (v/255-0.5)/0.5 in fp16 is < 1e-3)
_FLOAT_NP = (np.float16, np.float32, np.float64)
_FLOAT_TORCH = (torch.float16, torch.float32, torch.float64, torch.bfloat16)


@dataclass
class PreparedInput:
    """A validated batch: `tensor` [B,3,S,S] float (on the host or on the Inverter's device; not yet in the
    Inverter's dtype), and whether its values still need the device-side range/NaN check (`needs_value_check`)."""

    tensor: torch.Tensor
    needs_value_check: bool

    @property
    def batch(self) -> int:
        return int(self.tensor.shape[0])


def _wrap_foreign(images):
    """CAI / DLPack objects -> torch tensor (no copy); everything else unchanged."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return images
    if hasattr(images, "__cuda_array_interface__"):
        try:
            return torch.as_tensor(images, device="cuda")
        except (RuntimeError, TypeError, ValueError) as e:
            raise HsError(f"cannot read the input's __cuda_array_interface__ ({e})") from None
    if hasattr(images, "__dlpack__"):
        try:
            return torch.from_dlpack(images)
        except (RuntimeError, TypeError, BufferError) as e:
            raise HsError(f"cannot import the input through DLPack ({e})") from None
    if isinstance(images, (list, tuple)) and images and all(isinstance(i, np.ndarray) for i in images):
        shapes = {i.shape for i in images}
        if len(shapes) != 1:
            raise HsError(f"a list of images must share one shape, got {sorted(map(str, shapes))}; "
                          "resize them first or pass them one by one")
        return np.stack(images)
    raise HsError(f"images must be a numpy array, a torch tensor or a CUDA array (__cuda_array_interface__ / "
                  f"DLPack), got {type(images).__name__}")


def _check_device(t: torch.Tensor, device: torch.device) -> None:
    if t.device.type == "cpu":
        return
    same = t.device.type == device.type and (device.index is None or t.device.index in (None, device.index))
    if not same:
        raise HsError(f"input is on device {t.device}, this Inverter runs on {device}; move it there or pass a host "
                      "array")


def _resize_uint8(a: np.ndarray, size: int) -> np.ndarray:
    """[B,H,W,3] uint8 -> [B,size,size,3] uint8 (PIL bilinear, antialiased, as the official transform)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in a])


def _from_uint8(t: torch.Tensor | np.ndarray, size: int, device: torch.device) -> PreparedInput:
    shape = tuple(t.shape)
    if len(shape) == 3:
        t = t[None]
    elif len(shape) != 4:
        raise HsError(f"uint8 images must be HWC [H,W,3] or [B,H,W,3], got shape {shape}")
    if t.shape[-1] != 3:
        hint = " (that looks like CHW: uint8 input is HWC)" if t.shape[1] == 3 else ""
        raise HsError(f"uint8 images must have 3 channels (RGB, HWC), got shape {shape}{hint}")
    if t.shape[0] == 0:
        raise HsError("empty batch: got 0 images")
    if t.shape[1] == 0 or t.shape[2] == 0:
        raise HsError(f"uint8 images must be at least 1x1, got shape {shape}")
    if isinstance(t, torch.Tensor):
        _check_device(t, device)
        if tuple(t.shape[1:3]) != (size, size):
            t = torch.from_numpy(_resize_uint8(t.cpu().numpy(), size))
        x = uint8_to_unit(t)  # [B,3,S,S]
    else:
        a = np.ascontiguousarray(t)
        if a.shape[1:3] != (size, size):
            a = _resize_uint8(a, size)
        if not a.flags.writeable:  # e.g. a PIL-backed array: torch.from_numpy would share read-only memory
            a = a.copy()
        x = uint8_to_unit(torch.from_numpy(np.ascontiguousarray(a)))  # [B,3,S,S]
    return PreparedInput(x, needs_value_check=False)


def value_error(lo: float, hi: float) -> str | None:
    """The message for a batch whose min / max are `lo` / `hi` (NaN propagates into them), or None if fine."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "input contains NaN or Inf values; expected finite floats in [-1,1]"
    if lo < -1 - VALUE_SLACK or hi > 1 + VALUE_SLACK:
        return (f"input values span [{lo:.4g}, {hi:.4g}]; expected floats in [-1,1] "
                "(uint8 images in 0..255 must be passed as uint8 HWC)")
    return None


def prepare(images, size: int, device: torch.device, check_values: bool = True) -> PreparedInput:
    """Validate and convert `images` (module docstring); host float arrays are value-checked here, device float
    tensors are left to the Inverter (`needs_value_check`)."""
    images = _wrap_foreign(images)
    if images.dtype in (np.uint8, torch.uint8):
        return _from_uint8(images, size, device)
    if isinstance(images, np.ndarray):
        if images.dtype not in _FLOAT_NP:
            raise HsError(f"images must be uint8 HWC or float [B,3,{size},{size}] in [-1,1], got numpy "
                          f"{images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    elif images.dtype not in _FLOAT_TORCH:
        raise HsError(f"images must be uint8 HWC or float [B,3,{size},{size}] in [-1,1], got {images.dtype}")
    _check_device(images, device)
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1:] != (3, size, size):
        hint = ""
        if len(shape) == 4 and shape[1] != 3 and shape[-1] == 3:
            hint = " (that looks like HWC: float input is NCHW)"
        elif len(shape) == 4 and shape[1] == 3:
            hint = f"; resize to {size}x{size} first or pass uint8 HWC images"
        raise HsError(f"float images must be [B,3,{size},{size}] in [-1,1], got shape {shape}{hint}")
    if shape[0] == 0:
        raise HsError("empty batch: got 0 images")
    on_host = images.device.type == "cpu"
    if check_values and on_host:
        lo, hi = torch.aminmax(images.float()) if images.dtype != torch.float64 else torch.aminmax(images)
        msg = value_error(float(lo), float(hi))
        if msg:
            raise HsError(msg)
    return PreparedInput(images, needs_value_check=check_values and not on_host)
