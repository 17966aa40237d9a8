"""Strict loading of the official checkpoints, and the embedded default model.

Formats (docs/architecture.md §5):
- `hyperstyle_ffhq.pt`: {'state_dict': hypernet.* + decoder.*, 'opts': dict, 'latent_avg': (18,512), ...}; the
  shared hypernet tensors appear under 10 names each (one storage) and end up as ONE parameter here.
- `faces_w_encoder.pt`: {'state_dict': encoder.* + decoder.* (the decoder is unused but checked), 'opts', 'latent_avg'}.
- rosinality `stylegan2-ffhq-config-f.pt`: {'g_ema': state_dict, 'latent_avg': (512,)}.

Everything is read with `torch.load(weights_only=True)`: a file that needs arbitrary code to unpickle is refused.
Before that, `describe_file` says what the file is from its bytes (zip checkpoint, pickle, Git LFS pointer, text,
empty, truncated zip, .npy), so a wrong file is one line saying which; the edit-direction loader (runtime.edit) uses
the same pair.
Any key mismatch is an HsError naming the missing / unexpected / wrongly shaped keys.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from hyperstyle_trt.core.config import ENCODER_TYPES, GeneratorConfig, HypernetConfig, HyperStyleConfig, get_config
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.models.fill import DEFAULT_CONSTANTS, canonical_key, fill_module_, fill_value
from hyperstyle_trt.models.hyperstyle import HyperStyle
from hyperstyle_trt.models.stylegan2 import Generator

DEFAULT_NOTICE = ("notice: no --checkpoint given, so the model runs on built-in stand-in weights: the real HyperStyle "
                  "network, but UNTRAINED. Speeds are real; the pictures will look like coloured noise. For real "
                  "results pass --checkpoint hyperstyle_ffhq.pt --w-encoder faces_w_encoder.pt.")

LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"


@dataclasses.dataclass(frozen=True)
class FileKind:
    """What a file holds, judged from its bytes (not its name). kind: 'empty', 'lfs_pointer', 'torch_zip', 'zip'
    (a zip that is not a PyTorch checkpoint), 'truncated_zip', 'pickle', 'npy', 'text' or 'binary'; detail: a
    phrase for messages ("a Git LFS pointer ...: run `git lfs pull` ...")."""

    kind: str
    detail: str

    @property
    def torch_loadable(self) -> bool:
        """torch.load may read it (a zip checkpoint or a legacy pickle); anything else fails there."""
        return self.kind in ("torch_zip", "pickle")


def describe_file(path: str | os.PathLike) -> FileKind:
    """Sniff a file's first bytes (and a zip's end-of-archive record): what it is, in words. Never raises on
    content; an unreadable file is an HsError."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise HsError(f"cannot read {p}: {one_line(e, 160)}") from None
    if size == 0:
        return FileKind("empty", "an empty file (0 bytes): copy or download it again")
    if head.startswith(LFS_MAGIC):
        m = re.search(rb"^size (\d+)", head, re.M)
        real = f" of {int(m.group(1)):,} bytes" if m else ""
        return FileKind("lfs_pointer", f"a Git LFS pointer to the real file{real}, which was never downloaded: run "
                                       "`git lfs pull` in the repository it came from")
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(p):
            return FileKind("truncated_zip", f"a zip archive cut short ({size:,} bytes, no end-of-archive record): "
                                             "copy or download it again")
        try:
            with zipfile.ZipFile(p) as z:
                torch_zip = any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            torch_zip = False
        if torch_zip:
            return FileKind("torch_zip", "a PyTorch zip checkpoint")
        return FileKind("zip", "a zip archive without the data.pkl of a PyTorch checkpoint")
    if head.startswith(NPY_MAGIC):
        return FileKind("npy", "a NumPy .npy array")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return FileKind("pickle", "a pickle (legacy PyTorch checkpoint format)")
    if not any(b < 0x20 and b not in (9, 10, 12, 13) for b in head):
        first = next((ln.strip() for ln in head.decode("utf-8", "replace").splitlines() if ln.strip()), "")
        first = first if len(first) <= 40 else first[:37] + "..."
        return FileKind("text", f"a text file (starting {first!r})")
    return FileKind("binary", f"binary data of an unknown format (starting {head[:8].hex(' ')})")


