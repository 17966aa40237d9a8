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


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    from hyperstyle_trt.benchmarks import e2e

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(e2e, "run_bench", interrupted)
    assert main(["--config", "tiny", "--device", "cpu", "--out", str(tmp_path / "o")]) == 130
    assert _err_line(capsys) == "error: interrupted"


def test_ctrl_c_in_a_sub_command_is_exit_130(capsys, monkeypatch):
    from hyperstyle_trt.benchmarks import codegen

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(codegen, "run_codegen", interrupted)
    assert main(["codegen", "--delta-mode", "0", "1"]) == 130
    assert _err_line(capsys) == "error: interrupted"


def test_bad_device_is_one_line(capsys, tmp_path):
    """Device strings go through core.device: "cudax" is refused before anything runs (no prefix matching)."""
    assert main(["--device", "cudax", "--config", "tiny", "--out", str(tmp_path / "o")]) == 2
    assert _err_line(capsys) == "error: bad device 'cudax': expected 'cpu', 'cuda' or 'cuda:N'"
    assert not (tmp_path / "o").exists()


def test_sub_command_help(capsys):
    for name, flag in (("kernels", "--layers"), ("tune", "--budget-s"), ("codegen", "--arch"),
                       ("runtime", "--batches")):
        assert main([name, "--help"]) == 0
        assert flag in capsys.readouterr().out, name


def test_greedy_options_take_every_value():
    from hyperstyle_trt.benchmarks.options import spread

    g = ("--layers",)
    assert spread(["--layers", "a", "b", "--batch", "1", "c"], g) == ["--layers", "a", "--layers", "b", "--batch",
                                                                      "1", "c"]
    assert spread(["--layers=a", "b"], g) == ["--layers=a", "--layers", "b"]
    assert spread(["--layers", "a", "--", "b"], g) == ["--layers", "a", "--", "b"]
    assert spread(["--json", "x", "y"], g) == ["--json", "x", "y"]


def test_kernels_layers_take_several_values(monkeypatch):
    """`hs-bench kernels --layers conv1 to_rgbs.0` (argparse's nargs="+" before): both layers reach the bench."""
    from hyperstyle_trt.benchmarks import kernels

    seen = {}

    def fake(batch_sizes, layers, *a, **k):
        seen.update(batches=batch_sizes, layers=layers)
        return []
    monkeypatch.setattr(kernels, "run_kernel_bench", fake)
    monkeypatch.setattr(kernels, "print_table", lambda rows: None)
    assert main(["kernels", "--layers", "conv1", "to_rgbs.0", "--batch", "1", "--batch", "2"]) == 0
    assert seen == {"batches": (1, 2), "layers": ["conv1", "to_rgbs.0"]}


def test_bench_config_records_the_model_source():
    from hyperstyle_trt.benchmarks.bench_config import BenchConfig
    from hyperstyle_trt.core.source import ModelSource

    d = BenchConfig(batch=2, source=ModelSource(config="tiny", device="CPU", precision=None)).to_dict()
    assert d["config"] == "tiny" and d["device"] == "cpu" and d["batch"] == 2 and d["export_dir"] is None
    assert "source" not in d and isinstance(d["methods"], list)


def test_no_argparse_in_the_benchmarks():
    from pathlib import Path

    import hyperstyle_trt.benchmarks as pkg

    for p in Path(pkg.__file__).parent.glob("*.py"):
        assert "argparse" not in p.read_text(), p.name
