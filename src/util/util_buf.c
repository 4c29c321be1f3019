/*
 * Bounded growable buffers (curl's dynbuf): every buffer has a cap fixed at
 * init, so a body, a response or a batch can never grow without bound.
 */
#include <stdio.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/util.h"

void op_buf_init(struct op_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void op_buf_fini(struct op_buf *b)
{
    op_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void op_buf_reset(struct op_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for n more bytes plus the terminating NUL. */
static int reserve(struct op_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return OP_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return OP_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = op_realloc(b->data, cap);
    if (!p)
        return OP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return OP_OK;
}

int op_buf_append(struct op_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return OP_OK;
}

int op_buf_appends(struct op_buf *b, const char *s)
{
    return op_buf_append(b, s, strlen(s));
}

int op_buf_vappendf(struct op_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return OP_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return OP_OK;
}

int op_buf_appendf(struct op_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = op_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *op_buf_steal(struct op_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

bool op_str_eq(struct op_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.p, lit, n) == 0;
}
