"""The one device parser: every command, executor and benchmark accepts the same device strings.

Accepted: "cpu", "cuda", "cuda:N" (N >= 0), any letter case and surrounding spaces, or a `torch.device` of those
types; None means "cpu". Anything else ("gpu", "cuda0", "cuda:-1", "mps") is an HsError naming what was expected.
`parse_device` is pure (no torch import); `torch_device` resolves the string on this machine (CUDA present, index in
range, "cuda" -> the current device)."""

from __future__ import annotations

import re
from typing import Any

from hyperstyle_trt.core.errors import HsError

DEVICE_TYPES = ("cpu", "cuda")
EXPECTED = "expected 'cpu', 'cuda' or 'cuda:N'"
_RE = re.compile(r"(cpu|cuda)(?::(\d+))?")


def parse_device(device: Any = None) -> str:
    """`device` (str | torch.device | None) -> the normalized string "cpu" | "cuda" | "cuda:N"."""
    if device is None:
        return "cpu"
    text = str(device).strip().lower()
    m = _RE.fullmatch(text)
    if m is None or (m[1] == "cpu" and m[2] is not None):
        raise HsError(f"bad device {str(device)!r}: {EXPECTED}")
    return text


def is_cuda(device: Any) -> bool:
    """True for "cuda" / "cuda:N" (after parsing)."""
    return parse_device(device).startswith("cuda")


def torch_device(device: Any = None):
    """`device` -> a torch.device that exists here: "cuda" becomes "cuda:<current>"; HsError when CUDA is absent or
    the index is out of range."""
    import torch

    text = parse_device(device)
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise HsError(f"device {text!r} but torch.cuda.is_available() is False; use device 'cpu'")
    dev = torch.device(text)
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.index >= torch.cuda.device_count():
        raise HsError(f"device {dev} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    return dev
