// CTest cases for hs::Inverter and the C ABI on the tiny config (torch executor, CPU, fp32).
//   test_inverter <case>    cases: see main()
// Outputs are compared BITWISE with hyperstyle_trt.runtime.Inverter run in the same process on the same inputs.
#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "common.hpp"
#include "hs/c_api.h"

using namespace test;

namespace {

constexpr int kT = 2;  // the handles' default T (kept small: the CI machine is shared)

hs::Options tiny_options() {
    hs::Options o;
    o.config = "tiny";
    o.executor = "torch";
    o.device = "cpu";
    o.precision = "fp32";
    o.max_batch = 8;
    o.n_iters = kT;
    return o;
}

struct Outputs {
    std::vector<uint8_t> u8 = std::vector<uint8_t>(size_t(kBatch) * kSize * kSize * 3, kSentinel);
    std::vector<float> images = std::vector<float>(size_t(kBatch) * 3 * kSize * kSize, 7.0f);
    std::vector<float> codes;
};

int cpp_matches_python() {
    hs::Inverter inv = hs::Inverter::from_checkpoint("", tiny_options());
    hs::Info info = inv.info();
    CHECK(info.input_size == kS && info.size == kSize && info.max_batch == 8 && info.n_iters == kT);
    CHECK(info.cuda_device == -1);
    std::printf("info: input %d, size %d, codes [%d,%d]\n", info.input_size, info.size, info.n_latent, info.style_dim);

    // uint8 HWC in -> uint8 HWC out + codes, the handle's default T.
    std::vector<uint8_t> x8 = make_u8(kBatch, 1);
    Outputs o;
    o.codes.assign(size_t(kBatch) * info.n_latent * info.style_dim, 7.0f);
    hs::Tensor codes = hs::Tensor::host(o.codes.data(), hs::DType::Float32, {kBatch, info.n_latent, info.style_dim});
    inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
               hs::Tensor::host(o.u8.data(), hs::DType::UInt8, {kBatch, kSize, kSize, 3}), &codes);
    Reference r8 = python_reference(x8.data(), true, kBatch, kT);
    check_equal("uint8 in -> uint8 images", o.u8, r8.u8);
    check_equal("uint8 in -> codes", o.codes, r8.codes);
    // The two images of the batch were inverted as two different images.
    size_t half = o.u8.size() / 2;
    CHECK(std::memcmp(o.u8.data(), o.u8.data() + half, half) != 0);

    // float32 NCHW in -> float32 NCHW out, explicit T = 1.
    std::vector<float> xf = make_f32(kBatch, 2);
    inv.invert(hs::Tensor::host(xf.data(), hs::DType::Float32, {kBatch, 3, kS, kS}),
               hs::Tensor::host(o.images.data(), hs::DType::Float32, {kBatch, 3, kSize, kSize}), nullptr, 1);
    Reference rf = python_reference(xf.data(), false, kBatch, 1);
    check_equal("float in -> float images (T=1)", o.images, rf.images);
    return 0;
}

hs_tensor ctensor(void *p, int32_t dtype, std::initializer_list<int64_t> shape, int32_t device = HS_HOST) {
    hs_tensor t{};
    t.data = p;
    t.dtype = dtype;
    t.ndim = static_cast<int32_t>(shape.size());
    int i = 0;
    for (int64_t s : shape) t.shape[i++] = s;
    t.device = device;
    return t;
}

hs_inverter *c_create() {
    hs_options o;
    hs_options_init(&o);
    o.config = "tiny";
    o.executor = "torch";
    o.device = "cpu";
    o.n_iters = kT;
    hs_inverter *inv = nullptr;
    hs_status st = hs_inverter_create(&o, &inv);
    if (st != HS_OK) std::fprintf(stderr, "hs_inverter_create: %d %s\n", st, hs_last_error());
    CHECK(st == HS_OK && inv != nullptr);
    return inv;
}

