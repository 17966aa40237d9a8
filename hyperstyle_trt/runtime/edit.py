"""After inversion: latent edits with the per-image Δ kept, and per-image fine-tuned generator weights.

    imgs = inv.edit(res, "age.npy", [-3, 0, 3])          # [3,B,3,size,size]; strength 0 reproduces res.images
    sd = inv.fine_tuned_weights(res, 0)                   # rosinality Generator state_dict, W * (1 + Δ_0) folded
    save_weights(sd, "image0_generator.safetensors")      # safetensors, written atomically

Edits use the executor's generator graph on tensors of their own (they allocate; they are not the hot path) and
never touch the Inverter's loop buffers, so `res` stays valid.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.models.checkpoint import describe_file, torch_load_checked
from hyperstyle_trt.runtime.result import InverterResult


def read_direction_file(path) -> torch.Tensor:
    """A direction file -> its float tensor as stored (shape not checked: `load_direction` does that against the
    model). .npy (np.load, allow_pickle=False) or .pt / .pth (weights-only torch.load; a one-entry dict is unwrapped).
    Needs no model, so hs-invert checks every --edit file before it loads one. A file that is not what its suffix
    says (Git LFS pointer, text, empty, truncated, ...) is one HsError line saying what it is
    (models.checkpoint.describe_file)."""
    p = Path(path)
    if not p.is_file():
        raise HsError(f"edit direction file not found: {p}")
    if p.suffix not in (".npy", ".pt", ".pth"):
        raise HsError(f"edit direction file {p} must be .npy or .pt")
    if p.suffix == ".npy":
        fk = describe_file(p)
        if fk.kind != "npy":
            raise HsError(f"edit direction {p} is not a .npy array: it is {fk.detail}")
        try:
            obj = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise HsError(f"cannot read edit direction {p}: a .npy file cut short or damaged "
                          f"({type(e).__name__}: {one_line(e, 120)})") from None
    else:
        obj = torch_load_checked(p, "edit direction")
    return _float_tensor(obj, f"edit direction {p} must hold one float tensor/array")


def _float_tensor(obj, what: str) -> torch.Tensor:
    """A one-entry mapping's value, a float numpy array or a float tensor -> that tensor (numpy shared, not copied);
    HsError "`what`, got <type>" for anything else (an integer array names its dtype)."""
    if isinstance(obj, Mapping) and len(obj) == 1:
        obj = next(iter(obj.values()))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind != "f":
            raise HsError(f"edit direction must be a float array, got {obj.dtype}")
        obj = torch.from_numpy(np.ascontiguousarray(obj))
    if not isinstance(obj, torch.Tensor) or not obj.is_floating_point():
        got = f"{obj.dtype} tensor" if isinstance(obj, torch.Tensor) else type(obj).__name__
        raise HsError(f"{what}, got {got}")
    return obj


def load_direction(direction, n_latent: int, style_dim: int) -> torch.Tensor:
    """direction ([style_dim], [1,style_dim] or [n_latent,style_dim]; torch / numpy, or a .pt / .npy file read by
    `read_direction_file`) -> float32 CPU tensor [n_latent, style_dim] (a single row is applied to every W+ row)."""
    if isinstance(direction, (str, Path)):
        direction = read_direction_file(direction)
    direction = _float_tensor(direction, "edit direction must be a float tensor/array or a .pt/.npy file")
    d = direction.detach().to("cpu", torch.float32)
    if d.ndim == 2 and d.shape[0] == 1:
        d = d[0]
    if d.ndim == 1 and d.shape[0] == style_dim:
        d = d.expand(n_latent, style_dim)
    if tuple(d.shape) != (n_latent, style_dim):
        raise HsError(f"edit direction must be [{style_dim}] or [{n_latent},{style_dim}], got {tuple(direction.shape)}")
    if not torch.isfinite(d).all():
        raise HsError("edit direction contains NaN or Inf")
    return d.contiguous()


def _strengths(strength) -> tuple[list[float], bool]:
    scalar = isinstance(strength, (int, float, np.floating, np.integer)) and not isinstance(strength, bool)
    vals = [strength] if scalar else list(strength) if isinstance(strength, (Sequence, np.ndarray, torch.Tensor)) \
        else None
    if vals is None or not vals:
        raise HsError(f"strength must be a number or a non-empty sequence of numbers, got {strength!r}")
    try:
        out = [float(v) for v in vals]
    except (TypeError, ValueError):
        raise HsError(f"strength must be a number or a non-empty sequence of numbers, got {strength!r}") from None
    if not all(np.isfinite(out)):
        raise HsError(f"strengths must be finite, got {out}")
    return out, scalar


def _check_result(inv, res: InverterResult) -> None:
    if not isinstance(res, InverterResult):
        raise HsError(f"expected the InverterResult of Inverter.invert, got {type(res).__name__}")
    if res.codes.device != inv.device or not res.raw_deltas:
        raise HsError(f"this result was not produced by this Inverter (device {res.codes.device}, expected "
                      f"{inv.device}, Δ layout {'present' if res.raw_deltas else 'missing'})")
    if set(res.raw_deltas) != {s.name for s in inv.specs}:
        raise HsError("this result's Δ layers do not match this Inverter's model")


def render(inv, codes: torch.Tensor, raw_deltas: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Generator images [N,3,size,size] for codes [N,L,D] and contract-layout Δ {layer: [N,...]} on the Inverter's
    device, through its executor in chunks of up to max_batch rows (fixed-batch graphs padded with zero rows)."""
    ex, n = inv.executor, int(codes.shape[0])
    fixed = ex.fixed_batch.get("generator")
    chunk = fixed or inv.max_batch
    out = torch.empty((n, 3, inv.size, inv.size), dtype=codes.dtype, device=inv.device)
    pooled = torch.empty((chunk, 3, inv.input_size, inv.input_size), dtype=codes.dtype, device=inv.device)
    img = torch.empty((chunk, 3, inv.size, inv.size), dtype=codes.dtype, device=inv.device)
    s = inv.stream if inv.device.type == "cuda" else None
    if s is not None:  # inputs were made on the caller's stream, res on the stream of the last invert
        s.wait_stream(torch.cuda.current_stream(inv.device))
        if inv._last_stream is not None and inv._last_stream != s:
            s.wait_stream(inv._last_stream)
    # Everything below (the padding copies, the generator, the copy out of img) is enqueued on s, in order: a copy
    # on another stream could read img before the generator wrote it, or the next chunk overwrite it first.
    with torch.cuda.stream(s) if s is not None else contextlib.nullcontext():
        for i in range(0, n, chunk):
            j = min(n, i + chunk)
            rows = chunk if fixed else j - i

            def take(t, i=i, j=j, rows=rows):
                part = t[i:j]
                if part.shape[0] < rows:  # pad to the graph's fixed batch
                    part = torch.cat([part, part.new_zeros((rows - part.shape[0], *part.shape[1:]))])
                return part.contiguous()

            b = {"codes": take(codes), "image": img[:rows], "image_pooled": pooled[:rows],
                 **{spec.input_name: take(raw_deltas[spec.name]) for spec in inv.specs}}
            with torch.no_grad():
                ex.run("generator", b, rows, s)
            out[i:j].copy_(img[:j - i])
    if s is not None:
        torch.cuda.current_stream(inv.device).wait_stream(s)
    return out


