"""A small client for the served `hyperstyle` model (KServe v2 HTTP through tritonclient[http]).

    with InversionClient("127.0.0.1:8000") as c:
        c.check_ready()                  # (S,S,3), or ServerUnreachable before anything is sent
        out = c.invert(images)           # images uint8 [B,S,S,3] (or one [S,S,3])
        out.inversion                    # uint8 [B,size,size,3]
        out.codes                        # float32 [B,n_latent,style_dim]
        pending = c.invert_async(images) # several in flight at once (up to `concurrency`)
        pending.result()

    x, how = model_input("photo.jpg", S, Aligner(output_size=S))  # the photo as hs-serve infer sends it

The item shape S comes from the model's metadata (fetched once). Bad local input raises HsError before anything
is sent; an error answered by the server raises HsError with the server's message; no answer at all (refused,
timed out, unknown host, a 5xx, server or model not ready) raises ServerUnreachable, one line naming the URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from http.client import HTTPException

import numpy as np

from hyperstyle_trt.core.errors import HsError, one_line

MODEL_NAME = "hyperstyle"


def _tritonclient_http():
    try:
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException
    except ImportError:
        raise HsError("tritonclient is not installed: pip install 'hyperstyle-trt[serve]'") from None
    return httpclient, InferenceServerException


class ServerUnreachable(HsError):
    """The server at the URL gave no usable answer (connection refused, timeout, unknown host, an HTTP error status,
    server or model not ready): `cannot reach tritonserver at <url>: <reason>`."""


def _reason(e: BaseException) -> str:
    """One line for a transport error: the OS's words (`Connection refused`, `Name or service not known`,
    `timed out`) or the exception's first line, with its type."""
    text = getattr(e, "strerror", None) or one_line(e)
    return f"{text} ({type(e).__name__})" if text else type(e).__name__


def _host_port(url: str) -> str:
    """--url as tritonclient takes it: host:port (an `http://` prefix is dropped). HsError when it cannot be parsed,
    checked here because a failed InferenceServerClient constructor prints a traceback from its __del__."""
    from urllib.parse import urlsplit

    u = url.strip()
    if u.startswith("http://"):
        u = u[len("http://"):]
    hint = f"--url must be host:port of the server's HTTP endpoint (e.g. 127.0.0.1:8000), got {url!r}"
    if not u or "://" in u:
        raise HsError(hint)
    try:
        parts = urlsplit("http://" + u)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0..65535
    except ValueError as e:
        raise HsError(f"{hint}: {one_line(e)}") from None
    if not parts.hostname:
        raise HsError(hint)
    return u


@dataclass
class ServedInversion:
    """One answered request: inversion uint8 [B,size,size,3], codes float32 [B,n_latent,style_dim]."""

    inversion: np.ndarray
    codes: np.ndarray


class PendingInversion:
    """An in-flight request (`InversionClient.invert_async`); `result()` blocks for the answer."""

    def __init__(self, handle, exc_type, url: str):
        self._handle, self._exc, self._url = handle, exc_type, url

    def result(self, timeout: float | None = None) -> ServedInversion:
        try:
            res = self._handle.get_result(block=True, timeout=timeout)
        except self._exc as e:
            raise HsError(f"server: {e.message()}") from None
        except (OSError, HTTPException) as e:
            raise ServerUnreachable(f"cannot reach tritonserver at {self._url}: {_reason(e)}") from None
        return ServedInversion(res.as_numpy("inversion"), res.as_numpy("codes"))


