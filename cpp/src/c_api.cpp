// The plain C ABI: hs::Inverter behind opaque handles, every exception turned into a status + thread-local message.
#include "hs/c_api.h"

#include <exception>
#include <string>
#include <utility>

#include "hs/inverter.hpp"

struct hs_inverter {
    hs::Inverter inv;
};

namespace {

thread_local std::string g_last_error;

hs_status fail(hs_status s, std::string msg) {
    g_last_error = std::move(msg);
    return s;
}

// Runs f; any exception becomes a status (nothing escapes into C).
template <class F>
hs_status guarded(F &&f) noexcept {
    try {
        f();
        return HS_OK;
    } catch (const hs::Error &e) {
        return fail(static_cast<hs_status>(e.status()), e.what());
    } catch (const std::exception &e) {
        return fail(HS_ERROR_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(HS_ERROR_INTERNAL, "internal error: unknown C++ exception");
    }
}

std::string str(const char *s) { return s != nullptr ? std::string(s) : std::string(); }

hs::Tensor to_tensor(const hs_tensor &t, const char *what) {
    if (t.ndim < 0 || t.ndim > HS_MAX_DIMS) {
        throw hs::Error(hs::Status::User, std::string(what) + ".ndim = " + std::to_string(t.ndim) + ", expected 0.." +
                                              std::to_string(HS_MAX_DIMS));
    }
    if (t.dtype != HS_UINT8 && t.dtype != HS_FLOAT32) {
        throw hs::Error(hs::Status::User, std::string(what) + ".dtype = " + std::to_string(t.dtype) +
                                              ", expected HS_UINT8 (0) or HS_FLOAT32 (1)");
    }
    hs::Tensor out;
    out.data = t.data;
    out.dtype = static_cast<hs::DType>(t.dtype);
    out.shape.assign(t.shape, t.shape + t.ndim);
    out.device = t.device < 0 ? hs::kHost : t.device;
    return out;
}

}  // namespace

extern "C" {

void hs_options_init(hs_options *opts) {
    if (opts == nullptr) return;
    *opts = hs_options{};
    opts->max_batch = 8;
    opts->n_iters = 5;
}

hs_status hs_inverter_create(const hs_options *opts, hs_inverter **out) {
    if (out == nullptr) return fail(HS_ERROR_USER, "hs_inverter_create: out is NULL");
    *out = nullptr;
    if (opts == nullptr) return fail(HS_ERROR_USER, "hs_inverter_create: opts is NULL (fill one with hs_options_init)");
    return guarded([&] {
        hs::Options o;
        o.executor = str(opts->executor);
        o.device = str(opts->device);
        o.precision = str(opts->precision);
        o.max_batch = opts->max_batch;
        o.n_iters = opts->n_iters;
        o.config = str(opts->config);
        o.w_encoder = str(opts->w_encoder);
        hs::Inverter inv = opts->export_dir != nullptr ? hs::Inverter::from_export(opts->export_dir, o)
                                                       : hs::Inverter::from_checkpoint(str(opts->checkpoint), o);
        *out = new hs_inverter{std::move(inv)};
    });
}

hs_status hs_inverter_invert(hs_inverter *inv, const hs_tensor *images, const hs_tensor *out_images,
                             const hs_tensor *out_codes, int32_t n_iters, void *stream) {
    if (inv == nullptr) return fail(HS_ERROR_USER, "hs_inverter_invert: inv is NULL");
    if (images == nullptr) return fail(HS_ERROR_USER, "hs_inverter_invert: images is NULL");
    if (out_images == nullptr) return fail(HS_ERROR_USER, "hs_inverter_invert: out_images is NULL");
    return guarded([&] {
        hs::Tensor in = to_tensor(*images, "images");
        hs::Tensor out = to_tensor(*out_images, "out_images");
        if (out_codes != nullptr) {
            hs::Tensor codes = to_tensor(*out_codes, "out_codes");
            inv->inv.invert(in, out, &codes, n_iters, stream);
        } else {
            inv->inv.invert(in, out, nullptr, n_iters, stream);
        }
    });
}

hs_status hs_inverter_info(const hs_inverter *inv, hs_info *out) {
    if (inv == nullptr) return fail(HS_ERROR_USER, "hs_inverter_info: inv is NULL");
    if (out == nullptr) return fail(HS_ERROR_USER, "hs_inverter_info: out is NULL");
    return guarded([&] {
        hs::Info i = inv->inv.info();
        *out = hs_info{i.input_size, i.size, i.n_latent, i.style_dim, i.max_batch, i.n_iters, i.cuda_device};
    });
}

void hs_inverter_destroy(hs_inverter *inv) {
    try {
        delete inv;
    } catch (...) {  // a destructor that throws would terminate; nothing to report to
    }
}

const char *hs_last_error(void) { return g_last_error.c_str(); }

int hs_has_cuda(void) { return hs::has_cuda() ? 1 : 0; }

}  // extern "C"