int c_api_matches_python() {
    hs_inverter *inv = c_create();
    hs_info info{};
    CHECK(hs_inverter_info(inv, &info) == HS_OK);
    CHECK(info.input_size == kS && info.size == kSize && info.n_iters == kT);

    std::vector<uint8_t> x8 = make_u8(kBatch, 3);
    Outputs o;
    o.codes.assign(size_t(kBatch) * info.n_latent * info.style_dim, 7.0f);
    hs_tensor in = ctensor(x8.data(), HS_UINT8, {kBatch, kS, kS, 3});
    hs_tensor out = ctensor(o.u8.data(), HS_UINT8, {kBatch, kSize, kSize, 3});
    hs_tensor codes = ctensor(o.codes.data(), HS_FLOAT32, {kBatch, info.n_latent, info.style_dim});
    hs_status st = hs_inverter_invert(inv, &in, &out, &codes, 0, nullptr);
    if (st != HS_OK) std::fprintf(stderr, "invert: %s\n", hs_last_error());
    CHECK(st == HS_OK);
    Reference r8 = python_reference(x8.data(), true, kBatch, kT);
    check_equal("C ABI: uint8 in -> uint8 images", o.u8, r8.u8);
    check_equal("C ABI: uint8 in -> codes", o.codes, r8.codes);

    std::vector<float> xf = make_f32(kBatch, 4);
    hs_tensor inf = ctensor(xf.data(), HS_FLOAT32, {kBatch, 3, kS, kS});
    hs_tensor outf = ctensor(o.images.data(), HS_FLOAT32, {kBatch, 3, kSize, kSize});
    CHECK(hs_inverter_invert(inv, &inf, &outf, nullptr, 1, nullptr) == HS_OK);
    Reference rf = python_reference(xf.data(), false, kBatch, 1);
    check_equal("C ABI: float in -> float images (T=1)", o.images, rf.images);
    hs_inverter_destroy(inv);
    return 0;
}

// Runs f, which must throw hs::Error with `status` and a one-line message containing every `parts` entry.
void expect_error(const char *what, hs::Status status, const std::function<void()> &f,
                  std::initializer_list<const char *> parts) {
    try {
        f();
    } catch (const hs::Error &e) {
        std::string m = e.what();
        std::printf("%s -> [%d] %s\n", what, static_cast<int>(e.status()), m.c_str());
        CHECK(e.status() == status);
        CHECK(one_line(m));
        for (const char *p : parts) {
            if (m.find(p) == std::string::npos) {
                std::fprintf(stderr, "%s: message lacks \"%s\"\n", what, p);
                std::exit(1);
            }
        }
        return;
    }
    std::fprintf(stderr, "%s: no hs::Error thrown\n", what);
    std::exit(1);
}

bool untouched(const Outputs &o) {
    for (uint8_t v : o.u8)
        if (v != kSentinel) return false;
    return true;
}

