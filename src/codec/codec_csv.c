/*
 * CSV interchange for the codec's users (CLI, tests, benchmarks): the
 * `ts_ms,value` text the datasets use, parsed into the arrays the codec
 * takes and formatted back. Kept here so there is one parser, not one per
 * tool.
 */
#include <math.h>
#include <string.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

static int parse_value(const char *s, size_t len, double *v)
{
    /* op_parse_double takes numbers only; the CSV also carries the
     * non-finite values a decoded frame can hold. */
    static const struct {
        const char *txt;
        double v;
    } special[] = { { "nan", NAN }, { "-nan", -NAN }, { "inf", INFINITY },
                    { "+inf", INFINITY }, { "-inf", -INFINITY } };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        if (strlen(special[i].txt) == len && memcmp(s, special[i].txt, len) == 0) {
            *v = special[i].v;
            return OP_OK;
        }
    }
    return op_parse_double(s, len, v);
}

int op_codec_csv_parse_alloc(const char *text, size_t len, size_t max_points, int64_t **ts,
                             double **val, size_t *n, size_t *bad_line)
{
    if (!ts || !val || !n || (!text && len))
        return OP_EINVAL;
    *ts = NULL;
    *val = NULL;
    *n = 0;
    if (bad_line)
        *bad_line = 0;
    size_t cap = 0, cnt = 0, line = 0, pos = 0;
    int64_t *t = NULL;
    double *v = NULL;
    int rc = OP_OK;
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - s) : len - pos;
        pos += l + (nl ? 1 : 0);
        line++;
        if (l && s[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        if (line == 1 && !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
            continue;
        const char *comma = memchr(s, ',', l);
        int64_t tv;
        double dv;
        if (!comma || op_parse_i64(s, (size_t)(comma - s), &tv) != OP_OK ||
            parse_value(comma + 1, l - (size_t)(comma - s) - 1, &dv) != OP_OK) {
            rc = OP_EINVAL;
            if (bad_line)
                *bad_line = line;
            break;
        }
        if (cnt == cap) {
            if (cnt >= max_points) {
                rc = OP_ETOOBIG;
                break;
            }
            size_t ncap = cap ? cap * 2 : 1024;
            ncap = ncap > max_points ? max_points : ncap;
            int64_t *nt = op_realloc(t, ncap * sizeof *nt);
            if (nt)
                t = nt;
            double *nv = nt ? op_realloc(v, ncap * sizeof *nv) : NULL;
            if (nv)
                v = nv;
            if (!nt || !nv) {
                rc = OP_ENOMEM;
                break;
            }
            cap = ncap;
        }
        t[cnt] = tv;
        v[cnt] = dv;
        cnt++;
    }
    if (rc != OP_OK) {
        op_free(t);
        op_free(v);
        return rc;
    }
    *ts = t;
    *val = v;
    *n = cnt;
    return OP_OK;
}

int op_codec_csv_format(const int64_t *ts, const double *val, size_t n, struct op_buf *out)
{
    int rc = op_buf_appends(out, "ts_ms,value\n");
    for (size_t i = 0; i < n && rc == OP_OK; i++) {
        char num[32];
        size_t len;
        if (isnan(val[i])) {
            /* NaN payloads cannot be written in CSV; the sign can. */
            const char *s = signbit(val[i]) ? "-nan" : "nan";
            len = strlen(s);
            memcpy(num, s, len);
        } else {
            len = op_fmt_double(num, val[i]);
        }
        rc = op_buf_appendf(out, "%lld,%.*s\n", (long long)ts[i], (int)len, num);
    }
    return rc;
}