def check_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> FileKind:
    """The checks before torch.load, reading only the file's first bytes: it exists, is readable and is a zip
    checkpoint or a pickle (describe_file); else one HsError line naming `what`, the path and what the file is.
    Cheap, so commands run it on every checkpoint before any work."""
    p = Path(path)
    if not p.is_file():
        raise HsError(f"{what} not found: {p}")
    if not os.access(p, os.R_OK):
        raise HsError(f"{what} is not readable: {p}")
    fk = describe_file(p)
    if fk.kind == "truncated_zip":
        raise HsError(f"{what} {p} is truncated or not a PyTorch checkpoint: {fk.detail}")
    if not fk.torch_loadable:
        raise HsError(f"{what} {p} is not a PyTorch checkpoint: it is {fk.detail}")
    return fk


def torch_load_checked(path: str | os.PathLike, what: str = "checkpoint"):
    """torch.load(weights_only=True, map_location='cpu') of a file that passes `check_torch_file`; every other
    file, and every failure, is one HsError line naming `what`, the path and what the file is."""
    p = Path(path)
    fk = check_torch_file(p, what)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "weights_only" in text or "Weights only" in text or "Unsupported global" in text:
            m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
            uses = f"it calls {m.group(1)}, " if m else ""
            raise HsError(f"{what} {p} refused: it needs arbitrary code to unpickle ({uses}which a weights-only "
                          "load never runs); save plain tensors and dicts instead") from None
        raise HsError(f"{what} {p} is not a PyTorch checkpoint: {fk.detail} that does not unpickle "
                      f"({one_line(e, 160)})") from None
    except Exception as e:  # noqa: BLE001 - any failure of the weights-only unpickler on foreign bytes means "not ours"
        raise HsError(f"{what} {p} is truncated or not a PyTorch checkpoint: {fk.detail} that torch.load cannot "
                      f"read ({type(e).__name__}: {one_line(e, 160)})") from None


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """A checkpoint dict (torch_load_checked) with one-line errors for missing, empty, truncated, foreign (text, Git
    LFS pointer, ...) or unsafe files."""
    obj = torch_load_checked(path, what)
    if not isinstance(obj, dict):
        raise HsError(f"{what} {path} is not a checkpoint dict (got {type(obj).__name__})")
    return obj


def _names(keys, n=6) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_keys(expected: Mapping[str, tuple], given: Mapping[str, torch.Tensor], what: str) -> None:
    """Strict comparison of key sets and shapes; HsError listing what is missing / unexpected / mis-shaped."""
    missing = set(expected) - set(given)
    unexpected = set(given) - set(expected)
    shapes = [f"{k} {tuple(given[k].shape)}!={tuple(expected[k])}" for k in sorted(set(expected) & set(given))
              if tuple(given[k].shape) != tuple(expected[k])]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing [{_names(missing)}]")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected [{_names(unexpected)}]")
        if shapes:
            parts.append(f"{len(shapes)} wrongly shaped [{'; '.join(shapes[:4])}{' ...' if len(shapes) > 4 else ''}]")
        raise HsError(f"{what} does not match the model: " + "; ".join(parts))


def expected_shapes(module: nn.Module, prefix: str = "") -> dict[str, tuple]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def _meta(fn):
    with torch.device("meta"):
        return fn()