def render_edit(inv, res: InverterResult, direction, strength) -> torch.Tensor:
    """Inverter.edit (see there)."""
    _check_result(inv, res)
    vals, scalar = _strengths(strength)
    g = inv.cfg.generator
    d = load_direction(direction, g.n_latent, g.style_dim).to(inv.device, res.codes.dtype)  # [L,D]
    k, b = len(vals), len(res)
    st = torch.tensor(vals, dtype=res.codes.dtype, device=inv.device).view(k, 1, 1, 1)
    codes = (res.codes[None] + st * d).reshape(k * b, g.n_latent, g.style_dim)  # [K*B,L,D]
    raw = {n: t[None].expand(k, *t.shape).reshape(k * b, *t.shape[1:]) for n, t in res.raw_deltas.items()}
    imgs = render(inv, codes, raw).view(k, b, 3, inv.size, inv.size)
    return imgs[0] if scalar else imgs


def fold_weights(inv, res: InverterResult, i: int) -> dict[str, torch.Tensor]:
    """Inverter.fine_tuned_weights (see there)."""
    _check_result(inv, res)
    if isinstance(i, bool) or not isinstance(i, int) or not -len(res) <= i < len(res):
        raise HsError(f"image index {i!r} out of range for a result of {len(res)} image(s)")
    sd = {k: v.detach().to("cpu", torch.float32).clone() for k, v in inv.decoder_state().items()}
    for spec in inv.specs:
        key = f"{spec.name}.conv.weight"
        if key not in sd:
            raise HsError(f"generator weights have no {key}; is decoder_state a rosinality Generator state_dict?")
        delta = res.deltas[spec.name][i].detach().to("cpu", torch.float32)  # [O,I,k,k] official layout
        sd[key] = (sd[key] * (1 + delta[None])).contiguous()  # [1,O,I,k,k]
    return sd


def save_weights(state: Mapping[str, torch.Tensor], path) -> Path:
    """Write a state_dict as safetensors (contiguous CPU copies), atomically; returns the path."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise HsError("saving weights needs safetensors (pip install 'hyperstyle-trt[runtime]')") from None
    p = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(p) as tmp:
        save_file(tensors, str(tmp))
    return p
