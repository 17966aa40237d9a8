"""Triton python-backend model `hyperstyle` (copied into <repo>/hyperstyle/1/model.py by `hs-serve repo`).

Thin adapter:
- `initialize` builds one `runtime.Inverter` per model instance from the config's parameters, on
  cuda:<model_instance_device_id> for KIND_GPU, else on the CPU. On the CPU it runs one 1-image, 1-step
  inversion so that first-call costs are paid before the model reports ready (a CUDA Inverter warms up at
  construction).
- `execute` takes every request the dynamic batcher handed over, concatenates their `image` tensors (uint8
  [n_i,S,S,3]), runs the whole T-step loop once (`Inverter.invert`, which splits batches over its max batch),
  then splits `inversion` (uint8 [n_i,size,size,3]) and `codes` (fp32 [n_i,n_latent,style_dim]) back per
  request (runtime.serving.batching.RequestBatch, shared with the BLS model). A request that fails its checks, or
  a batch whose inversion raises, gets a TritonError response with a one-line message; the other requests are
  answered.

Tensors cross the backend boundary through DLPack only (`torch.from_dlpack(t.to_dlpack())`,
`pb_utils.Tensor.from_dlpack`): Triton 2.51's python backend is built against pybind11 2.10, whose numpy path
(`as_numpy()`, `pb_utils.Tensor(name, ndarray)`) silently corrupts data under numpy 2.
This file runs only inside Triton's stub (it imports triton_python_backend_utils).
"""

import json
import sys

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}
        root = params.get("project_root")
        if root and root not in sys.path:
            sys.path.insert(0, root)  # the stub's interpreter is isolated: PYTHONPATH does not reach it
        import torch

        from hyperstyle_trt.runtime.serving.batching import RequestBatch
        from hyperstyle_trt.runtime.serving.repository import inverter_from_parameters

        self.batch = RequestBatch  # the package's request gather / response scatter (imported once on sys.path)
        torch.set_num_threads(int(params.get("threads", "1")))
        gpu = args.get("model_instance_kind") == "GPU"
        device = f"cuda:{args.get('model_instance_device_id', '0')}" if gpu else "cpu"
        self.torch = torch
        self.inv, self.iters = inverter_from_parameters(params, device)
        dims = {i["name"]: [int(d) for d in i["dims"]] for i in cfg["input"]}
        self.item_shape = tuple(dims["image"])
        self.name = args.get("model_instance_name", "hyperstyle")
        if params.get("warmup", "yes") == "yes" and not gpu:  # first-call costs (lazy imports) before ready;
            # a CUDA Inverter warms up every batch size at construction already
            self.inv.invert(torch.zeros((1, *self.item_shape), dtype=torch.uint8), n_iters=1)
        pb_utils.Logger.log_info(f"{self.name}: Inverter on {device}, python {sys.version.split()[0]} in "
                                 f"{sys.prefix}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    def _check(self, x):
        """One request's image tensor -> error message or None (Triton checks dtype and dims before us; this
        guards the batch dimension and anything a hand-edited config lets through)."""
        if x.dtype != self.torch.uint8:
            return f"input 'image' must be UINT8, got {x.dtype}"
        if x.dim() != 4 or tuple(x.shape[1:]) != self.item_shape or x.shape[0] < 1:
            return f"input 'image' must be [n,{','.join(map(str, self.item_shape))}] with n >= 1, got {list(x.shape)}"
        return None

    def _invert(self, x):
        """x uint8 [N,S,S,3] -> (uint8 [N,size,size,3], fp32 [N,n_latent,style_dim]) as host torch tensors (the
        Inverter splits N > its max batch into chunks itself)."""
        res = self.inv.invert(x, n_iters=self.iters)
        return self.torch.from_numpy(res.to_uint8()), res.codes.detach().float().cpu().contiguous()

    def execute(self, requests):
        batch = self.batch(requests, pb_utils, check=self._check)
        if batch.images is None:
            return batch.responses
        try:
            img, codes = self._invert(batch.images)
        except Exception as e:  # noqa: BLE001 - every failure must become an error response, not a dead stub
            return batch.fail(f"{self.name}: inversion failed", e)
        return batch.answer(inversion=img, codes=codes)

    def finalize(self):
        self.inv = None
