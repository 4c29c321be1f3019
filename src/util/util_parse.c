/*
 * Checked number parsing for text that comes from outside (query strings,
 * config values, CLI flags): whole-string, overflow-checked, never atoi.
 * Also the shortest round-trip formatting of doubles for JSON output.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outpost/err.h"
#include "outpost/util.h"

/* Copies s[0..len) into buf as a C string; numbers are short, so a long
 * input is invalid rather than truncated. */
static int to_cstr(char *buf, size_t bufsz, const char *s, size_t len)
{
    if (len == 0 || len >= bufsz)
        return OP_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return OP_OK;
}

int op_parse_i64(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (to_cstr(buf, sizeof buf, s, len))
        return OP_EINVAL;
    /* strtoll accepts leading blanks; we do not. */
    if (!(buf[0] == '-' || buf[0] == '+' || (buf[0] >= '0' && buf[0] <= '9')))
        return OP_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end != '\0')
        return OP_EINVAL;
    if (errno == ERANGE)
        return OP_ERANGE;
    *out = (int64_t)v;
    return OP_OK;
}

int op_parse_double(const char *s, size_t len, double *out)
{
    char buf[64];
    if (to_cstr(buf, sizeof buf, s, len))
        return OP_EINVAL;
    if (!(buf[0] == '-' || buf[0] == '+' || buf[0] == '.' || (buf[0] >= '0' && buf[0] <= '9')))
        return OP_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != '\0')
        return OP_EINVAL;
    if (errno == ERANGE && isinf(v))
        return OP_ERANGE;
    *out = v;
    return OP_OK;
}

struct unit {
    const char *name;
    int64_t mult;
};

/* Splits "<digits><unit>" and scales by the unit's multiplier; the unit
 * tables below are the whole grammar. */
static int parse_scaled(const char *s, size_t len, const struct unit *units, int64_t *out)
{
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0)
        return OP_EINVAL;
    int64_t n;
    int rc = op_parse_i64(s, i, &n);
    if (rc)
        return rc;
    const char *u = s + i;
    size_t ulen = len - i;
    for (const struct unit *e = units; e->name; e++) {
        if (strlen(e->name) == ulen && strncasecmp(u, e->name, ulen) == 0) {
            if (e->mult && n > INT64_MAX / e->mult)
                return OP_ERANGE;
            *out = n * e->mult;
            return OP_OK;
        }
    }
    return OP_EINVAL;
}

int op_parse_duration_ms(const char *s, size_t len, int64_t *out)
{
    static const struct unit units[] = {
        { "", 1 },          { "ms", 1 },          { "s", 1000 }, { "m", 60000 },
        { "h", 3600000 },   { "d", 86400000 },    { NULL, 0 },
    };
    return parse_scaled(s, len, units, out);
}

int op_parse_size(const char *s, size_t len, int64_t *out)
{
    static const struct unit units[] = {
        { "", 1 },           { "B", 1 },           { "k", 1024 },          { "KiB", 1024 },
        { "KB", 1024 },      { "M", 1048576 },     { "MiB", 1048576 },     { "MB", 1048576 },
        { "G", 1073741824 }, { "GiB", 1073741824 }, { "GB", 1073741824 }, { NULL, 0 },
    };
    return parse_scaled(s, len, units, out);
}

size_t op_fmt_double(char *buf, double v)
{
    /* %.15g reproduces any decimal of up to 15 significant digits exactly
     * and strips trailing zeros, so it is the shortest form for typical
     * sensor values; 16 and 17 digits cover the rest. */
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(buf, 32, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            return (size_t)n;
    }
    return 0;
}
