// hs::Inverter: a handle on hyperstyle_trt.runtime.embed.Embedded (the Python half: views of raw buffers -> hyperstyle_trt.runtime.Inverter).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <mutex>
#include <utility>

#include "detail.hpp"

namespace hs {

namespace py = pybind11;

namespace {

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

}  // namespace

struct Inverter::Impl {
    py::object obj;  // hyperstyle_trt.runtime.embed.Embedded; touched only with the GIL held
    Info info;
    std::mutex mu;   // serializes invert() on this Inverter; always taken BEFORE the GIL

    ~Impl() {
        // Never finalized by us; a host Python may be shutting down, then the reference is leaked on purpose.
        if (Py_IsInitialized() == 0 || finalizing()) {
            obj.release();
            return;
        }
        py::gil_scoped_acquire gil;
        obj = py::object();
    }
};

namespace {

py::object opt_str(const std::string &s) { return s.empty() ? py::object(py::none()) : py::object(py::str(s)); }

py::object view(const Tensor &t) {
    py::tuple shape(t.shape.size());
    for (size_t i = 0; i < t.shape.size(); ++i) shape[i] = py::int_(t.shape[i]);
    return py::make_tuple(py::int_(reinterpret_cast<std::uintptr_t>(t.data)), py::int_(static_cast<int>(t.dtype)),
                          shape, py::int_(t.device));
}

int get_int(const py::dict &d, const char *key) { return d[key].cast<int>(); }

}  // namespace

Inverter::Inverter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Inverter::Inverter(Inverter &&) noexcept = default;
Inverter &Inverter::operator=(Inverter &&) noexcept = default;
Inverter::~Inverter() = default;

Inverter Inverter::from_checkpoint(const std::string &checkpoint, const Options &options) {
    return create("", checkpoint, options);
}

Inverter Inverter::from_export(const std::string &export_dir, const Options &options) {
    if (export_dir.empty()) throw Error(Status::User, "from_export: the export directory is empty");
    return create(export_dir, "", options);
}

Inverter Inverter::create(const std::string &export_dir, const std::string &checkpoint, const Options &o) {
    initialize();
    auto impl = std::make_unique<Inverter::Impl>();
    {
        py::gil_scoped_acquire gil;
        py::object embedded;
        try {
            embedded = py::module_::import("hyperstyle_trt.runtime.embed").attr("Embedded");
        } catch (py::error_already_set &e) {
            std::string where;
            try {
                where = py::module_::import("sys").attr("executable").cast<std::string>();
            } catch (...) {
            }
            throw detail::from_python(e, "cannot import hyperstyle_trt.runtime.embed (Python " + where +
                                             "; set HS_PYTHON to the python of the environment with hyperstyle-trt)");
        }
        try {
            py::dict kw;
            kw["export_dir"] = opt_str(export_dir);
            kw["checkpoint"] = opt_str(checkpoint);
            kw["w_encoder"] = opt_str(o.w_encoder);
            kw["config"] = opt_str(o.config);
            kw["executor"] = opt_str(o.executor);
            kw["device"] = opt_str(o.device);
            kw["precision"] = opt_str(o.precision);
            kw["max_batch"] = o.max_batch;
            kw["n_iters"] = o.n_iters;
            impl->obj = embedded.attr("create")(**kw);
            py::dict d = impl->obj.attr("info")();
            impl->info.input_size = get_int(d, "input_size");
            impl->info.size = get_int(d, "size");
            impl->info.n_latent = get_int(d, "n_latent");
            impl->info.style_dim = get_int(d, "style_dim");
            impl->info.max_batch = get_int(d, "max_batch");
            impl->info.n_iters = get_int(d, "n_iters");
            impl->info.cuda_device = get_int(d, "cuda_device");
        } catch (py::error_already_set &e) {
            throw detail::from_python(e);
        }
    }
    return Inverter(std::move(impl));
}

Info Inverter::info() const {
    if (!impl_) throw Error(Status::User, "this hs::Inverter was moved from");
    return impl_->info;
}

void Inverter::invert(const Tensor &images, const Tensor &out_images, const Tensor *out_codes, int n_iters,
                      Stream stream) {
    if (!impl_) throw Error(Status::User, "this hs::Inverter was moved from");
    auto check_place = [&](const Tensor &t, const char *what) {
        if (t.device < 0) return;
        if (impl_->info.cuda_device < 0) {
            throw Error(Status::User, std::string(what) + ": a CUDA buffer (device " + std::to_string(t.device) +
                                          ") but this Inverter runs on the CPU; pass host buffers or create it with "
                                          "device \"cuda\"");
        }
        detail::check_device_pointer(t, what);
    };
    check_place(images, "images");
    check_place(out_images, "out_images");
    if (out_codes != nullptr) check_place(*out_codes, "out_codes");

    // Lock order: this Inverter's mutex, then the GIL. A caller that already holds the GIL (a Python host calling
    // through ctypes) gives it up while it waits, so a thread holding the mutex can take the GIL.
    std::unique_lock<std::mutex> lock(impl_->mu, std::defer_lock);
    if (PyGILState_Check() != 0) {
        PyThreadState *ts = PyEval_SaveThread();
        lock.lock();
        PyEval_RestoreThread(ts);
    } else {
        lock.lock();
    }
    py::gil_scoped_acquire gil;
    try {
        impl_->obj.attr("invert_into")(view(images), view(out_images),
                                       out_codes != nullptr ? view(*out_codes) : py::object(py::none()), n_iters,
                                       py::int_(reinterpret_cast<std::uintptr_t>(stream)));
    } catch (py::error_already_set &e) {
        throw detail::from_python(e);
    }
}

}  // namespace hs