def tie_aliases(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Check the shared-hypernet alias copies equal their canonical tensor; return sd with every alias pointing at
    the canonical tensor."""
    out = dict(sd)
    for k, v in sd.items():
        c = canonical_key(k)
        if c == k or c not in sd:
            continue
        ref = sd[c]
        same = v.untyped_storage().data_ptr() == ref.untyped_storage().data_ptr() and v.shape == ref.shape
        if not same and (v.shape != ref.shape or not torch.equal(v, ref)):
            raise HsError(f"checkpoint alias {k} differs from {c}: the shared hypernet tensors must be identical")
        out[k] = ref
    return out


def config_from_opts(opts: Mapping, sd: Mapping[str, torch.Tensor]) -> HyperStyleConfig:
    """Build the config that matches a HyperStyle checkpoint's `opts` (encoder_type, layers_to_tune, output_size)."""
    size = int(opts.get("output_size", 1024))
    base = opts.get("hs_config")  # written by save_checkpoint for non-official (e.g. tiny) configs
    if opts.get("dataset_type", "") == "cars":
        raise HsError("cars checkpoints (192x256 inputs) are not supported; expected an FFHQ HyperStyle checkpoint")
    if base is None and size not in (256, 512, 1024):
        raise HsError(f"opts.output_size={size} unsupported; expected 256, 512 or 1024")
    enc = opts.get("encoder_type", "SharedWeightsHyperNetResNet")
    if enc not in ENCODER_TYPES:
        raise HsError(f"opts.encoder_type={enc!r} unsupported; expected one of {ENCODER_TYPES}")
    if int(opts.get("input_nc", 6)) != 6:
        raise HsError(f"opts.input_nc={opts.get('input_nc')} unsupported; expected 6 ([x, y_hat])")
    base_cfg = get_config(str(base)) if base is not None else None
    gen = base_cfg.generator if base_cfg else GeneratorConfig(size=size)
    if gen.size != size:
        raise HsError(f"opts.output_size={size} disagrees with opts.hs_config={base!r} ({gen.size}px)")
    ltt = str(opts.get("layers_to_tune", "")).strip()
    tune = tuple(range(gen.n_layers)) if ltt == "" else tuple(int(t) for t in ltt.split(","))
    in_sd = sorted({int(k.split(".")[2]) for k in sd if k.startswith("hypernet.refinement_blocks.")})
    if in_sd and tuple(in_sd) != tuple(sorted(tune)):
        raise HsError(f"opts.layers_to_tune {list(tune)} disagrees with the refinement blocks in the state_dict "
                      f"{in_sd}")
    if base_cfg:
        return base_cfg.replace(hypernet=dataclasses.replace(base_cfg.hypernet, encoder_type=enc, layers_to_tune=tune))
    return HyperStyleConfig(name=f"ffhq{size}", generator=gen,
                            hypernet=HypernetConfig(encoder_type=enc, layers_to_tune=tune))


def load_hyperstyle_checkpoint(model: HyperStyle | None, path, cfg: HyperStyleConfig | None = None) -> HyperStyle:
    """Load `hyperstyle_ffhq.pt` (hypernet + decoder + latent_avg) strictly. Builds the model from `opts` if None."""
    ck = read_checkpoint(path, "HyperStyle checkpoint")
    if "state_dict" not in ck:
        raise HsError(f"HyperStyle checkpoint {path} has no 'state_dict' (keys: {_names(ck.keys())})")
    sd = ck["state_dict"]
    ck_cfg = config_from_opts(ck.get("opts") or {}, sd)
    cfg = cfg or ck_cfg
    if (cfg.generator, cfg.hypernet) != (ck_cfg.generator, ck_cfg.hypernet):
        raise HsError(f"HyperStyle checkpoint {path} is {ck_cfg.generator.size}px / "
                      f"{ck_cfg.hypernet.encoder_type} / layers {list(ck_cfg.hypernet.layers_to_tune)}, which "
                      f"does not match config {cfg.name!r}")
    model = model or HyperStyle(cfg)
    sd = tie_aliases(dict(sd))
    expected = {**expected_shapes(model.hypernet, "hypernet."), **expected_shapes(model.decoder, "decoder.")}
    for k in expected:  # a file saved without the alias names is accepted: they all mean the canonical tensor
        if k not in sd and canonical_key(k) in sd:
            sd[k] = sd[canonical_key(k)]
    check_keys(expected, sd, f"HyperStyle checkpoint {path}")
    la = ck.get("latent_avg")
    n, d = cfg.generator.n_latent, cfg.generator.style_dim
    if not isinstance(la, torch.Tensor) or tuple(la.shape) not in ((n, d), (d,)):
        raise HsError(f"HyperStyle checkpoint {path}: latent_avg must be a ({n},{d}) or ({d},) tensor, "
                      f"got {getattr(la, 'shape', type(la).__name__)}")
    with torch.no_grad():
        model.hypernet.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("hypernet.")}, strict=True)
        model.decoder.load_state_dict({k[8:]: v for k, v in sd.items() if k.startswith("decoder.")}, strict=True)
        model.latent_avg.copy_(la.float().expand(n, d))
    return model


