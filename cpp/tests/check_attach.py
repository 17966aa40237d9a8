"""CTest: the C ABI loaded into a running Python process (the "attach" path: the library finds an interpreter already
initialized and uses it instead of starting one), called through ctypes both with the GIL released during the call
(ctypes.CDLL) and held (ctypes.PyDLL), from two Python threads at once; outputs compared BITWISE with
runtime.Inverter in the same process, and an HsError's message arriving verbatim as hs_last_error().

    python check_attach.py <path to libhs_inverter.so>
"""

from __future__ import annotations

import ctypes
import sys
import threading

import numpy as np

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime import Inverter

HS_MAX_DIMS = 8
T = 1


class HsTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("ndim", ctypes.c_int32),
                ("shape", ctypes.c_int64 * HS_MAX_DIMS), ("device", ctypes.c_int32)]


class HsOptions(ctypes.Structure):
    _fields_ = [(n, ctypes.c_char_p) for n in ("export_dir", "checkpoint", "w_encoder", "config", "executor",
                                                "device", "precision")] + \
               [("max_batch", ctypes.c_int32), ("n_iters", ctypes.c_int32)]


def tensor(a: np.ndarray) -> HsTensor:
    t = HsTensor(a.ctypes.data, 0 if a.dtype == np.uint8 else 1, a.ndim)
    for i, s in enumerate(a.shape):
        t.shape[i] = s
    t.device = -1
    return t


def bind(lib):
    lib.hs_inverter_create.argtypes = [ctypes.POINTER(HsOptions), ctypes.POINTER(ctypes.c_void_p)]
    lib.hs_inverter_invert.argtypes = [ctypes.c_void_p, ctypes.POINTER(HsTensor), ctypes.POINTER(HsTensor),
                                       ctypes.POINTER(HsTensor), ctypes.c_int32, ctypes.c_void_p]
    lib.hs_inverter_destroy.argtypes = [ctypes.c_void_p]
    lib.hs_last_error.restype = ctypes.c_char_p
    return lib


def create(lib, config: bytes):
    o = HsOptions()
    lib.hs_options_init(ctypes.byref(o))
    o.config, o.n_iters = config, T
    h = ctypes.c_void_p()
    st = lib.hs_inverter_create(ctypes.byref(o), ctypes.byref(h))
    return st, h


def main() -> int:
    path = sys.argv[1]
    rng = np.random.default_rng(1)
    xs = [rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8) for _ in range(2)]
    ref = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32")
    want = [ref.invert(x, n_iters=T).to_uint8() for x in xs]
    failures = []
    for kind, loader in (("CDLL (GIL released in the call)", ctypes.CDLL),
                         ("PyDLL (GIL held in the call)", ctypes.PyDLL)):
        lib = bind(loader(path))
        st, h = create(lib, b"tiny")
        if st != 0:
            print(f"FAIL {kind}: create -> {st} {lib.hs_last_error().decode()}")
            return 1
        outs = [np.zeros((2, 128, 128, 3), np.uint8) for _ in xs]
        status = [None, None]

        def work(i, lib=lib, h=h, outs=outs, status=status):
            status[i] = lib.hs_inverter_invert(h, ctypes.byref(tensor(xs[i])), ctypes.byref(tensor(outs[i])), None,
                                               0, None)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        if any(t.is_alive() for t in threads):
            print(f"FAIL {kind}: a call did not return (deadlock?)")
            return 1
        for i in range(2):
            ok = status[i] == 0 and np.array_equal(outs[i], want[i])
            print(f"{kind}: thread {i}: status {status[i]}, bitwise equal to the Python Inverter: {ok}")
            if not ok:
                failures.append(f"{kind} thread {i}")
        try:
            from hyperstyle_trt.core.config import get_config
            get_config("nope")
        except HsError as e:
            expected = str(e)
        st, bad = create(lib, b"nope")
        msg = lib.hs_last_error().decode()
        print(f"{kind}: bad config -> status {st}: {msg}")
        if st != 1 or msg != expected or bad.value:
            failures.append(f"{kind} HsError message")
        lib.hs_inverter_destroy(h)
    if failures:
        print("FAIL:", ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
