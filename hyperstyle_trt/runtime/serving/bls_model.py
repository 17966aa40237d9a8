"""Triton python-backend BLS model `hyperstyle` of the NGC layout (copied by runtime.serving.ngc).

The refinement loop over three sub-models served by Triton itself (`tensorrt_plan` engines in the NGC container):

    codes = W(x); y, y_pool = G(codes, Δ=0); T times: Δ = H(x, y_pool, Δ) (H returns the accumulated Δ);
    y, y_pool = G(codes, Δ)

Input `image` uint8 [n,S,S,3] per request (mapped v/127.5 - 1 to [n,3,S,S] in the contract dtype), outputs
`inversion` uint8 [n,size,size,3] ((y+1)/2 clamped, x255, rounded, as runtime.InverterResult.to_uint8) and `codes`
fp32 [n,n_latent,style_dim]. The contract (sub-model names, tensor names, per-item shapes, dtype, fixed batches)
comes from the `contract` parameter (JSON) that runtime.serving.ngc writes. Needs only torch and Triton's
triton_python_backend_utils; tensors move by DLPack only. Each of the 2T+2 sub-model calls is a trip through
Triton's scheduler: slower than runtime.Inverter's single CUDA graph (docs/serving.md).
"""

import json

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import torch

        self.torch = torch
        cfg = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (cfg.get("parameters") or {}).items()}
        self.c = json.loads(params["contract"])
        self.iters = int(params.get("iters", "5"))
        self.max_batch = int(cfg.get("max_batch_size") or 1)
        self.dtype = {"float32": torch.float32, "float16": torch.float16}[self.c["dtype"]]
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
        img = (x.to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1).to(self.dtype).contiguous()  # [b,3,S,S]
        codes = self._call("w_encoder", ["codes"], keep, image=img)["codes"]
        d = {name: torch.zeros((b, *shape), dtype=self.dtype, device=self.device) for name, _, shape in self.deltas}
        g_out = ["image", "image_pooled"]
        y = self._call("generator", g_out, keep, codes=codes, **d)
        for _ in range(self.iters):
            acc = self._call("hypernet", [a for _, a, _ in self.deltas], keep, image=img,
                             recon_pooled=y["image_pooled"], **d)
            d = {name: acc[a] for name, a, _ in self.deltas}
            y = self._call("generator", g_out, keep, codes=codes, **d)
        out = (((y["image"].float() + 1) / 2).clamp(0, 1) * 255).round().to(torch.uint8)  # [b,3,size,size]
        return out.permute(0, 2, 3, 1).contiguous().cpu(), codes.float().contiguous().cpu()

    def execute(self, requests):
        torch = self.torch
        responses = [None] * len(requests)
        xs, ok = [], []
        for i, r in enumerate(requests):
            t = pb_utils.get_input_tensor_by_name(r, "image")
            if t is None:
                responses[i] = _error("request has no input 'image'")
                continue
            xs.append(torch.from_dlpack(t.to_dlpack()))
            ok.append(i)
        if not xs:
            return responses
        x = torch.cat(xs) if len(xs) > 1 else xs[0]
        try:
            parts = [self._invert(x[i:i + self.max_batch]) for i in range(0, x.shape[0], self.max_batch)]
        except Exception as e:  # noqa: BLE001 - every failure must become an error response
            for i in ok:
                responses[i] = _error(f"hyperstyle (BLS): {type(e).__name__}: {e}")
            return responses
        img = torch.cat([p[0] for p in parts])
        codes = torch.cat([p[1] for p in parts])
        start = 0
        for i, xi in zip(ok, xs):
            n = xi.shape[0]
            responses[i] = pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor.from_dlpack("inversion", img[start:start + n].contiguous()),
                pb_utils.Tensor.from_dlpack("codes", codes[start:start + n].contiguous())])
            start += n
        return responses


def _error(msg):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(msg))
