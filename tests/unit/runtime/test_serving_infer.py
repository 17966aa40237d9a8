"""`hs-serve infer` and the client's readiness check: photos are FFHQ-aligned with the Aligner hs-invert uses, at the
served model's input size, before they are sent; a photo without a face (or, with --no-align, not square) is one line
naming it while the others are still sent; no server at the URL is one line naming it, before any photo is read.

The server is the real tritonserver 2.51.0 (`make triton`, as test_serving.py) serving the tiny config (input 64x64).
The photos are real ones shipped in wheels: scikit-image's astronaut (512x512 PNG) and matplotlib's grace_hopper
(512x600 JPEG). A request that runs alone on the server is bitwise equal to `Inverter.invert` in this process
(test_serving.py), so the served outputs are compared for equality with the in-process Inverter on the same crop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.serving.repository import RepoSpec, write_repository
from hyperstyle_trt.runtime.serving.server import PROJECT_ROOT, TritonServer, free_port

pytest.importorskip("tritonclient.http", reason="tritonclient missing: pip install -e .[serve]")
pytest.importorskip("dlib", reason="face alignment needs dlib: pip install -e .[align]")

from tests.unit.runtime.test_serving import ITERS, S, _install, _tiny, make_reference  # noqa: E402

MAX_BATCH = 2


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos with one face each (astronaut.png 512x512, grace_hopper.jpg 512x600) and a 50x50 noise PNG."""
    from PIL import Image

    skdata = pytest.importorskip("skimage.data")
    cbook = pytest.importorskip("matplotlib.cbook")
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).save(d / "astronaut.png")
    (d / "grace_hopper.jpg").write_bytes(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(d / "noise.png")
    return {p.stem: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def aligner():
    from hyperstyle_trt.runtime.align import Aligner

    return Aligner(output_size=S)


@pytest.fixture(scope="module")
def reference():
    return make_reference(MAX_BATCH)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    install = _install()
    repo = tmp_path_factory.mktemp("serving_infer") / "repo"
    write_repository(repo, RepoSpec(_tiny(), max_batch=MAX_BATCH, iters=ITERS, threads=1, queue_delay_us=0))
    s = TritonServer(repo, install=install, stub_env=False)
    s.start()
    try:
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


def _infer(capsys, *args: str) -> tuple[int, list[str], list[str]]:
    """hs-serve infer in this process -> (exit code, stdout lines, stderr lines)."""
    from hyperstyle_trt.cli.serve import main

    capsys.readouterr()
    rc = main(["infer", *args])
    cap = capsys.readouterr()
    return rc, cap.out.strip().splitlines(), cap.err.strip().splitlines()


def test_infer_sends_the_aligned_crop_and_writes_what_the_inverter_gives(server, photos, aligner, reference,
                                                                           tmp_path, capsys):
    from PIL import Image

    from hyperstyle_trt.runtime.align import load_photo
    from hyperstyle_trt.runtime.serving.client import model_input

    out = tmp_path / "out"
    names = ("astronaut", "grace_hopper")
    rc, lines, err = _infer(capsys, *(str(photos[n]) for n in names), "--url", server.http_url, "--out", str(out))
    assert rc == 0 and err == [], err
    assert [ln.split(" -> ")[0] for ln in lines] == [str(photos[n]) for n in names]
    assert lines[0].endswith("(aligned, face 1 of 2)") and lines[1].endswith("(aligned)")  # the best face is sent
    for n in names:
        crop = aligner.align(load_photo(photos[n]), name=n)[0].image  # the best face, as hs-invert aligns it
        assert crop.shape == (S, S, 3) and crop.dtype == np.uint8
        np.testing.assert_array_equal(model_input(photos[n], S, aligner)[0], crop)
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{n}_aligned.png")), crop)  # what was sent
        ref_img, ref_codes = reference(crop[None].copy())
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{n}.png")), ref_img[0])
        np.testing.assert_array_equal(np.load(out / f"{n}_codes.npy"), ref_codes[0])
        squashed = np.asarray(Image.open(photos[n]).convert("RGB").resize((S, S), Image.BILINEAR))
        assert not np.array_equal(crop, squashed)  # the old path's input is not what is sent now


def test_a_photo_without_a_face_fails_in_one_line_and_the_others_are_sent(server, photos, tmp_path, capsys):
    out = tmp_path / "out"
    rc, lines, err = _infer(capsys, str(photos["noise"]), str(photos["astronaut"]), "--url", server.http_url,
                            "--out", str(out))
    assert rc == 1
    assert len(err) == 1 and err[0].startswith(f"error: no face found in {photos['noise']} (50x50"), err
    assert (out / "astronaut.png").is_file() and (out / "astronaut_codes.npy").is_file()
    assert not list(out.glob("noise*"))
    assert lines[0].startswith(f"{photos['astronaut']} -> ") and lines[-1] == "1 of 2 photo(s) inverted, 1 failed"


def test_no_align_refuses_a_non_square_photo_in_one_line(server, photos, tmp_path, capsys):
    from PIL import Image

    crop = np.random.default_rng(1).integers(0, 256, (S, S, 3), dtype=np.uint8)
    Image.fromarray(crop).save(tmp_path / "crop.png")
    out = tmp_path / "out"
    rc, lines, err = _infer(capsys, str(photos["grace_hopper"]), str(tmp_path / "crop.png"), "--no-align",
                            "--url", server.http_url, "--out", str(out))
    assert rc == 1
    assert len(err) == 1 and err[0].startswith(f"error: {photos['grace_hopper']}: 512x600 is not square"), err
    assert "drop --no-align" in err[0]
    assert not list(out.glob("grace_hopper*"))
    assert (out / "crop.png").is_file() and not (out / "crop_aligned.png").exists()  # sent as it is, 64x64


def test_closed_port_is_one_line_naming_the_url_before_any_photo(photos, tmp_path, capsys):
    """Nothing listens on the port: exit 2, exactly one stderr line, fast, nothing written, no photo read (a missing
    file among them is not reported: the server is checked first). In a child process too, where a traceback or a
    client's __del__ noise would reach stderr."""
    port = free_port()
    url = f"127.0.0.1:{port}"
    args = [str(photos["astronaut"]), str(tmp_path / "missing.png"), "--url", url, "--out", str(tmp_path / "out")]
    t0 = time.monotonic()
    rc, lines, err = _infer(capsys, *args)
    assert time.monotonic() - t0 < 5
    assert rc == 2 and lines == []
    assert err == [f"error: cannot reach tritonserver at {url}: Connection refused (ConnectionRefusedError)"], err
    assert not (tmp_path / "out").exists()
    p = subprocess.run([sys.executable, "-m", "hyperstyle_trt.cli.serve", "infer", *args], cwd=PROJECT_ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == err, p.stderr


class _Answer500(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps({"error": "internal failure\nsecond line"}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_check_ready_names_the_url_for_every_failure(capsys):
    from hyperstyle_trt.runtime.serving.client import InversionClient, ServerUnreachable

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        with InversionClient(url, timeout=10) as c:
            with pytest.raises(ServerUnreachable) as e:
                c.check_ready()
        assert str(e.value) == f"cannot reach tritonserver at {url}: HTTP 500: internal failure"
        rc, lines, err = _infer(capsys, "face.png", "--url", f"http://{url}")
        assert rc == 2 and err == [f"error: cannot reach tritonserver at {url}: HTTP 500: internal failure"]
    finally:
        httpd.shutdown()
        httpd.server_close()
    with InversionClient("no-such-host.invalid:8000", timeout=10) as c:
        with pytest.raises(ServerUnreachable, match=r"^cannot reach tritonserver at no-such-host\.invalid:8000: "):
            c.check_ready()
    for bad in ("https://127.0.0.1:8000", "127.0.0.1:port", "127.0.0.1:70000", ":8000", ""):
        with pytest.raises(HsError, match="--url must be host:port"):
            InversionClient(bad)
    rc, lines, err = _infer(capsys, "face.png", "--url", "127.0.0.1:port")
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --url must be host:port"), err


def test_check_ready_on_the_server(server):
    from hyperstyle_trt.runtime.serving.client import InversionClient, ServerUnreachable

    with InversionClient(server.http_url) as c:
        assert c.check_ready() == (S, S, 3)
    with InversionClient(server.http_url, model="no_such_model") as c:
        with pytest.raises(ServerUnreachable, match=r"model 'no_such_model' is not ready"):
            c.check_ready()


def test_model_input_without_a_server(photos, aligner, tmp_path):
    from PIL import Image

    from hyperstyle_trt.runtime.align import Aligner
    from hyperstyle_trt.runtime.serving.client import model_input

    big = np.random.default_rng(2).integers(0, 256, (2 * S, 2 * S, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    x, how = model_input(tmp_path / "big.png", S)  # --no-align: a square crop, resized as hs-invert --no-align
    np.testing.assert_array_equal(x, np.asarray(Image.fromarray(big).resize((S, S), Image.Resampling.LANCZOS)))
    assert how == f"resized from {2 * S}x{2 * S}"
    with pytest.raises(HsError, match=r"the aligner makes 128x128 crops, the model takes 64x64"):
        model_input(photos["astronaut"], S, Aligner(output_size=2 * S))
    with pytest.raises(HsError, match=r"no face found in .*noise\.png \(50x50"):
        model_input(photos["noise"], S, aligner)
    with pytest.raises(HsError, match=r"cannot read .*missing\.png|photo not found: .*missing\.png"):
        model_input(tmp_path / "missing.png", S, aligner)
    assert model_input(photos["astronaut"], S, aligner)[1] == "aligned, face 1 of 2"  # the face and its mission patch
    assert model_input(photos["grace_hopper"], S, aligner)[1] == "aligned"
