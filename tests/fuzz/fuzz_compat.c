/*
 * libFuzzer target for the compatibility route's POST /data body
 * ({"id": ..., "value": ...}): http__parse_compat_data over the bytes as
 * the server hands them over (NUL-terminated after len). What parses must
 * give a valid sensor name and a finite value. Each input runs a second
 * time with an allocation failing.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "http_int.h"
#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses body and checks the result; 503 is the answer to a failed
 * allocation. */
static void one(const char *body, size_t size, bool alloc_fail)
{
    (void)alloc_fail; /* 503 is accepted either way */
    char *id;
    double value = 0;
    struct op_diag d;
    op_diag_clear(&d);
    int st = http__parse_compat_data(body, size, &id, &value, &d);
    if (st == 0) {
        if (!http__valid_name(id, strlen(id), true) || !isfinite(value))
            __builtin_trap();
        op_free(id);
    } else if ((st != 400 && st != 422 && st != 503) || !d.code[0] || id) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_body_run(data, size, 1, one);
}
