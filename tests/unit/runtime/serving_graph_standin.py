"""Test stand-in for one `tensorrt_plan` sub-model of the NGC layout: a python-backend model that runs the graph
its name says (hs_w_encoder / hs_hypernet / hs_generator) with the torch executor of the tiny config, with the
same tensor names, shapes and dtypes as the engine. Lets the CPU test drive runtime/serving/bls_model.py on the
real server. Runs only inside Triton's stub."""

import json
import sys

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}
        sys.path.insert(0, params["project_root"])
        import torch

        from hyperstyle_trt.models.checkpoint import build_model
        from hyperstyle_trt.runtime.executors.torch_executor import TorchExecutor

        torch.set_num_threads(1)
        self.torch = torch
        self.graph = args["model_name"][len("hs_"):]
        self.ex = TorchExecutor.from_model(build_model(params["config"], quiet=True), "cpu", "fp32")
        self.ex.prepare(int(params.get("max_batch", "8")))
        self.io = self.ex.io(self.graph)

    def execute(self, requests):
        torch = self.torch
        out = []
        for r in requests:
            ins = {t.name: torch.from_dlpack(pb_utils.get_input_tensor_by_name(r, t.name).to_dlpack()).contiguous()
                   for t in self.io.inputs}
            b = next(iter(ins.values())).shape[0]
            outs = {t.name: torch.zeros(t.concrete(b), dtype=torch.float32) for t in self.io.outputs}
            with torch.no_grad():
                self.ex.run(self.graph, {**ins, **outs}, b, None)
            out.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor.from_dlpack(k, v.contiguous()) for k, v in outs.items()]))
        return out
