/*
 * libFuzzer target for PUT /v1/devices/{id} bodies: http__parse_device over
 * the bytes as the server hands them over (NUL-terminated after len). What
 * parses must give a status of 1-256 bytes and attributes that are a JSON
 * object which parses again (they are stored and re-emitted verbatim by
 * http__json_raw), at most 16 KiB. Each input runs a second time with an
 * allocation failing part way.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "http_int.h"
#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-emits stored attributes the way GET /v1/devices does. */
static void reemit(const char *attrs)
{
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, 64 * 1024);
    http__json_init(&j, &b);
    http__json_raw(&j, attrs, strlen(attrs));
    if (http__json_fini(&j) || b.len != strlen(attrs) || memcmp(b.data, attrs, b.len))
        __builtin_trap();
    op_buf_fini(&b);
}

/* Parses body and checks the result; with alloc_fail, an allocation fails
 * part way and 503 is also a right answer. */
static void one(const char *body, size_t size, bool alloc_fail)
{
    char *status, *attrs;
    struct op_diag d;
    op_diag_clear(&d);
    int st = http__parse_device(body, size, &status, &attrs, &d);
    if (st == 0) {
        size_t n = strlen(status);
        if (n < 1 || n > 256 || attrs[0] != '{' || strlen(attrs) > 16 * 1024)
            __builtin_trap();
        if (!alloc_fail)
            reemit(attrs);
        op_free(status);
        op_free(attrs);
    } else if ((st != 400 && st != 422 && st != 503) || !d.code[0] || status || attrs) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_body_run(data, size, 3, one);
}