class InversionClient:
    """Client for a served inversion model at `url` ("host:port", HTTP). `concurrency`: connections for async
    requests; `timeout`: seconds for each answer (and for connecting, unless `connect_timeout` says otherwise).
    The client sends no request before the first call; `check_ready()` is the cheap first one."""

    def __init__(self, url: str = "127.0.0.1:8000", model: str = MODEL_NAME, concurrency: int = 1,
                 timeout: float = 120.0, connect_timeout: float | None = None):
        http, self._exc = _tritonclient_http()
        self._http = http
        self.url = _host_port(url)
        self.model = model
        self.client = http.InferenceServerClient(self.url, concurrency=concurrency, network_timeout=timeout,
                                                 connection_timeout=timeout if connect_timeout is None
                                                 else connect_timeout)
        self._item: tuple[int, ...] | None = None

    def _unreachable(self, reason: str) -> ServerUnreachable:
        return ServerUnreachable(f"cannot reach tritonserver at {self.url}: {reason}")

    def _ask(self, fn, *args):
        """fn(*args) on the server; a transport error or an error status becomes ServerUnreachable (one line)."""
        try:
            return fn(*args)
        except self._exc as e:
            status = f"HTTP {e.status()}: " if e.status() else ""
            raise self._unreachable(f"{status}{one_line(e.message() or str(e), 200)}") from None
        except (OSError, HTTPException) as e:
            raise self._unreachable(_reason(e)) from None

    def check_ready(self) -> tuple[int, ...]:
        """Ask the server for its metadata, its readiness and the model's, then the model's item shape; returns
        [S,S,3]. ServerUnreachable (`cannot reach tritonserver at <url>: <reason>`) when any of them fails, so a
        caller can stop before it reads a single photo."""
        self._ask(self.client.get_server_metadata)
        if not self._ask(self.client.is_server_ready):
            raise self._unreachable("the server is not ready (GET /v2/health/ready did not answer 200: models "
                                    "still loading, or it is shutting down)")
        if not self._ask(self.client.is_model_ready, self.model):
            raise self._unreachable(f"model '{self.model}' is not ready (not in the server's repository, still "
                                    "loading, or it failed to load: see the server's log)")
        return self.item_shape

    @property
    def item_shape(self) -> tuple[int, ...]:
        """[S,S,3] as the server's model metadata declares it."""
        if self._item is None:
            meta = self._ask(self.client.get_model_metadata, self.model)
            inp = [i for i in meta.get("inputs", []) if i.get("name") == "image"]
            if len(inp) != 1 or len(inp[0].get("shape", [])) != 4:
                raise HsError(f"model '{self.model}' at {self.url} has no input 'image' [B,S,S,3] "
                              f"(inputs: {[i.get('name') for i in meta.get('inputs', [])]}): not a hyperstyle model")
            self._item = tuple(int(d) for d in inp[0]["shape"][1:])
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
        except (OSError, HTTPException) as e:
            raise self._unreachable(_reason(e)) from None
        return ServedInversion(res.as_numpy("inversion"), res.as_numpy("codes"))

    def invert_async(self, images) -> PendingInversion:
        inputs, outputs = self._inputs(images)
        return PendingInversion(self.client.async_infer(self.model, inputs, outputs=outputs), self._exc, self.url)

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


def model_input(path: str | os.PathLike, size: int, aligner=None) -> tuple[np.ndarray, str]:
    """One photo file as the served model's input: (uint8 [size,size,3], how it was made).

    The file is read by runtime.align.load_photo (EXIF orientation applied, any mode -> RGB), as hs-invert reads it.
    aligner: a runtime.align.Aligner built with output_size=size: the FFHQ crop of the best-scoring face, the same
    detection and warp hs-invert uses (how: "aligned, face 1 of N"); a photo without a face raises that Aligner's
    one-line HsError naming the file. aligner=None (--no-align): the photo must already be a square crop and is
    Lanczos-resized to size (hs-invert's --no-align resize; how: "resized from WxH"); a non-square photo raises
    HsError rather than being squashed."""
    from PIL import Image

    from hyperstyle_trt.runtime.align import align_face, load_photo

    name = str(path)
    img = load_photo(path)  # [H,W,3] uint8
    h, w = img.shape[:2]
    if aligner is None:
        if h != w:
            raise HsError(f"{name}: {w}x{h} is not square; --no-align sends crops that are already FFHQ-aligned "
                          f"(square), resized to {size}x{size}: drop --no-align to detect and align the face")
        if h == size:
            return img, "already the model's size"
        return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS)), f"resized from {w}x{h}"
    if aligner.output_size != size:
        raise HsError(f"the aligner makes {aligner.output_size}x{aligner.output_size} crops, the model takes "
                      f"{size}x{size}: build it with Aligner(output_size={size})")
    faces = aligner.detect(img, name)  # best first
    if not faces:
        aligner.align(img, name=name)  # raises the Aligner's own "no face found in <name>" line
    al = align_face(img, faces[0].landmarks, aligner.output_size, aligner.transform_size, aligner.enable_padding,
                    face=faces[0])
    return al.image, f"aligned, face 1 of {len(faces)}" if len(faces) > 1 else "aligned"
