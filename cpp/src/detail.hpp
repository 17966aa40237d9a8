// Internal helpers shared by the library's translation units (not installed).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "hs/inverter.hpp"

namespace hs::detail {

namespace py = pybind11;

// The pending Python exception as an hs::Error (GIL held): HsError -> Status::User with its message verbatim; any
// other exception -> Status::Python, "<Type>: <first line of its text>", prefixed by `context` when given.
Error from_python(const py::error_already_set &e, const std::string &context = "");

// CUDA build: throws hs::Error(User) unless `t.data` is CUDA memory on device `t.device`. Without CUDA support:
// throws hs::Error(Unsupported). `what` names the argument ("images", "out_images", "out_codes").
void check_device_pointer(const Tensor &t, const char *what);

}  // namespace hs::detail
