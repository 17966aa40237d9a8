"""hs-bench's CLI on a CPU machine: help works, GPU-only sub-commands refuse with one line and exit non-zero."""

import pytest
import torch

from hyperstyle_trt.benchmarks.cli import main


def test_help_lists_kernels(capsys):
    assert main(["--help"]) == 0
    assert "kernels" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal; a GPU is present")
def test_kernels_refuses_without_cuda(capsys):
    assert main(["kernels"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "CUDA" in err and "\n" not in err


def test_unknown_command(capsys):
    assert main(["nope"]) != 0


def test_help_lists_codegen(capsys):
    assert main(["--help"]) == 0
    assert "codegen" in capsys.readouterr().out
