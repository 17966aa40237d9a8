// The device path: CUDA device pointers in and out on a caller-created stream must equal the host path's outputs
// (same hs::Inverter on "cuda", fp32, tiny config) bitwise. Exits 77 (CTest SKIP_RETURN_CODE) with the reason when
// no CUDA device is usable or the embedded torch has no CUDA.
#include <cuda_runtime.h>

#include "common.hpp"

using namespace test;

#define CUDA_CHECK(call)                                                                                  \
    do {                                                                                                  \
        cudaError_t err_ = (call);                                                                        \
        if (err_ != cudaSuccess) {                                                                        \
            std::fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            std::exit(1);                                                                                 \
        }                                                                                                 \
    } while (0)

namespace {

int skip(const std::string &why) {
    std::printf("SKIP: %s\n", why.c_str());
    return 77;
}

template <class T>
T *device_copy(const std::vector<T> &h, cudaStream_t s) {
    T *d = nullptr;
    CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
    CUDA_CHECK(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s));
    return d;
}

template <class T>
T *device_fill(size_t n, int byte) {
    T *d = nullptr;
    CUDA_CHECK(cudaMalloc(&d, n * sizeof(T)));
    CUDA_CHECK(cudaMemset(d, byte, n * sizeof(T)));
    return d;
}

template <class T>
std::vector<T> host_copy(const T *d, size_t n) {
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

}  // namespace

int main() {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        return skip(std::string("no CUDA device (cudaGetDeviceCount: ") +
                    (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")");
    }
    try {
        hs::initialize();
        {
            py::gil_scoped_acquire gil;
            py::object torch = py::module_::import("torch");
            if (!torch.attr("cuda").attr("is_available")().cast<bool>()) {
                return skip("the embedded Python's torch " + torch.attr("__version__").cast<std::string>() +
                            " has no usable CUDA");
            }
        }
        hs::Options opt;
        opt.config = "tiny";
        opt.executor = "torch";
        opt.device = "cuda";
        opt.precision = "fp32";
        opt.n_iters = 2;
        hs::Inverter inv = hs::Inverter::from_checkpoint("", opt);
        const hs::Info info = inv.info();
        CHECK(info.cuda_device == 0);
        const size_t n_u8 = size_t(kBatch) * kSize * kSize * 3, n_img = size_t(kBatch) * 3 * kSize * kSize;
        const size_t n_codes = size_t(kBatch) * info.n_latent * info.style_dim;
        const std::vector<int64_t> u8_shape{kBatch, kSize, kSize, 3}, img_shape{kBatch, 3, kSize, kSize};
        const std::vector<int64_t> codes_shape{kBatch, info.n_latent, info.style_dim};

        // Host path.
        std::vector<uint8_t> x8 = make_u8(kBatch, 21);
        std::vector<float> xf = make_f32(kBatch, 22);
        std::vector<uint8_t> h_u8(n_u8, kSentinel);
        std::vector<float> h_codes(n_codes, 7.f), h_img(n_img, 7.f);
        hs::Tensor hc = hs::Tensor::host(h_codes.data(), hs::DType::Float32, codes_shape);
        inv.invert(hs::Tensor::host(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}),
                   hs::Tensor::host(h_u8.data(), hs::DType::UInt8, u8_shape), &hc);
        inv.invert(hs::Tensor::host(xf.data(), hs::DType::Float32, {kBatch, 3, kS, kS}),
                   hs::Tensor::host(h_img.data(), hs::DType::Float32, img_shape));
        Reference r8 = python_reference(x8.data(), true, kBatch, 2, "cuda");
        check_equal("host path (cuda Inverter) vs Python", h_u8, r8.u8);

        // Device path: inputs and outputs in cudaMalloc'd memory, work on our own stream.
        cudaStream_t stream = nullptr;
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        uint8_t *d_x8 = device_copy(x8, stream);
        float *d_xf = device_copy(xf, stream);
        uint8_t *d_u8 = device_fill<uint8_t>(n_u8, kSentinel);
        float *d_img = device_fill<float>(n_img, 0);
        float *d_codes = device_fill<float>(n_codes, 0);
        CUDA_CHECK(cudaDeviceSynchronize());
        hs::Tensor dc = hs::Tensor::cuda(d_codes, hs::DType::Float32, codes_shape, 0);
        inv.invert(hs::Tensor::cuda(d_x8, hs::DType::UInt8, {kBatch, kS, kS, 3}, 0),
                   hs::Tensor::cuda(d_u8, hs::DType::UInt8, u8_shape, 0), &dc, 0, stream);
        inv.invert(hs::Tensor::cuda(d_xf, hs::DType::Float32, {kBatch, 3, kS, kS}, 0),
                   hs::Tensor::cuda(d_img, hs::DType::Float32, img_shape, 0), nullptr, 0, stream);
        CUDA_CHECK(cudaStreamSynchronize(stream));
        check_equal("device uint8 -> device uint8 vs host path", host_copy(d_u8, n_u8), h_u8);
        check_equal("device uint8 -> device codes vs host path", host_copy(d_codes, n_codes), h_codes);
        check_equal("device float -> device float vs host path", host_copy(d_img, n_img), h_img);

        // Mixed: device input, host output (the call syncs for the host copy); the legacy default stream.
        std::vector<uint8_t> m_u8(n_u8, kSentinel);
        inv.invert(hs::Tensor::cuda(d_x8, hs::DType::UInt8, {kBatch, kS, kS, 3}, 0),
                   hs::Tensor::host(m_u8.data(), hs::DType::UInt8, u8_shape));
        check_equal("device uint8 -> host uint8 vs host path", m_u8, h_u8);

        // A host pointer that claims to be device memory: refused before any work.
        try {
            inv.invert(hs::Tensor::cuda(x8.data(), hs::DType::UInt8, {kBatch, kS, kS, 3}, 0),
                       hs::Tensor::cuda(d_u8, hs::DType::UInt8, u8_shape, 0), nullptr, 0, stream);
            std::fprintf(stderr, "host pointer as device memory: accepted\n");
            return 1;
        } catch (const hs::Error &err) {
            std::printf("host pointer as device memory -> %s\n", err.what());
            CHECK(err.status() == hs::Status::User && one_line(err.what()));
        }
        for (void *p : {static_cast<void *>(d_x8), static_cast<void *>(d_xf), static_cast<void *>(d_u8),
                        static_cast<void *>(d_img), static_cast<void *>(d_codes)})
            CUDA_CHECK(cudaFree(p));
        CUDA_CHECK(cudaStreamDestroy(stream));
        return 0;
    } catch (const hs::Error &err) {
        std::fprintf(stderr, "unexpected hs::Error [%d]: %s\n", static_cast<int>(err.status()), err.what());
        return 1;
    }
}
