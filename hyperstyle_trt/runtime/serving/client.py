"""A small client for the served `hyperstyle` model (KServe v2 HTTP through tritonclient[http]).

    with InversionClient("127.0.0.1:8000") as c:
        out = c.invert(images)           # images uint8 [B,S,S,3] (or one [S,S,3])
        out.inversion                    # uint8 [B,size,size,3]
        out.codes                        # float32 [B,n_latent,style_dim]
        pending = c.invert_async(images) # several in flight at once (up to `concurrency`)
        pending.result()

The item shape S comes from the model's metadata (fetched once). Bad local input raises HsError before anything
is sent; an error answered by the server raises HsError with the server's message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperstyle_trt.core.errors import HsError

MODEL_NAME = "hyperstyle"


def _tritonclient_http():
    try:
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException
    except ImportError:
        raise HsError("tritonclient is not installed: pip install 'hyperstyle-trt[serve]'") from None
    return httpclient, InferenceServerException


@dataclass
class ServedInversion:
    """One answered request: inversion uint8 [B,size,size,3], codes float32 [B,n_latent,style_dim]."""

    inversion: np.ndarray
    codes: np.ndarray


class PendingInversion:
    """An in-flight request (`InversionClient.invert_async`); `result()` blocks for the answer."""

    def __init__(self, handle, exc_type):
        self._handle, self._exc = handle, exc_type

    def result(self, timeout: float | None = None) -> ServedInversion:
        try:
            res = self._handle.get_result(block=True, timeout=timeout)
        except self._exc as e:
            raise HsError(f"server: {e.message()}") from None
        return ServedInversion(res.as_numpy("inversion"), res.as_numpy("codes"))


class InversionClient:
    """Client for a served inversion model at `url` ("host:port", HTTP). `concurrency`: connections for async
    requests; `timeout`: seconds for connecting and for each answer."""

    def __init__(self, url: str = "127.0.0.1:8000", model: str = MODEL_NAME, concurrency: int = 1,
                 timeout: float = 120.0):
        http, self._exc = _tritonclient_http()
        self._http = http
        self.model = model
        self.client = http.InferenceServerClient(url, concurrency=concurrency, connection_timeout=timeout,
                                                 network_timeout=timeout)
        self._item: tuple[int, ...] | None = None

    @property
    def item_shape(self) -> tuple[int, ...]:
        """[S,S,3] as the server's model metadata declares it."""
        if self._item is None:
            try:
                meta = self.client.get_model_metadata(self.model)
            except self._exc as e:
                raise HsError(f"server: {e.message()}") from None
            (inp,) = [i for i in meta["inputs"] if i["name"] == "image"]
            self._item = tuple(int(d) for d in inp["shape"][1:])
        return self._item

    def _inputs(self, images):
        a = np.asarray(images)
        if a.dtype != np.uint8:
            raise HsError(f"images must be uint8 HWC, got {a.dtype}")
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or tuple(a.shape[1:]) != self.item_shape or a.shape[0] == 0:
            s = ",".join(map(str, self.item_shape))
            raise HsError(f"images must be uint8 [B,{s}] or [{s}] with B >= 1, got shape {list(np.shape(images))}")
        inp = self._http.InferInput("image", list(a.shape), "UINT8")
        inp.set_data_from_numpy(np.ascontiguousarray(a), binary_data=True)
        outs = [self._http.InferRequestedOutput(n, binary_data=True) for n in ("inversion", "codes")]
        return [inp], outs

    def invert(self, images) -> ServedInversion:
        """Send `images` (uint8 [B,S,S,3] or [S,S,3]) and wait for the inversions."""
        inputs, outputs = self._inputs(images)
        try:
            res = self.client.infer(self.model, inputs, outputs=outputs)
        except self._exc as e:
            raise HsError(f"server: {e.message()}") from None
        return ServedInversion(res.as_numpy("inversion"), res.as_numpy("codes"))

    def invert_async(self, images) -> PendingInversion:
        inputs, outputs = self._inputs(images)
        return PendingInversion(self.client.async_infer(self.model, inputs, outputs=outputs), self._exc)

    def statistics(self) -> dict:
        """The model's inference statistics (Triton's /v2/models/<model>/stats entry for it)."""
        stats = self.client.get_inference_statistics(self.model)
        return stats["model_stats"][0]

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "InversionClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
