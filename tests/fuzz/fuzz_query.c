/*
 * libFuzzer target for the query strings of GET /v1/readings and GET
 * /v1/readings/aggregate. The input is a decoded query string,
 * "key=value&key=value..." (URL decoding is libmicrohttpd's, not ours), fed
 * to both parameter parsers through the getter the handlers use. As with
 * libmicrohttpd, the first occurrence of a key wins and a key without '='
 * has no value. What parses must be a query the store can run (sensor
 * names up to OP_STORE_SENSOR_MAX: queries take the names the node makes).
 */
#include <stdint.h>
#include <string.h>

#include "http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_PARAMS 64

struct params {
    size_t n;
    char *key[FUZZ_MAX_PARAMS];
    char *val[FUZZ_MAX_PARAMS]; /* NULL: no '=' */
    char *text;                 /* the input, NUL-terminated, split in place */
};

static const char *get(void *ctx, const char *key)
{
    const struct params *p = ctx;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->key[i], key))
            return p->val[i];
    return NULL;
}

static void split(struct params *p, size_t size)
{
    char *s = p->text, *end = p->text + size;
    while (s < end && p->n < FUZZ_MAX_PARAMS) {
        char *amp = memchr(s, '&', (size_t)(end - s));
        char *stop = amp ? amp : end;
        *stop = '\0';
        char *eq = memchr(s, '=', (size_t)(stop - s));
        if (eq)
            *eq = '\0';
        p->key[p->n] = s;
        p->val[p->n] = eq ? eq + 1 : NULL;
        p->n++;
        s = stop + 1;
    }
}

static bool valid_sensor(const char *s)
{
    return http__valid_name_max(s, strlen(s), true, OP_STORE_SENSOR_MAX);
}

static void check_failed(int rc, const struct op_diag *d)
{
    if (rc != 400 || !d->code[0] || !d->msg[0] || !d->field[0])
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct params p = { 0 };
    p.text = op_malloc(size + 1);
    if (!p.text)
        return 0;
    memcpy(p.text, data, size);
    p.text[size] = '\0';
    split(&p, size);

    struct op_diag d;
    op_diag_clear(&d);
    struct op_range_query rq;
    int rc = http__parse_range_params(get, &p, &rq, &d);
    if (rc == 0) {
        if (!rq.sensor || !valid_sensor(rq.sensor) ||
            rq.from > rq.to || rq.limit < 1 || rq.limit > 10000)
            __builtin_trap();
    } else {
        check_failed(rc, &d);
    }

    op_diag_clear(&d);
    struct op_agg_query aq;
    unsigned fns = 0;
    rc = http__parse_agg_params(get, &p, &aq, &fns, &d);
    if (rc == 0) {
        if (!aq.sensor || !valid_sensor(aq.sensor) ||
            aq.from > aq.to || aq.step_ms < 1 || fns == 0 || fns >= 1u << 7)
            __builtin_trap();
    } else {
        check_failed(rc, &d);
    }
    op_free(p.text);
    return 0;
}
