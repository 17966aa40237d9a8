/* hyperstyle-trt: the plain C ABI over hyperstyle_trt.runtime.Inverter (for C, Rust, Go, C#, ... bindings).
 *
 * Every function returns an hs_status; on anything but HS_OK, hs_last_error() holds the one-line message (thread-local:
 * valid on the calling thread until its next hs_* call). No C++ or Python exception ever crosses this boundary.
 *
 * Buffers are described by hs_tensor: a data pointer, a dtype, a shape and where the memory lives (device = -1: host
 * memory, device = k >= 0: CUDA device k). Images are uint8 [B,H,W,3] (HWC, 0..255) or float32 [B,3,H,W] (NCHW, in
 * [-1,1]); H = W = the model's input size (hs_info.input_size), no resizing. Outputs are written into the caller's
 * buffers: images as uint8 [B,size,size,3] or float32 [B,3,size,size] (the generator's range), codes (optional) as
 * float32 [B,n_latent,style_dim].
 *
 * Threading: calls on one hs_inverter from several threads are serialized (one at a time, in arrival order of the
 * lock); different hs_inverter objects may be used from different threads at once. The Python GIL is held only
 * while Python code runs (torch releases it inside its kernels and copies).
 */
#ifndef HS_C_API_H
#define HS_C_API_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define HS_C_EXPORT __declspec(dllexport)
#else
#define HS_C_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_status {
    HS_OK = 0,
    HS_ERROR_USER = 1,        /* a user error (Python HsError or a bad argument): bad input, bad checkpoint, ... */
    HS_ERROR_UNSUPPORTED = 2, /* asked for something this build lacks (device pointers without CUDA support) */
    HS_ERROR_PYTHON = 3,      /* an unexpected Python exception (environment problem or bug); message: "Type: text" */
    HS_ERROR_INTERNAL = 4     /* an unexpected C++ exception */
} hs_status;

typedef enum hs_dtype { HS_UINT8 = 0, HS_FLOAT32 = 1 } hs_dtype;

#define HS_MAX_DIMS 8
#define HS_HOST (-1)

typedef struct hs_tensor {
    void *data;                  /* host pointer, or a CUDA device pointer when device >= 0 */
    int32_t dtype;               /* hs_dtype */
    int32_t ndim;                /* number of entries of shape used (4 for images, 3 for codes) */
    int64_t shape[HS_MAX_DIMS];  /* C-contiguous (row-major, dense) layout */
    int32_t device;              /* HS_HOST (-1) or the CUDA device ordinal */
} hs_tensor;

/* Where the weights come from (mirrors Inverter.from_export / Inverter.from_checkpoint). Strings may be NULL. */
typedef struct hs_options {
    const char *export_dir; /* non-NULL: Inverter.from_export(export_dir, ...); checkpoint/w_encoder/config unused */
    const char *checkpoint; /* HyperStyle checkpoint (.pt); NULL: the embedded default weights of `config` */
    const char *w_encoder;  /* W-encoder checkpoint; required with `checkpoint` */
    const char *config;     /* preset name ("tiny", "ffhq1024", ...); NULL: the Python default */
    /* NULL: the default of Inverter.from_checkpoint (torch, cpu, fp32) / from_export (tensorrt, executor's) */
    const char *executor;   /* "torch", "tensorrt", "onnxruntime" */
    const char *device;     /* "cpu", "cuda", "cuda:1" */
    const char *precision;  /* "fp32" or "fp16" */
    int32_t max_batch;      /* rows of the Inverter's buffers; larger batches run in chunks (default 8) */
    int32_t n_iters;        /* T, refinement iterations of an invert call that passes n_iters <= 0 (default 5) */
} hs_options;

typedef struct hs_info {
    int32_t input_size; /* S: input images are S x S */
    int32_t size;       /* output images are size x size */
    int32_t n_latent;   /* codes are [B, n_latent, style_dim] */
    int32_t style_dim;
    int32_t max_batch;
    int32_t n_iters;    /* the default T */
    int32_t cuda_device; /* CUDA ordinal the Inverter runs on, or -1 (CPU) */
} hs_info;

typedef struct hs_inverter hs_inverter;

/* Fills *opts with the defaults: every string NULL, max_batch 8, n_iters 5. */
HS_C_EXPORT void hs_options_init(hs_options *opts);

/* Starts the embedded Python interpreter (or attaches to the one the host process already runs) and builds the
 * Inverter. On success *out is a new handle (free it with hs_inverter_destroy); on failure *out is NULL. */
HS_C_EXPORT hs_status hs_inverter_create(const hs_options *opts, hs_inverter **out);

/* Inverts images[0..B) and writes out_images (required) and out_codes (NULL: not wanted). n_iters <= 0: the handle's
 * default T. stream: a cudaStream_t (NULL: the legacy default stream); used when the Inverter runs on CUDA.
 * Host outputs are complete when the call returns. Device outputs are written by work enqueued on `stream`: they are
 * complete once that stream reaches this point (cudaStreamSynchronize or an event), the caller's inputs must stay
 * untouched until then. Everything is validated before any work; on error the outputs are not written. */
HS_C_EXPORT hs_status hs_inverter_invert(hs_inverter *inv, const hs_tensor *images, const hs_tensor *out_images,
                                         const hs_tensor *out_codes, int32_t n_iters, void *stream);

/* Sizes and settings of the handle (to allocate buffers). */
HS_C_EXPORT hs_status hs_inverter_info(const hs_inverter *inv, hs_info *out);

/* Frees the handle (NULL is a no-op). Never fails. */
HS_C_EXPORT void hs_inverter_destroy(hs_inverter *inv);

/* The one-line message of the last failed hs_* call on this thread ("" if none). */
HS_C_EXPORT const char *hs_last_error(void);

/* 1 if this build accepts CUDA device pointers (built with the CUDA toolkit), else 0. */
HS_C_EXPORT int hs_has_cuda(void);

#ifdef __cplusplus
}
#endif

#endif /* HS_C_API_H */