int invalid_inputs_cpp() {
    hs::Inverter inv = hs::Inverter::from_checkpoint("", tiny_options());
    std::vector<uint8_t> x8 = make_u8(kBatch, 5);
    Outputs o;
    auto out = hs::Tensor::host(o.u8.data(), hs::DType::UInt8, {kBatch, kSize, kSize, 3});
    std::vector<uint8_t> small(size_t(kBatch) * 60 * 60 * 3, 1);
    expect_error("wrong size", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(small.data(), hs::DType::UInt8, {kBatch, 60, 60, 3}), out);
    }, {"images", "[2, 60, 60, 3]", "64"});
    expect_error("null pointer", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(static_cast<void *>(nullptr), hs::DType::UInt8, {kBatch, kS, kS, 3}), out);
    }, {"images", "null"});
    expect_error("batch 0", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {0, kS, kS, 3}), out);
    }, {"batch 0"});
    expect_error("HWC float", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::Float32, {kBatch, kS, kS, 3}), out);
    }, {"float32", "NCHW"});
    expect_error("output too small", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
                   hs::Tensor::host(o.u8.data(), hs::DType::UInt8, {kBatch, 64, 64, 3}));
    }, {"out_images", "[2, 128, 128, 3]"});
    expect_error("output null", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
                   hs::Tensor::host(static_cast<void *>(nullptr), hs::DType::UInt8, {kBatch, kSize, kSize, 3}));
    }, {"out_images", "null"});
    std::vector<float> codes(10);
    expect_error("codes wrong shape", hs::Status::User, [&] {
        hs::Tensor c = hs::Tensor::host(codes.data(), hs::DType::Float32, {kBatch, 5});
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}), out, &c);
    }, {"out_codes"});
    std::vector<float> nan_in(size_t(kBatch) * 3 * kS * kS, std::nanf(""));
    expect_error("NaN input", hs::Status::User, [&] {
        inv.invert(hs::Tensor::host(nan_in.data(), hs::DType::Float32, {kBatch, 3, kS, kS}), out);
    }, {"NaN"});
    expect_error("CUDA buffer on a CPU Inverter", hs::Status::User, [&] {
        inv.invert(hs::Tensor::cuda(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}, 0), out);
    }, {"images", "runs on the CPU"});
    CHECK(untouched(o));  // every check ran before any work: nothing was written
    expect_error("unknown config", hs::Status::User, [&] {
        hs::Options bad = tiny_options();
        bad.config = "nope";
        hs::Inverter::from_checkpoint("", bad);
    }, {"unknown config 'nope'"});
    expect_error("missing checkpoint", hs::Status::User, [&] {
        hs::Options opt = tiny_options();
        opt.w_encoder = "/nonexistent/w.pt";
        hs::Inverter::from_checkpoint("/nonexistent/hyperstyle.pt", opt);
    }, {"/nonexistent/hyperstyle.pt"});
    expect_error("missing export dir", hs::Status::User, [&] {
        hs::Options opt;
        hs::Inverter::from_export("/nonexistent/export", opt);
    }, {"/nonexistent/export"});
    return 0;
}

// Runs the C call; it must return `status` with a one-line hs_last_error() containing every `parts` entry.
void expect_c_error(const char *what, hs_status want, hs_status got, std::initializer_list<const char *> parts) {
    std::string m = hs_last_error();
    std::printf("%s -> [%d] %s\n", what, got, m.c_str());
    CHECK(got == want);
    CHECK(one_line(m));
    for (const char *p : parts) {
        if (m.find(p) == std::string::npos) {
            std::fprintf(stderr, "%s: message lacks \"%s\"\n", what, p);
            std::exit(1);
        }
    }
}

