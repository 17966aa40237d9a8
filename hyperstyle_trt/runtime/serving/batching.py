"""Request gather / response scatter for the python-backend models (model.py around runtime.Inverter, and the NGC
layout's bls_model.py): both merge every request the dynamic batcher hands to `execute` into one batch and answer
each request with its rows.

    batch = RequestBatch(requests, pb_utils, check=self._check)   # image tensors by DLPack; bad requests answered
    if batch.images is not None:                                   # uint8 [sum n_i,S,S,3], host torch tensor
        try:
            img, codes = run(batch.images)
        except Exception as e:
            return batch.fail("hyperstyle: inversion failed", e)   # every gathered request: one-line TritonError
        return batch.answer(inversion=img, codes=codes)            # rows [start:start+n_i] per request
    return batch.responses

Runs inside Triton's stub: the model files put the config's `project_root` on sys.path and import this module
the way they import the rest of the package. `pb` is the stub's triton_python_backend_utils module (passed in, so
nothing here imports it); torch is imported on first use.
"""

from __future__ import annotations

from typing import Callable

from hyperstyle_trt.core.errors import one_line


def error_response(pb, msg: str):
    """An InferenceResponse carrying only a TritonError with `msg`."""
    return pb.InferenceResponse(output_tensors=[], error=pb.TritonError(msg))


class RequestBatch:
    """The `image` inputs of `requests`, gathered. responses: one slot per request (filled for requests refused by
    `check(x) -> message | None` or lacking `image`); ok: indices of the gathered requests; xs: their tensors
    [n_i,...]; images: xs concatenated along the batch dimension (None when nothing was gathered)."""

    def __init__(self, requests, pb, check: Callable | None = None, name: str = "image"):
        import torch

        self.pb, self.responses, self.xs, self.ok = pb, [None] * len(requests), [], []
        for i, r in enumerate(requests):
            t = pb.get_input_tensor_by_name(r, name)
            if t is None:
                self.responses[i] = error_response(pb, f"request has no input '{name}'")
                continue
            x = torch.from_dlpack(t.to_dlpack())
            msg = check(x) if check is not None else None
            if msg:
                self.responses[i] = error_response(pb, msg)
                continue
            self.xs.append(x)
            self.ok.append(i)
        self.images = None if not self.xs else (torch.cat(self.xs) if len(self.xs) > 1 else self.xs[0])

    def answer(self, **outputs) -> list:
        """Each gathered request gets its rows of every output (torch tensors [sum n_i,...], by DLPack)."""
        start = 0
        for i, x in zip(self.ok, self.xs):
            n = x.shape[0]
            self.responses[i] = self.pb.InferenceResponse(output_tensors=[
                self.pb.Tensor.from_dlpack(k, v[start:start + n].contiguous()) for k, v in outputs.items()])
            start += n
        return self.responses

    def fail(self, prefix: str, exc: BaseException) -> list:
        """Every gathered request gets the error `<prefix>: <type>: <first line of exc>`."""
        msg = f"{prefix}: {type(exc).__name__}: {one_line(exc)}"
        for i in self.ok:
            self.responses[i] = error_response(self.pb, msg)
        return self.responses
