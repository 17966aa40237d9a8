// Shared pieces of the C++ tests: a CHECK macro, deterministic inputs, and the Python reference computed in-process
// by hyperstyle_trt.runtime.Inverter itself (same interpreter, same inputs) for bitwise comparison.
#pragma once

#include <pybind11/embed.h>
#include <pybind11/numpy.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "hs/inverter.hpp"

namespace py = pybind11;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            std::exit(1);                                                             \
        }                                                                             \
    } while (0)

namespace test {

constexpr int kBatch = 2;
constexpr int kS = 64;      // tiny config: hypernet input size
constexpr int kSize = 128;  // tiny config: generator size
constexpr uint8_t kSentinel = 0xAB;

// Deterministic, per-image distinct uint8 HWC images [n,S,S,3] (a smooth pattern plus LCG noise).
inline std::vector<uint8_t> make_u8(int n, uint32_t seed) {
    std::vector<uint8_t> v(static_cast<size_t>(n) * kS * kS * 3);
    uint32_t s = seed;
    for (int b = 0; b < n; ++b)
        for (int y = 0; y < kS; ++y)
            for (int x = 0; x < kS; ++x)
                for (int c = 0; c < 3; ++c) {
                    s = s * 1664525u + 1013904223u;
                    int base = (x * (c + 1) * 3 + y * 2 + b * 70) % 256;
                    v[((static_cast<size_t>(b) * kS + y) * kS + x) * 3 + c] =
                        static_cast<uint8_t>((base + static_cast<int>(s >> 27)) % 256);
                }
    return v;
}

// Deterministic float32 NCHW images [n,3,S,S] in [-1,1].
inline std::vector<float> make_f32(int n, uint32_t seed) {
    std::vector<float> v(static_cast<size_t>(n) * 3 * kS * kS);
    uint32_t s = seed;
    for (auto &f : v) {
        s = s * 1664525u + 1013904223u;
        f = static_cast<float>(s >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
    }
    return v;
}

struct Reference {
    std::vector<uint8_t> u8;     // res.to_uint8(): [B,size,size,3]
    std::vector<float> images;   // res.images: [B,3,size,size]
    std::vector<float> codes;    // res.codes: [B,n_latent,style_dim]
};

template <class T>
std::vector<T> to_vec(const py::handle &a) {
    auto arr = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!arr) throw std::runtime_error("reference: not an array");
    return std::vector<T>(arr.data(), arr.data() + arr.size());
}

// hyperstyle_trt.runtime.Inverter.from_checkpoint(None, config="tiny", executor="torch", device, "fp32", max_batch=8) inverting the
// same input (uint8 HWC numpy or float32 NCHW torch), T = n_iters. Needs hs::initialize() first.
inline Reference python_reference(const void *input, bool u8, int n, int n_iters, const std::string &device = "cpu") {
    py::gil_scoped_acquire gil;
    py::object np = py::module_::import("numpy");
    py::object torch = py::module_::import("torch");
    static py::object *ref = nullptr;  // one reference Inverter per process (per device)
    static std::string ref_device;
    if (ref == nullptr || ref_device != device) {
        py::object Inverter = py::module_::import("hyperstyle_trt.runtime").attr("Inverter");
        py::dict kw;
        kw["config"] = "tiny";
        kw["executor"] = "torch";
        kw["device"] = device;
        kw["precision"] = "fp32";
        kw["max_batch"] = 8;
        ref = new py::object(Inverter.attr("from_checkpoint")(py::none(), **kw));  // leaked: lives to exit
        ref_device = device;
    }
    py::object x;
    if (u8) {
        x = py::array_t<uint8_t>({n, kS, kS, 3}, static_cast<const uint8_t *>(input));  // copies
    } else {
        x = torch.attr("from_numpy")(py::array_t<float>({n, 3, kS, kS}, static_cast<const float *>(input)));
    }
    py::object res = ref->attr("invert")(x, py::arg("n_iters") = n_iters);
    Reference r;
    r.u8 = to_vec<uint8_t>(res.attr("to_uint8")());
    r.images = to_vec<float>(res.attr("images").attr("float")().attr("cpu")().attr("numpy")());
    r.codes = to_vec<float>(res.attr("codes").attr("float")().attr("cpu")().attr("numpy")());
    return r;
}

template <class T>
bool bitwise_equal(const std::vector<T> &a, const std::vector<T> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Largest |a-b| (for the failure message when bitwise equality fails).
template <class T>
double max_abs_diff(const std::vector<T> &a, const std::vector<T> &b) {
    double m = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        m = std::fmax(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    return m;
}

template <class T>
void check_equal(const char *what, const std::vector<T> &got, const std::vector<T> &want) {
    if (!bitwise_equal(got, want)) {
        std::fprintf(stderr, "%s: not bitwise equal to the Python Inverter (sizes %zu / %zu, max |diff| %g)\n", what,
                     got.size(), want.size(), max_abs_diff(got, want));
        std::exit(1);
    }
    std::printf("%s: bitwise equal to the Python Inverter (%zu values)\n", what, got.size());
}

inline bool one_line(const std::string &s) { return !s.empty() && s.find('\n') == std::string::npos; }

}  // namespace test
