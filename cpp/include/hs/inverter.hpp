// hyperstyle-trt: hs::Inverter, hyperstyle_trt.runtime.Inverter embedded in a C++ process (pybind11 embedding).
//
//   hs::Options opt;  opt.config = "tiny";                        // torch executor on the CPU, fp32, max batch 8, T=5
//   hs::Inverter inv = hs::Inverter::from_checkpoint("", opt);     // "" = the embedded default weights of opt.config
//   hs::Info info = inv.info();                                    // input_size, size, n_latent, style_dim, ...
//   inv.invert(hs::Tensor::host(pixels, hs::DType::UInt8, {2, S, S, 3}),
//              hs::Tensor::host(out, hs::DType::UInt8, {2, info.size, info.size, 3}));
//
// Buffers: images are uint8 [B,H,W,3] (HWC, 0..255) or float32 [B,3,H,W] (NCHW, [-1,1]) with H = W = input_size (no
// resizing); outputs uint8 [B,size,size,3] or float32 [B,3,size,size]; codes float32 [B,n_latent,style_dim]. All
// C-contiguous. A Tensor with device >= 0 is CUDA memory on that device: it is handed to Python as a
// __cuda_array_interface__ view (no copy) and the work is enqueued on the caller's stream.
//
// Errors: every failure throws hs::Error (the one exception type) carrying a status and a one-line message; a Python
// HsError keeps its message verbatim. Threads: calls on one Inverter are serialized (a mutex taken before the GIL);
// separate Inverters may run concurrently. The interpreter starts once per process (or the host's is reused).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(_WIN32)
#define HS_API __declspec(dllexport)
#else
#define HS_API __attribute__((visibility("default")))
#endif

namespace hs {

// Same values as hs_status in hs/c_api.h.
enum class Status : int { Ok = 0, User = 1, Unsupported = 2, Python = 3, Internal = 4 };

class HS_API Error : public std::runtime_error {
public:
    Error(Status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

enum class DType : int32_t { UInt8 = 0, Float32 = 1 };

constexpr int kHost = -1;

// A view of a caller-owned, C-contiguous buffer (never owned or freed by hs).
struct Tensor {
    void *data = nullptr;
    DType dtype = DType::UInt8;
    std::vector<int64_t> shape;
    int device = kHost;  // kHost, or the CUDA device ordinal of `data`

    static Tensor host(void *p, DType t, std::vector<int64_t> s) { return Tensor{p, t, std::move(s), kHost}; }
    static Tensor host(const void *p, DType t, std::vector<int64_t> s) {
        return Tensor{const_cast<void *>(p), t, std::move(s), kHost};  // inputs are only read
    }
    static Tensor cuda(void *p, DType t, std::vector<int64_t> s, int dev = 0) { return Tensor{p, t, std::move(s), dev}; }
    static Tensor cuda(const void *p, DType t, std::vector<int64_t> s, int dev = 0) {
        return Tensor{const_cast<void *>(p), t, std::move(s), dev};
    }
};

// The options of Inverter.from_export / Inverter.from_checkpoint. Empty strings: that Python method's default
// (from_checkpoint: executor "torch", device "cpu", precision "fp32"; from_export: executor "tensorrt", the
// executor's device and precision).
struct Options {
    std::string executor;   // "torch", "tensorrt", "onnxruntime"
    std::string device;     // "cpu", "cuda", "cuda:1"
    std::string precision;  // "fp32", "fp16"
    int max_batch = 8;      // rows of the Inverter's buffers; larger batches run in chunks
    int n_iters = 5;        // T: the default refinement iterations of invert()
    std::string config;     // from_checkpoint: preset name ("tiny", "ffhq1024", ...); empty: the checkpoint's / ffhq1024
    std::string w_encoder;  // from_checkpoint: the W-encoder checkpoint (required with a checkpoint)
};

struct Info {
    int input_size = 0;  // S
    int size = 0;        // output size
    int n_latent = 0;
    int style_dim = 0;
    int max_batch = 0;
    int n_iters = 0;
    int cuda_device = -1;  // the CUDA ordinal the Inverter runs on, -1 on CPU
};

// A cudaStream_t converts to this implicitly (nullptr: the legacy default stream).
using Stream = void *;

// Starts the embedded interpreter once per process (or attaches to the host's). Every constructor calls it; call it
// yourself to use Python (pybind11) in the same process: afterwards take the GIL with py::gil_scoped_acquire.
// The interpreter is never finalized (torch does not survive re-initialization); it lives until the process exits.
// Its Python is HS_PYTHON (environment) or the one the library was built with (its venv's site-packages).
HS_API void initialize();

// True when this build accepts CUDA device pointers (built with the CUDA toolkit).
HS_API bool has_cuda();

class HS_API Inverter {
public:
    // Inverter.from_checkpoint(checkpoint or None, w_encoder=..., config=..., executor, device, precision, max_batch)
    static Inverter from_checkpoint(const std::string &checkpoint, const Options &options = {});
    // Inverter.from_export(export_dir, executor, device, precision, max_batch)
    static Inverter from_export(const std::string &export_dir, const Options &options = {});

    Inverter(Inverter &&) noexcept;
    Inverter &operator=(Inverter &&) noexcept;
    Inverter(const Inverter &) = delete;
    Inverter &operator=(const Inverter &) = delete;
    ~Inverter();

    Info info() const;

    // Inverts `images` and writes `out_images` (and `out_codes` when given). n_iters <= 0: options' T. Everything is
    // validated before any work (hs::Error, outputs untouched). Host outputs are complete on return; device outputs
    // when `stream` reaches this point (work is enqueued on it; inputs must stay untouched until then).
    void invert(const Tensor &images, const Tensor &out_images, const Tensor *out_codes = nullptr, int n_iters = 0,
                Stream stream = nullptr);

    struct Impl;

private:
    explicit Inverter(std::unique_ptr<Impl> impl);
    static Inverter create(const std::string &export_dir, const std::string &checkpoint, const Options &options);
    std::unique_ptr<Impl> impl_;
};

}  // namespace hs