int invalid_inputs_c_api() {
    hs_inverter *inv = c_create();
    std::vector<uint8_t> x8 = make_u8(kBatch, 6);
    Outputs o;
    hs_tensor out = ctensor(o.u8.data(), HS_UINT8, {kBatch, kSize, kSize, 3});
    std::vector<uint8_t> small(size_t(kBatch) * 60 * 60 * 3, 1);
    hs_tensor t = ctensor(small.data(), HS_UINT8, {kBatch, 60, 60, 3});
    expect_c_error("wrong size", HS_ERROR_USER, hs_inverter_invert(inv, &t, &out, nullptr, 0, nullptr),
                   {"images", "[2, 60, 60, 3]", "64"});
    t = ctensor(nullptr, HS_UINT8, {kBatch, kS, kS, 3});
    expect_c_error("null data", HS_ERROR_USER, hs_inverter_invert(inv, &t, &out, nullptr, 0, nullptr),
                   {"images", "null"});
    expect_c_error("null images", HS_ERROR_USER, hs_inverter_invert(inv, nullptr, &out, nullptr, 0, nullptr),
                   {"images is NULL"});
    t = ctensor(x8.data(), HS_UINT8, {0, kS, kS, 3});
    expect_c_error("batch 0", HS_ERROR_USER, hs_inverter_invert(inv, &t, &out, nullptr, 0, nullptr), {"batch 0"});
    t = ctensor(x8.data(), 9, {kBatch, kS, kS, 3});
    expect_c_error("bad dtype", HS_ERROR_USER, hs_inverter_invert(inv, &t, &out, nullptr, 0, nullptr),
                   {"images.dtype = 9"});
    t = ctensor(x8.data(), HS_UINT8, {kBatch, kS, kS, 3});
    t.ndim = 12;
    expect_c_error("bad ndim", HS_ERROR_USER, hs_inverter_invert(inv, &t, &out, nullptr, 0, nullptr),
                   {"images.ndim = 12"});
    t = ctensor(x8.data(), HS_UINT8, {kBatch, kS, kS, 3});
    expect_c_error("null handle", HS_ERROR_USER, hs_inverter_invert(nullptr, &t, &out, nullptr, 0, nullptr),
                   {"inv is NULL"});
    CHECK(untouched(o));
    hs_options opts;
    hs_options_init(&opts);
    opts.config = "nope";
    hs_inverter *bad = reinterpret_cast<hs_inverter *>(0x1);
    expect_c_error("unknown config", HS_ERROR_USER, hs_inverter_create(&opts, &bad), {"unknown config 'nope'"});
    CHECK(bad == nullptr);
    // The message is thread-local: another thread has its own (empty) one.
    std::string other = "unset";
    std::thread([&] { other = hs_last_error(); }).join();
    CHECK(other.empty());
    hs_inverter_destroy(inv);
    hs_inverter_destroy(nullptr);  // a no-op
    return 0;
}

