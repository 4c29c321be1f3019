/*
 * The request-body fuzz targets' shared driver: the body is handed over
 * NUL-terminated after its length, as the server's op_buf does, parsed
 * once, then again with one of the first `cycle` allocations failing
 * (chosen by the input's length) to show a failed allocation leaks and
 * crashes nothing.
 */
#ifndef FUZZ_BODY_H
#define FUZZ_BODY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "outpost/util.h"

/* Parses body[0..size) and traps on a wrong result; alloc_fail says an
 * allocation will fail part way (503 is then also a right answer). */
typedef void fuzz_body_fn(const char *body, size_t size, bool alloc_fail);

static inline int fuzz_body_run(const uint8_t *data, size_t size, long cycle, fuzz_body_fn *one)
{
    char *body = op_malloc(size + 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    one(body, size, false);
    op_alloc_fail_after(1 + (long)(size % (size_t)cycle));
    one(body, size, true);
    op_alloc_fail_after(0);
    op_free(body);
    return 0;
}

#endif
