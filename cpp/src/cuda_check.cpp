// Device-pointer checks: with the CUDA toolkit (HS_WITH_CUDA), cudaPointerGetAttributes says where a pointer lives;
// without it, device pointers are refused with Status::Unsupported.
#include <sstream>
#include <string>

#include "detail.hpp"

#ifdef HS_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace hs {

bool has_cuda() {
#ifdef HS_WITH_CUDA
    return true;
#else
    return false;
#endif
}

namespace detail {

void check_device_pointer(const Tensor &t, const char *what) {
#ifdef HS_WITH_CUDA
    if (t.data == nullptr) return;  // the Python side names a null pointer with the expected buffer
    cudaPointerAttributes attr{};
    cudaError_t err = cudaPointerGetAttributes(&attr, t.data);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky-free error so later CUDA calls in the process are unaffected
        throw Error(Status::User, std::string(what) + ": cannot query the CUDA pointer (" + cudaGetErrorString(err) +
                                      "); expected CUDA device memory on device " + std::to_string(t.device));
    }
    if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
        throw Error(Status::User, std::string(what) + ": device=" + std::to_string(t.device) +
                                      " but the pointer is not CUDA device memory (host or unregistered); pass "
                                      "device=-1 for host buffers");
    }
    if (attr.device != t.device) {
        throw Error(Status::User, std::string(what) + ": the pointer is on CUDA device " + std::to_string(attr.device) +
                                      ", the tensor says device " + std::to_string(t.device));
    }
#else
    throw Error(Status::Unsupported, std::string(what) + ": device pointers need a build with the CUDA toolkit "
                                                         "(this libhs_inverter was built without it); pass host buffers");
#endif
}

}  // namespace detail
}  // namespace hs