def load_w_encoder_checkpoint(model: HyperStyle, path) -> HyperStyle:
    """Load `faces_w_encoder.pt` strictly: encoder.* into the W encoder; decoder.* (unused) must match a generator."""
    ck = read_checkpoint(path, "W-encoder checkpoint")
    sd = ck.get("state_dict")
    if not isinstance(sd, Mapping):
        raise HsError(f"W-encoder checkpoint {path} has no 'state_dict' (keys: {_names(ck.keys())})")
    expected = expected_shapes(model.w_encoder, "encoder.")
    if any(k.startswith("decoder.") for k in sd):
        expected.update(expected_shapes(_meta(lambda: Generator(model.cfg.generator)), "decoder."))
    check_keys(expected, sd, f"W-encoder checkpoint {path}")
    with torch.no_grad():
        model.w_encoder.load_state_dict({k[8:]: v for k, v in sd.items() if k.startswith("encoder.")}, strict=True)
    return model


def load_g_ema(path, cfg: GeneratorConfig | None = None) -> Generator:
    """rosinality checkpoint {'g_ema': ...} -> Generator (strict)."""
    ck = read_checkpoint(path, "StyleGAN2 checkpoint")
    sd = ck.get("g_ema")
    if not isinstance(sd, Mapping):
        raise HsError(f"StyleGAN2 checkpoint {path} has no 'g_ema' (keys: {_names(ck.keys())})")
    g = Generator(cfg or GeneratorConfig(size=1024))
    check_keys(expected_shapes(g), sd, f"StyleGAN2 checkpoint {path}")
    g.load_state_dict(sd, strict=True)
    return g


def fill_default_(model: HyperStyle, constants: Mapping[str, float] = DEFAULT_CONSTANTS) -> HyperStyle:
    """The embedded default: every tensor from the deterministic fill (golden/README)."""
    fill_module_(model.hypernet, "hypernet.", constants)
    fill_module_(model.decoder, "decoder.", constants)
    fill_module_(model.w_encoder, "encoder.", constants)
    with torch.no_grad():
        model.latent_avg.copy_(fill_value("latent_avg", tuple(model.latent_avg.shape), set(), constants))
    model.is_default = True
    return model


def build_model(config: str | HyperStyleConfig | None = None, checkpoint: str | None = None,
                w_encoder: str | None = None, device: str | torch.device = "cpu", quiet: bool = False) -> HyperStyle:
    """The HyperStyle model in eval mode.

    No checkpoint: the embedded default for `config` (default ffhq1024), with a notice on stderr.
    With a checkpoint: the config comes from its `opts` (an explicit `config` must agree) and `w_encoder` is required.
    """
    cfg = get_config(config) if isinstance(config, str) else config
    if checkpoint is None:
        if w_encoder is not None:
            raise HsError("--w-encoder given without --checkpoint; the W encoder only pairs with a HyperStyle "
                          "checkpoint")
        model = fill_default_(HyperStyle(cfg or get_config("ffhq1024")))
        if not quiet:
            print(DEFAULT_NOTICE, file=sys.stderr)
    else:
        if w_encoder is None:
            raise HsError("a HyperStyle checkpoint needs its W encoder too (faces_w_encoder.pt); pass --w-encoder")
        model = load_hyperstyle_checkpoint(None, checkpoint, cfg)
        load_w_encoder_checkpoint(model, w_encoder)
        model.is_default = False
    return model.eval().to(device)
