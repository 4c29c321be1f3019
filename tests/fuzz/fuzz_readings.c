/*
 * libFuzzer target for POST /v1/readings bodies: http__parse_readings over
 * the bytes exactly as the server hands them over (the request's op_buf,
 * NUL-terminated after len). A batch cap of 16 keeps the 413 path within
 * reach of small inputs. Whatever parses must satisfy what the store
 * relies on: a valid sensor name, a finite value, a ts in range.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "http_int.h"
#include "fuzz_body.h"

#define FUZZ_MAX_BATCH 16
#define FUZZ_NOW_MS 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses body and checks the result; with alloc_fail, an allocation fails
 * part way and 503 is also a right answer. */
static void one(const char *body, size_t size, bool alloc_fail)
{
    (void)alloc_fail; /* 503 is accepted either way */
    struct http_readings rd;
    struct op_diag d;
    op_diag_clear(&d);
    int st = http__parse_readings(body, size, FUZZ_MAX_BATCH, FUZZ_NOW_MS, &rd, &d);
    if (st == 0) {
        if (rd.n == 0 || rd.n > FUZZ_MAX_BATCH)
            __builtin_trap();
        for (size_t i = 0; i < rd.n; i++) {
            const struct op_reading *r = &rd.v[i];
            if (!http__valid_name(r->sensor, r->sensor_len, true) || !isfinite(r->value) ||
                r->ts < 0 || r->ts > 253402300799999LL)
                __builtin_trap();
        }
        http__readings_free(&rd);
    } else {
        if ((st != 400 && st != 413 && st != 422 && st != 503) || !d.code[0] || rd.v || rd.names)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_body_run(data, size, 3, one);
}
