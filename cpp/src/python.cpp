// The embedded interpreter: started once per process (or the host's reused), and Python exceptions -> hs::Error.
#include <pybind11/embed.h>

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "detail.hpp"

#ifndef HS_DEFAULT_PYTHON
#define HS_DEFAULT_PYTHON ""
#endif

namespace hs {

namespace py = pybind11;

namespace {

std::mutex g_init_mu;
bool g_ready = false;

// A host that dlopen()s this library with RTLD_LOCAL (Go, C#, Rust's libloading) hides libpython's symbols from the
// extension modules Python loads later (torch's _C.so would fail with "undefined symbol: PyExc_..."). Re-open the
// libpython this library is linked to with RTLD_GLOBAL (RTLD_NOLOAD: it is already loaded, nothing new is mapped).
void promote_libpython() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void *>(&Py_IsInitialized), &info) != 0 && info.dli_fname != nullptr) {
        void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        (void)h;  // stays open for the life of the process, on purpose
    }
}

std::string first_line(std::string s) {
    auto nl = s.find('\n');
    if (nl != std::string::npos) s.resize(nl);
    return s;
}

}  // namespace

void initialize() {
    std::lock_guard<std::mutex> lock(g_init_mu);
    if (g_ready) return;
    promote_libpython();
    if (Py_IsInitialized() == 0) {
        PyConfig config;
        PyConfig_InitPythonConfig(&config);
        config.parse_argv = 0;
        config.install_signal_handlers = 0;  // the host owns SIGINT & co.
        const char *env = std::getenv("HS_PYTHON");
        std::string exe = (env != nullptr && *env != '\0') ? env : HS_DEFAULT_PYTHON;
        if (!exe.empty()) {
            // program_name = the venv's python: Python finds pyvenv.cfg beside it and uses that venv's site-packages.
            PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, exe.c_str());
            if (PyStatus_Exception(st) != 0) {
                PyConfig_Clear(&config);
                throw Error(Status::Python, std::string("cannot set the Python executable to ") + exe);
            }
        }
        try {
            py::initialize_interpreter(&config, 0, nullptr, false);
        } catch (const std::exception &e) {
            throw Error(Status::Python, std::string("cannot start the embedded Python (") + exe + "): " + e.what());
        }
        // This thread holds the GIL after initialization: give it up so that any thread (this one included) takes it
        // with PyGILState_Ensure / py::gil_scoped_acquire only while it runs Python.
        PyEval_SaveThread();
    }
    g_ready = true;
}

namespace detail {

Error from_python(const py::error_already_set &e, const std::string &context) {
    std::string text;
    try {
        text = py::str(e.value()).cast<std::string>();
    } catch (...) {
        text = "(unprintable exception)";
    }
    bool user = false;
    try {
        py::object hs_error = py::module_::import("hyperstyle_trt.core.errors").attr("HsError");
        user = e.matches(hs_error);
    } catch (py::error_already_set &) {
        user = false;
    }
    if (user) return Error(Status::User, first_line(text));
    std::string type;
    try {
        type = py::handle(e.type()).attr("__name__").cast<std::string>();
    } catch (...) {
        type = "Exception";
    }
    std::string msg = type + (text.empty() ? "" : ": " + first_line(text));
    return Error(Status::Python, context.empty() ? msg : context + ": " + msg);
}

}  // namespace detail
}  // namespace hs
