/* The C ABI from a C translation unit (proves hs/c_api.h is plain C): create, info, invert a batch of 2 twice
 * (deterministic and per-image distinct), the error paths (status + one-line hs_last_error), destroy.
 * Bitwise equality with the Python Inverter through the C ABI is test_inverter's c_api_matches_python. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs/c_api.h"

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    hs_last_error());                                               \
            return 1;                                                               \
        }                                                                           \
    } while (0)

static hs_tensor tensor4(void *p, int32_t dtype, int64_t a, int64_t b, int64_t c, int64_t d) {
    hs_tensor t;
    memset(&t, 0, sizeof t);
    t.data = p;
    t.dtype = dtype;
    t.ndim = 4;
    t.shape[0] = a;
    t.shape[1] = b;
    t.shape[2] = c;
    t.shape[3] = d;
    t.device = HS_HOST;
    return t;
}

static int one_line(const char *s) { return s[0] != '\0' && strchr(s, '\n') == NULL; }

int main(void) {
    hs_options opts;
    hs_inverter *inv = NULL;
    hs_info info;
    hs_options_init(&opts);
    opts.config = "tiny";
    opts.n_iters = 1;
    CHECK(hs_inverter_create(&opts, &inv) == HS_OK);
    CHECK(hs_inverter_info(inv, &info) == HS_OK);
    printf("tiny: input %d, output %d, codes [%d,%d], has_cuda %d\n", info.input_size, info.size, info.n_latent,
           info.style_dim, hs_has_cuda());
    {
        const int B = 2, S = info.input_size, N = info.size;
        size_t in_n = (size_t)B * S * S * 3, out_n = (size_t)B * N * N * 3, i;
        unsigned char *x = malloc(in_n), *y1 = malloc(out_n), *y2 = malloc(out_n);
        hs_tensor in, out;
        hs_status st;
        for (i = 0; i < in_n; ++i) x[i] = (unsigned char)((i * 2654435761u) >> 13);
        memset(y1, 0xAB, out_n);
        memset(y2, 0xCD, out_n);
        in = tensor4(x, HS_UINT8, B, S, S, 3);
        out = tensor4(y1, HS_UINT8, B, N, N, 3);
        CHECK(hs_inverter_invert(inv, &in, &out, NULL, 0, NULL) == HS_OK);
        out = tensor4(y2, HS_UINT8, B, N, N, 3);
        CHECK(hs_inverter_invert(inv, &in, &out, NULL, 0, NULL) == HS_OK);
        CHECK(memcmp(y1, y2, out_n) == 0);                    /* the same input gives the same bytes */
        CHECK(memcmp(y1, y1 + out_n / 2, out_n / 2) != 0);    /* the two images differ */
        printf("batch of 2 inverted twice: identical outputs\n");

        in = tensor4(x, HS_UINT8, 0, S, S, 3);
        st = hs_inverter_invert(inv, &in, &out, NULL, 0, NULL);
        printf("batch 0 -> [%d] %s\n", st, hs_last_error());
        CHECK(st == HS_ERROR_USER && one_line(hs_last_error()) && strstr(hs_last_error(), "batch 0") != NULL);
        in = tensor4(NULL, HS_UINT8, B, S, S, 3);
        st = hs_inverter_invert(inv, &in, &out, NULL, 0, NULL);
        printf("null pointer -> [%d] %s\n", st, hs_last_error());
        CHECK(st == HS_ERROR_USER && one_line(hs_last_error()) && strstr(hs_last_error(), "null") != NULL);
        in = tensor4(x, HS_UINT8, B, S / 2, S / 2, 3);
        st = hs_inverter_invert(inv, &in, &out, NULL, 0, NULL);
        printf("wrong size -> [%d] %s\n", st, hs_last_error());
        CHECK(st == HS_ERROR_USER && one_line(hs_last_error()) && strstr(hs_last_error(), "images") != NULL);
        free(x);
        free(y1);
        free(y2);
    }
    hs_inverter_destroy(inv);
    return 0;
}
