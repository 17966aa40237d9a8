"""The one vocabulary in core: one_line, the device parser, the precision table, the model-source option group."""

from __future__ import annotations

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hyperstyle_trt.core.device import is_cuda, parse_device, torch_device
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.core.precision import FP16, FP32, PRECISION_NAMES, check_precision, precision
from hyperstyle_trt.core.source import ModelSource, model_source_options


class _BadStr(Exception):
    def __str__(self):
        raise RuntimeError("broken __str__")


@pytest.mark.parametrize("exc,want", [
    (ValueError("first\nsecond"), "first"),
    (ValueError(""), "ValueError"),           # str(e).splitlines()[0] raised IndexError here
    (ValueError("\n\n  \n"), "ValueError"),
    (ValueError("\n  third line  \nx"), "third line"),
    (_BadStr(), "_BadStr"),
    ("plain text\nmore", "plain text"),
])
def test_one_line_never_raises(exc, want):
    assert one_line(exc) == want


def test_one_line_limit():
    assert one_line(ValueError("x" * 400)) == "x" * 297 + "..."
    assert len(one_line(ValueError("y" * 50), limit=10)) == 10


@pytest.mark.parametrize("value,want", [(None, "cpu"), ("cpu", "cpu"), (" CUDA ", "cuda"), ("cuda:3", "cuda:3"),
                                        (torch.device("cpu"), "cpu"), (torch.device("cuda", 1), "cuda:1")])
def test_parse_device_accepts(value, want):
    assert parse_device(value) == want


BAD_DEVICES = ["gpu", "cuda0", "cudax", "cuda:-1", "cuda:", "cpu:0", "mps", "", "cuda:1:2"]


# ids: the root conftest reads a keyword "gpu" as the gpu marker, so a bare "gpu" id would skip the case
@pytest.mark.parametrize("value", BAD_DEVICES, ids=[f"bad{i}" for i in range(len(BAD_DEVICES))])
def test_parse_device_refuses_with_one_line(value):
    with pytest.raises(HsError, match=r"^bad device .*expected 'cpu', 'cuda' or 'cuda:N'$"):
        parse_device(value)


def test_is_cuda_and_torch_device_on_this_machine():
    assert is_cuda("cuda:0") and not is_cuda("cpu")
    assert torch_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(HsError, match="torch.cuda.is_available\\(\\) is False"):
            torch_device("cuda")


def test_precision_table_spellings():
    for alias in ("fp16", "float16", "HALF", "TYPE_FP16", "tensor(float16)", torch.float16, np.float16):
        assert precision(alias if not isinstance(alias, type) else np.dtype(alias).name) is FP16
    for alias in ("fp32", "float32", "FLOAT", "TYPE_FP32", "tensor(float)", torch.float32):
        assert precision(alias) is FP32
    assert FP16.np_dtype() == np.float16 and FP16.torch_dtype() is torch.float16 and FP16.itemsize == 2
    assert FP32.np_dtype().itemsize == FP32.itemsize and FP32.torch_dtype() is torch.float32
    assert PRECISION_NAMES == ("fp32", "fp16") and str(FP16) == "fp16"
    with pytest.raises(HsError, match=r"unknown precision 'bf16'; expected one of \('fp32', 'fp16'\)"):
        precision("bf16")
    with pytest.raises(HsError, match=r"--precision must be one of"):
        check_precision("float16", "--precision")  # flags take our names only


def test_model_source_validates_once(tmp_path):
    assert ModelSource(config="tiny").embedded
    assert ModelSource(device="CUDA:2").device == "cuda:2"
    ck, we = tmp_path / "a.pt", tmp_path / "b.pt"
    ck.write_bytes(b"x")
    we.write_bytes(b"x")
    assert not ModelSource(checkpoint=str(ck), w_encoder=str(we)).embedded
    cases = [({"config": "nope"}, "--config must be one of"),
             ({"checkpoint": str(ck)}, "--checkpoint and --w-encoder go together"),
             ({"export_dir": str(tmp_path), "config": "tiny"}, "--export-dir carries its own weights"),
             ({"export_dir": str(tmp_path), "executor": "torch"}, "--executor torch runs from a checkpoint"),
             ({"executor": "jax"}, "--executor must be one of"),
             ({"device": "gpu"}, "bad device 'gpu'"),
             ({"precision": "int8"}, "--precision must be one of"),
             ({"checkpoint": str(tmp_path / "missing.pt"), "w_encoder": str(we)}, "checkpoint not found"),
             ({"export_dir": str(tmp_path / "none")}, "export directory not found")]
    for kw, msg in cases:
        with pytest.raises(HsError, match=msg):
            ModelSource(**kw)


def test_model_source_options_parse_into_one_object():
    seen = {}

    @click.command()
    @model_source_options(export_dir=True, executor=True, device="auto")
    @click.option("--batch", type=int, default=1)
    def cmd(**kw):
        seen["src"] = ModelSource.from_options(kw)
        seen["rest"] = kw

    r = CliRunner().invoke(cmd, ["--config", "tiny", "--device", "cpu", "--executor", "onnxruntime", "--batch", "3"])
    assert r.exit_code == 0, r.output
    assert seen["src"] == ModelSource(config="tiny", device="cpu", executor="onnxruntime")
    assert seen["rest"] == {"batch": 3}
    r = CliRunner().invoke(cmd, ["--executor", "jax"])
    assert r.exit_code == 2 and "jax" in r.output
