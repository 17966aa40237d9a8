"""Triton python-backend BLS model `hyperstyle` of the NGC layout (copied by runtime.serving.ngc).

The refinement loop over three sub-models served by Triton itself (`tensorrt_plan` engines in the NGC container):

    codes = W(x); y, y_pool = G(codes, Δ=0); T times: Δ = H(x, y_pool, Δ) (H returns the accumulated Δ);
    y, y_pool = G(codes, Δ)

Input `image` uint8 [n,S,S,3] per request (models.images.uint8_to_unit: [n,3,S,S] in [-1,1], cast to the contract
dtype), outputs `inversion` uint8 [n,size,size,3] (models.images.unit_to_uint8, as runtime.InverterResult.to_uint8)
and `codes` fp32 [n,n_latent,style_dim]. The contract (sub-model names, tensor names, per-item shapes, dtype, fixed
batches) comes from the `contract` parameter (JSON) that runtime.serving.ngc writes. Needs torch, Triton's
triton_python_backend_utils and this package (importable in the stub's environment, or found through the
`project_root` parameter as model.py does); requests are gathered and answered by runtime.serving.batching, tensors
move by DLPack only. Each of the 2T+2 sub-model calls is a trip through Triton's scheduler: slower than
runtime.Inverter's single CUDA graph (docs/serving.md).
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

        from hyperstyle_trt.core.precision import precision
        from hyperstyle_trt.models.images import uint8_to_unit, unit_to_uint8
        from hyperstyle_trt.runtime.serving.batching import RequestBatch

        self.torch, self.batch = torch, RequestBatch
        self.to_unit, self.to_uint8 = uint8_to_unit, unit_to_uint8
        self.c = json.loads(params["contract"])
        self.iters = int(params.get("iters", "5"))
        self.max_batch = int(cfg.get("max_batch_size") or 1)
        self.dtype = precision(self.c["dtype"]).torch_dtype()
        gpu = args.get("model_instance_kind") == "GPU"
        self.device = torch.device(f"cuda:{args.get('model_instance_device_id', '0')}" if gpu else "cpu")
        self.deltas = [(d["input"], d["acc"], tuple(d["shape"])) for d in self.c["deltas"]]

    def _call(self, graph, outputs, keep, **inputs):
        """Run sub-model `graph` on `inputs` (torch tensors [b,...]); returns {output: tensor}. A fixed-batch
        sub-model gets zero-padded pieces of its batch. `keep` holds the responses (their tensors' memory)."""
        torch = self.torch
        spec = self.c["graphs"][graph]
        b = next(iter(inputs.values())).shape[0]
        fixed = spec.get("fixed_batch")
        pieces = [(0, b)] if not fixed else [(i, min(i + fixed, b)) for i in range(0, b, fixed)]
        got = {o: [] for o in outputs}
        for i, j in pieces:
            feed = []
            for k, v in inputs.items():
                v = v[i:j]
                if fixed and j - i < fixed:
                    v = torch.cat([v, v.new_zeros((fixed - (j - i), *v.shape[1:]))])
                feed.append(pb_utils.Tensor.from_dlpack(k, v.contiguous()))
            req = pb_utils.InferenceRequest(model_name=spec["model"], requested_output_names=list(outputs),
                                            inputs=feed)
            resp = req.exec()
            if resp.has_error():
                raise RuntimeError(f"{spec['model']}: {resp.error().message()}")
            keep.append(resp)
            for o in outputs:
                t = torch.from_dlpack(pb_utils.get_output_tensor_by_name(resp, o).to_dlpack())
                got[o].append(t[: j - i])
        return {o: (ts[0] if len(ts) == 1 else torch.cat(ts)).to(self.device) for o, ts in got.items()}

    def _invert(self, x):
        """x uint8 [b,S,S,3] (b <= max_batch) -> (uint8 [b,size,size,3], fp32 [b,n_latent,style_dim])."""
        torch = self.torch
        keep = []
        b = x.shape[0]
        img = self.to_unit(x.to(self.device)).to(self.dtype).contiguous()  # [b,3,S,S]
        codes = self._call("w_encoder", ["codes"], keep, image=img)["codes"]
        d = {name: torch.zeros((b, *shape), dtype=self.dtype, device=self.device) for name, _, shape in self.deltas}
        g_out = ["image", "image_pooled"]
        y = self._call("generator", g_out, keep, codes=codes, **d)
        for _ in range(self.iters):
            acc = self._call("hypernet", [a for _, a, _ in self.deltas], keep, image=img,
                             recon_pooled=y["image_pooled"], **d)
            d = {name: acc[a] for name, a, _ in self.deltas}
            y = self._call("generator", g_out, keep, codes=codes, **d)
        out = self.to_uint8(y["image"])  # [b,size,size,3]
        return out.contiguous().cpu(), codes.float().contiguous().cpu()

    def execute(self, requests):
        torch = self.torch
        batch = self.batch(requests, pb_utils)
        if batch.images is None:
            return batch.responses
        x = batch.images
        try:
            parts = [self._invert(x[i:i + self.max_batch]) for i in range(0, x.shape[0], self.max_batch)]
        except Exception as e:  # noqa: BLE001 - every failure must become an error response
            return batch.fail("hyperstyle (BLS)", e)
        return batch.answer(inversion=torch.cat([p[0] for p in parts]), codes=torch.cat([p[1] for p in parts]))