// Two threads share one hs::Inverter, each inverting its own images several times; each result must equal the
// single-threaded Python reference for that thread's images (a race on the Inverter's buffers would mix them).
int two_threads() {
    hs::Inverter inv = hs::Inverter::from_checkpoint("", tiny_options());
    constexpr int kCalls = 2;
    std::vector<uint8_t> xa = make_u8(kBatch, 11), xb = make_u8(kBatch, 12);
    Reference ra = python_reference(xa.data(), true, kBatch, 1);
    Reference rb = python_reference(xb.data(), true, kBatch, 1);
    CHECK(!bitwise_equal(ra.u8, rb.u8));
    std::atomic<int> failures{0}, calls{0};
    std::vector<std::string> errors(2);
    auto worker = [&](int id) {
        const std::vector<uint8_t> &x = id == 0 ? xa : xb;
        const Reference &r = id == 0 ? ra : rb;
        for (int i = 0; i < kCalls; ++i) {
            Outputs o;
            try {
                inv.invert(hs::Tensor::host(x.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
                           hs::Tensor::host(o.u8.data(), hs::DType::UInt8, {kBatch, kSize, kSize, 3}), nullptr, 1);
            } catch (const hs::Error &e) {
                errors[id] = e.what();
                ++failures;
                return;
            }
            ++calls;
            if (!bitwise_equal(o.u8, r.u8)) ++failures;
        }
    };
    std::thread t0(worker, 0), t1(worker, 1);
    t0.join();
    t1.join();
    for (auto &e : errors)
        if (!e.empty()) std::fprintf(stderr, "thread error: %s\n", e.c_str());
    std::printf("two threads, one Inverter: %d calls, %d failures\n", calls.load(), failures.load());
    CHECK(failures == 0 && calls == 2 * kCalls);

    // One Inverter per thread: the two run at the same time (no shared lock), results still exact.
    hs::Inverter inv2 = hs::Inverter::from_checkpoint("", tiny_options());
    std::vector<int> ok(2, 0);
    auto own = [&](int id) {
        Outputs o;
        hs::Inverter &mine = id == 0 ? inv : inv2;
        const std::vector<uint8_t> &x = id == 0 ? xa : xb;
        try {
            mine.invert(hs::Tensor::host(x.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
                        hs::Tensor::host(o.u8.data(), hs::DType::UInt8, {kBatch, kSize, kSize, 3}), nullptr, 1);
            ok[id] = bitwise_equal(o.u8, id == 0 ? ra.u8 : rb.u8) ? 1 : 0;
        } catch (const hs::Error &e) {
            std::fprintf(stderr, "thread %d: %s\n", id, e.what());
        }
    };
    std::thread u0(own, 0), u1(own, 1);
    u0.join();
    u1.join();
    std::printf("two threads, one Inverter each: results exact: %d %d\n", ok[0], ok[1]);
    CHECK(ok[0] == 1 && ok[1] == 1);
    return 0;
}

// A Python HsError keeps its message verbatim; any other Python exception becomes Status::Python through both
// APIs, and the process lives on (the next call works).
int python_error_becomes_hs_error() {
    hs::Inverter inv = hs::Inverter::from_checkpoint("", tiny_options());
    std::string want;
    {
        py::gil_scoped_acquire gil;
        try {
            py::module_::import("hyperstyle_trt.core.config").attr("get_config")("nope");
        } catch (py::error_already_set &e) {
            want = py::str(e.value()).cast<std::string>();
        }
    }
    CHECK(!want.empty());
    try {
        hs::Options bad = tiny_options();
        bad.config = "nope";
        hs::Inverter::from_checkpoint("", bad);
        return 1;
    } catch (const hs::Error &e) {
        std::printf("HsError: %s\n", e.what());
        CHECK(e.status() == hs::Status::User && want == e.what());
    }
    hs_inverter *cinv = c_create();
    {
        py::gil_scoped_acquire gil;  // make the Python side fail with a non-HsError exception
        py::exec("import hyperstyle_trt.runtime.embed as e\n"
                 "e._saved = e.Embedded.invert_into\n"
                 "def boom(self, *a):\n"
                 "    raise ZeroDivisionError('division by zero\\nsecond line')\n"
                 "e.Embedded.invert_into = boom\n");
    }
    std::vector<uint8_t> x8 = make_u8(kBatch, 7);
    Outputs o;
    expect_error("ZeroDivisionError", hs::Status::Python, [&] {
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
                   hs::Tensor::host(o.u8.data(), hs::DType::UInt8, {kBatch, kSize, kSize, 3}));
    }, {"ZeroDivisionError: division by zero"});
    hs_tensor in = ctensor(x8.data(), HS_UINT8, {kBatch, kS, kS, 3});
    hs_tensor out = ctensor(o.u8.data(), HS_UINT8, {kBatch, kSize, kSize, 3});
    expect_c_error("C ABI ZeroDivisionError", HS_ERROR_PYTHON, hs_inverter_invert(cinv, &in, &out, nullptr, 1, nullptr),
                   {"ZeroDivisionError: division by zero"});
    {
        py::gil_scoped_acquire gil;
        py::exec("import hyperstyle_trt.runtime.embed as e\ne.Embedded.invert_into = e._saved\n");
    }
    CHECK(hs_inverter_invert(cinv, &in, &out, nullptr, 1, nullptr) == HS_OK);  // alive and working
    CHECK(!untouched(o));
    hs_inverter_destroy(cinv);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    std::map<std::string, int (*)()> cases = {
        {"cpp_matches_python", cpp_matches_python},
        {"c_api_matches_python", c_api_matches_python},
        {"invalid_inputs_cpp", invalid_inputs_cpp},
        {"invalid_inputs_c_api", invalid_inputs_c_api},
        {"two_threads", two_threads},
        {"python_error_becomes_hs_error", python_error_becomes_hs_error},
    };
    if (argc != 2 || cases.count(argv[1]) == 0) {
        std::fprintf(stderr, "usage: test_inverter <case>; cases:");
        for (auto &c : cases) std::fprintf(stderr, " %s", c.first.c_str());
        std::fprintf(stderr, "\n");
        return 2;
    }
    try {
        hs::initialize();
        return cases[argv[1]]();
    } catch (const hs::Error &e) {
        std::fprintf(stderr, "unexpected hs::Error [%d]: %s\n", static_cast<int>(e.status()), e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        return 1;
    }
}
