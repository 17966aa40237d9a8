# `make test` and `make demo` set everything up from a fresh clone (CPU-only is fine).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo golden clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# CPU build of torch (on local disk here); a plain `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[export,rtx,kernels,test]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

golden: setup
	$(PY) -m models.golden verify ../shared/reference/golden

# The main job on the embedded default weights: the reference inversion (T=5) of a generated sample, then
# `hs-export --fp16` (ONNX graphs + FP16 TensorRT engines; engines are skipped with a reason when no TensorRT exists).
demo: setup
	$(PY) -m models.demo --out demo_out
	$(VENV)/bin/hs-export --fp16 --out demo_out/export

clean:
	rm -rf $(VENV) demo_out hs_export
