/*
 * JSON in and out, the only file that includes yajl (so the library can be
 * swapped; see docs/design.md for why yajl). Batched ingest is parse-bound,
 * so readings are parsed with yajl's event (SAX) parser straight into
 * struct op_reading, with no document tree; small bodies (devices, the
 * compat routes) use yajl's tree. Output goes through yajl_gen into a
 * bounded buffer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "http_int.h"
#include "outpost/err.h"

#define SENSOR_MAX 128
#define TS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* yajl does not survive a failed allocation (yajl_alloc pushes onto a
 * stack it never checks; yajl_buf asserts), so its allocations bypass the
 * failure-injecting wrapper: they are bounded by the body cap and the
 * nesting depth, and a real OOM would abort anyway. */
static void *j_malloc(void *ctx, size_t n) { (void)ctx; return malloc(n); }
static void *j_realloc(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n); }
static void j_free(void *ctx, void *p) { (void)ctx; free(p); }
static yajl_alloc_funcs alloc_funcs = { j_malloc, j_realloc, j_free, NULL };

bool http__valid_name(const char *s, size_t len, bool allow_slash)
{
    return http__valid_name_max(s, len, allow_slash, SENSOR_MAX);
}

bool http__valid_name_max(const char *s, size_t len, bool allow_slash, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-' || (allow_slash && c == '/');
        if (!ok)
            return false;
    }
    return true;
}

/* ---- readings: event parser ------------------------------------------ */

enum field { F_NONE, F_SENSOR, F_VALUE, F_TS };

struct rd_parse {
    struct http_readings *out;
    size_t cap;
    size_t names_len;
    size_t max_batch;
    int64_t now_ms;
    int depth;          /* 1 = top-level object or array, 2 = reading inside the array */
    bool top_is_array;
    enum field field;   /* the key whose value comes next */
    bool has_sensor, has_value, has_ts;
    struct op_reading cur;
    size_t cur_name_off;
    struct op_diag *d;
    unsigned status;    /* status of a client-side cancel: 413 or 422 */
};

static const char *const field_names[] = { "", "sensor", "value", "ts" };

static long cur_index(const struct rd_parse *p)
{
    return p->top_is_array ? (long)p->out->n : -1;
}

static int fail(struct rd_parse *p, unsigned status, const char *code, enum field f, const char *msg)
{
    op_diag_set(p->d, code, "%s", msg);
    snprintf(p->d->field, sizeof p->d->field, "%s", field_names[f]);
    p->d->index = cur_index(p);
    p->status = status;
    return 0;
}

static bool in_reading(const struct rd_parse *p)
{
    return p->depth == (p->top_is_array ? 2 : 1);
}

static int rd_start_map(void *ctx)
{
    struct rd_parse *p = ctx;
    if (p->depth == 0) {
        p->top_is_array = false;
    } else if (!(p->top_is_array && p->depth == 1)) {
        return fail(p, 422, "invalid_reading", p->field, "nested objects are not allowed here");
    }
    if (p->out->n >= p->max_batch) {
        op_diag_set(p->d, "batch_too_large", "more than %zu readings in one request",
                    p->max_batch);
        p->status = 413;
        return 0;
    }
    p->depth++;
    p->has_sensor = p->has_value = p->has_ts = false;
    p->field = F_NONE;
    return 1;
}

static int rd_map_key(void *ctx, const unsigned char *k, size_t len)
{
    struct rd_parse *p = ctx;
    if (len == 6 && !memcmp(k, "sensor", 6))
        p->field = F_SENSOR;
    else if (len == 5 && !memcmp(k, "value", 5))
        p->field = F_VALUE;
    else if (len == 2 && !memcmp(k, "ts", 2))
        p->field = F_TS;
    else {
        fail(p, 422, "invalid_reading", F_NONE, "unknown field (allowed: sensor, value, ts)");
        snprintf(p->d->field, sizeof p->d->field, "%.*s", (int)(len > 60 ? 60 : len), k);
        return 0;
    }
    return 1;
}

static int grow(struct rd_parse *p)
{
    if (p->out->n < p->cap)
        return 1;
    size_t cap = p->cap ? p->cap * 2 : 16;
    if (cap > p->max_batch)
        cap = p->max_batch;
    struct op_reading *v = op_realloc(p->out->v, cap * sizeof *v);
    if (!v) {
        op_diag_set(p->d, "overloaded", "out of memory");
        p->status = 503;
        return 0;
    }
    p->out->v = v;
    p->cap = cap;
    return 1;
}

static int rd_end_map(void *ctx)
{
    struct rd_parse *p = ctx;
    if (!p->has_sensor)
        return fail(p, 422, "invalid_reading", F_SENSOR, "sensor is required");
    if (!p->has_value)
        return fail(p, 422, "invalid_reading", F_VALUE, "value is required");
    if (!p->has_ts)
        p->cur.ts = p->now_ms;
    if (!grow(p))
        return 0;
    /* names may still move? No: the names arena is allocated once, sized
     * to the body, so offsets become pointers right here. */
    p->cur.sensor = p->out->names + p->cur_name_off;
    p->out->v[p->out->n++] = p->cur;
    p->depth--;
    return 1;
}

static int rd_string(void *ctx, const unsigned char *s, size_t len)
{
    struct rd_parse *p = ctx;
    if (!in_reading(p))
        return fail(p, 422, "invalid_reading", F_NONE, "a reading must be a JSON object");
    if (p->field != F_SENSOR)
        return fail(p, 422, "invalid_reading", p->field, "must be a number");
    if (!http__valid_name((const char *)s, len, true))
        return fail(p, 422, "invalid_reading", F_SENSOR,
                    "sensor must be 1-128 bytes of [A-Za-z0-9_.:/-]");
    memcpy(p->out->names + p->names_len, s, len);
    p->cur_name_off = p->names_len;
    p->cur.sensor_len = (uint32_t)len;
    p->names_len += len;
    p->has_sensor = true;
    return 1;
}

static int rd_number(void *ctx, const char *s, size_t len)
{
    struct rd_parse *p = ctx;
    if (!in_reading(p))
        return fail(p, 422, "invalid_reading", F_NONE, "a reading must be a JSON object");
    if (p->field == F_SENSOR)
        return fail(p, 422, "invalid_reading", F_SENSOR, "sensor must be a string");
    if (p->field == F_TS) {
        int64_t ts;
        if (op_parse_i64(s, len, &ts) || ts < 0 || ts > TS_MAX)
            return fail(p, 422, "invalid_reading", F_TS,
                        "ts must be an integer of Unix milliseconds in [0, 253402300799999]");
        p->cur.ts = ts;
        p->has_ts = true;
        return 1;
    }
    double v;
    int rc = op_parse_double(s, len, &v);
    if (rc || !isfinite(v))
        return fail(p, 422, "invalid_reading", F_VALUE, "value must be a finite number");
    p->cur.value = v;
    p->has_value = true;
    return 1;
}

static int rd_other(struct rd_parse *p)
{
    if (!in_reading(p))
        return fail(p, 422, "invalid_reading", F_NONE, "a reading must be a JSON object");
    return fail(p, 422, "invalid_reading", p->field,
                p->field == F_SENSOR ? "sensor must be a string" : "must be a number");
}

static int rd_null(void *ctx) { return rd_other(ctx); }
static int rd_bool(void *ctx, int b) { (void)b; return rd_other(ctx); }

static int rd_start_array(void *ctx)
{
    struct rd_parse *p = ctx;
    if (p->depth != 0)
        return rd_other(p);
    p->top_is_array = true;
    p->depth = 1;
    return 1;
}

static int rd_end_array(void *ctx)
{
    struct rd_parse *p = ctx;
    p->depth = 0;
    return 1;
}

static const yajl_callbacks rd_callbacks = {
    .yajl_null = rd_null,
    .yajl_boolean = rd_bool,
    .yajl_number = rd_number,
    .yajl_string = rd_string,
    .yajl_start_map = rd_start_map,
    .yajl_map_key = rd_map_key,
    .yajl_end_map = rd_end_map,
    .yajl_start_array = rd_start_array,
    .yajl_end_array = rd_end_array,
};

/* Copies yajl's one-line error description into d. */
static void syntax_error(yajl_handle h, const char *body, size_t len, struct op_diag *d)
{
    unsigned char *e = yajl_get_error(h, 0, (const unsigned char *)body, len);
    size_t off = yajl_get_bytes_consumed(h);
    op_diag_set(d, "invalid_json", "malformed JSON near byte %zu: %s", off, e ? (char *)e : "?");
    /* yajl ends its messages with a newline */
    size_t n = strlen(d->msg);
    if (n && d->msg[n - 1] == '\n')
        d->msg[n - 1] = '\0';
    if (e)
        yajl_free_error(h, e);
}

int http__parse_readings(const char *body, size_t len, size_t max_batch, int64_t now_ms,
                         struct http_readings *out, struct op_diag *d)
{
    memset(out, 0, sizeof *out);
    struct rd_parse p = { .out = out, .max_batch = max_batch, .now_ms = now_ms, .d = d };
    /* Decoded names are never longer than the body that holds them. */
    out->names = op_malloc(len + 1);
    yajl_handle h = out->names ? yajl_alloc(&rd_callbacks, &alloc_funcs, &p) : NULL;
    if (!h) {
        op_diag_set(d, "overloaded", "out of memory");
        http__readings_free(out);
        return 503;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    unsigned status = 0;
    if (st == yajl_status_client_canceled) {
        status = p.status;
    } else if (st != yajl_status_ok) {
        syntax_error(h, body, len, d);
        status = 400;
    } else if (out->n == 0) {
        op_diag_set(d, p.top_is_array ? "empty_batch" : "invalid_json",
                    p.top_is_array ? "the batch holds no readings"
                                   : "expected a reading object or an array of them");
        status = p.top_is_array ? 422 : 400;
    }
    yajl_free(h);
    if (status)
        http__readings_free(out);
    return (int)status;
}

void http__readings_free(struct http_readings *rd)
{
    op_free(rd->v);
    op_free(rd->names);
    memset(rd, 0, sizeof *rd);
}

/* ---- small bodies: tree parser ---------------------------------------- */

/* yajl's tree parser and free recurse once per nesting level, so a body of
 * 400,000 '[' would overflow the stack: the nesting is measured first with
 * the event parser, which keeps its own bounded stack. */
#define TREE_DEPTH_MAX 64

struct depth_count {
    int depth;
};

static int dc_open(void *ctx)
{
    struct depth_count *dc = ctx;
    return ++dc->depth <= TREE_DEPTH_MAX; /* 0 cancels the parse */
}

static int dc_close(void *ctx)
{
    ((struct depth_count *)ctx)->depth--;
    return 1;
}

static const yajl_callbacks depth_callbacks = {
    .yajl_start_map = dc_open,
    .yajl_end_map = dc_close,
    .yajl_start_array = dc_open,
    .yajl_end_array = dc_close,
};

/* 0 when body nests at most TREE_DEPTH_MAX deep (or is malformed: the tree
 * parser then reports that), 422 when deeper, 503 out of memory. */
static int check_depth(const char *body, size_t len, struct op_diag *d)
{
    struct depth_count dc = { 0 };
    yajl_handle h = yajl_alloc(&depth_callbacks, &alloc_funcs, &dc);
    if (!h) {
        op_diag_set(d, "overloaded", "out of memory");
        return 503;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    yajl_free(h);
    if (st == yajl_status_client_canceled) {
        op_diag_set(d, "invalid_json", "nested deeper than %d levels", TREE_DEPTH_MAX);
        return 422;
    }
    return 0;
}

/* Parses body (NUL-terminated by op_buf) into a tree that must be an
 * object: malformed JSON is 400 with yajl's message, well-formed JSON of
 * another type is 422 with `code`. *status says which. */
static yajl_val parse_object(const char *body, size_t len, const char *code, struct op_diag *d,
                             int *status)
{
    if ((*status = check_depth(body, len, d)) != 0)
        return NULL;
    *status = 400;
    char err[160];
    err[0] = '\0';
    if (strlen(body) != len) {
        op_diag_set(d, "invalid_json", "the body contains a NUL byte");
        return NULL;
    }
    yajl_val root = yajl_tree_parse(body, err, sizeof err);
    if (!root) {
        size_t n = strlen(err);
        if (n && err[n - 1] == '\n')
            err[n - 1] = '\0';
        op_diag_set(d, "invalid_json", "malformed JSON: %s", err[0] ? err : "parse error");
        return NULL;
    }
    if (!YAJL_IS_OBJECT(root)) {
        op_diag_set(d, code, "expected a JSON object");
        *status = 422;
        yajl_tree_free(root);
        return NULL;
    }
    return root;
}

static void gen_tree(struct http_json *j, yajl_val v);

int http__parse_device(const char *body, size_t len, char **status, char **attributes,
                       struct op_diag *d)
{
    *status = *attributes = NULL;
    int rc = 0;
    yajl_val root = parse_object(body, len, "invalid_device", d, &rc);
    if (!root)
        return rc;
    rc = 0;
    yajl_val st = NULL, attrs = NULL;
    for (size_t i = 0; i < root->u.object.len && !rc; i++) {
        const char *k = root->u.object.keys[i];
        if (!strcmp(k, "status"))
            st = root->u.object.values[i];
        else if (!strcmp(k, "attributes"))
            attrs = root->u.object.values[i];
        else {
            op_diag_set(d, "invalid_device", "unknown field (allowed: status, attributes)");
            snprintf(d->field, sizeof d->field, "%.60s", k);
            rc = 422;
        }
    }
    if (!rc && (!st || !YAJL_IS_STRING(st) || !st->u.string[0] || strlen(st->u.string) > 256)) {
        op_diag_set(d, "invalid_device", "status must be a string of 1-256 bytes");
        snprintf(d->field, sizeof d->field, "status");
        rc = 422;
    }
    if (!rc && attrs && !YAJL_IS_OBJECT(attrs)) {
        op_diag_set(d, "invalid_device", "attributes must be a JSON object");
        snprintf(d->field, sizeof d->field, "attributes");
        rc = 422;
    }
    struct op_buf out;
    op_buf_init(&out, 16 * 1024);
    if (!rc) {
        struct http_json j;
        http__json_init(&j, &out);
        if (attrs)
            gen_tree(&j, attrs);
        else {
            http__json_obj_open(&j);
            http__json_obj_close(&j);
        }
        if (http__json_fini(&j)) {
            op_diag_set(d, "invalid_device", "attributes are larger than 16 KiB");
            snprintf(d->field, sizeof d->field, "attributes");
            rc = 422;
        }
    }
    if (!rc) {
        *status = op_strndup(st->u.string, strlen(st->u.string));
        *attributes = op_buf_steal(&out, NULL);
        if (!*status || !*attributes) {
            op_free(*status);
            op_free(*attributes);
            *status = *attributes = NULL;
            op_diag_set(d, "overloaded", "out of memory");
            rc = 503;
        }
    }
    op_buf_fini(&out);
    yajl_tree_free(root);
    return rc;
}

int http__parse_compat_data(const char *body, size_t len, char **id, double *value,
                            struct op_diag *d)
{
    *id = NULL;
    int rc = 0;
    yajl_val root = parse_object(body, len, "invalid_reading", d, &rc);
    if (!root)
        return rc;
    rc = 0;
    const char *idp[] = { "id", NULL }, *vp[] = { "value", NULL };
    yajl_val idv = yajl_tree_get(root, idp, yajl_t_string);
    yajl_val vv = yajl_tree_get(root, vp, yajl_t_number);
    if (!idv || !http__valid_name(idv->u.string, strlen(idv->u.string), true)) {
        op_diag_set(d, "invalid_reading", "id must be a string of 1-128 bytes of [A-Za-z0-9_.:/-]");
        snprintf(d->field, sizeof d->field, "id");
        rc = 422;
    } else if (!vv || !isfinite(YAJL_GET_DOUBLE(vv))) {
        op_diag_set(d, "invalid_reading", "value must be a finite number");
        snprintf(d->field, sizeof d->field, "value");
        rc = 422;
    } else {
        *value = YAJL_GET_DOUBLE(vv);
        *id = op_strndup(idv->u.string, strlen(idv->u.string));
        if (!*id) {
            op_diag_set(d, "overloaded", "out of memory");
            rc = 503;
        }
    }
    yajl_tree_free(root);
    return rc;
}

/* ---- output ------------------------------------------------------------ */

static void gen_print(void *ctx, const char *s, size_t len)
{
    struct http_json *j = ctx;
    if (!j->rc)
        j->rc = op_buf_append(j->out, s, len);
}

int http__json_init(struct http_json *j, struct op_buf *out)
{
    j->out = out;
    j->rc = OP_OK;
    yajl_gen g = yajl_gen_alloc(&alloc_funcs);
    if (!g) {
        j->gen = NULL;
        j->rc = OP_ENOMEM;
        return j->rc;
    }
    yajl_gen_config(g, yajl_gen_print_callback, gen_print, j);
    j->gen = g;
    return OP_OK;
}

int http__json_fini(struct http_json *j)
{
    if (j->gen)
        yajl_gen_free(j->gen);
    j->gen = NULL;
    return j->rc;
}

/* yajl_gen statuses other than ok mean our call sequence was wrong or the
 * output failed; either way the document is unusable. */
static void check(struct http_json *j, yajl_gen_status st)
{
    if (st != yajl_gen_status_ok && !j->rc)
        j->rc = OP_EINVAL;
}

#define GEN(j, call)                                                                               \
    do {                                                                                           \
        if ((j)->gen && !(j)->rc)                                                                  \
            check((j), call);                                                                      \
    } while (0)

void http__json_obj_open(struct http_json *j) { GEN(j, yajl_gen_map_open(j->gen)); }
void http__json_obj_close(struct http_json *j) { GEN(j, yajl_gen_map_close(j->gen)); }
void http__json_arr_open(struct http_json *j) { GEN(j, yajl_gen_array_open(j->gen)); }
void http__json_arr_close(struct http_json *j) { GEN(j, yajl_gen_array_close(j->gen)); }
void http__json_null(struct http_json *j) { GEN(j, yajl_gen_null(j->gen)); }

void http__json_key(struct http_json *j, const char *k)
{
    GEN(j, yajl_gen_string(j->gen, (const unsigned char *)k, strlen(k)));
}

void http__json_str(struct http_json *j, const char *s, size_t len)
{
    GEN(j, yajl_gen_string(j->gen, (const unsigned char *)s, len));
}

void http__json_double(struct http_json *j, double v)
{
    /* yajl_gen_double prints %.20g ("0.10000000000000000555"); emit the
     * shortest round-trip form instead. */
    char num[32];
    size_t n = op_fmt_double(num, v);
    GEN(j, yajl_gen_number(j->gen, num, n));
}

void http__json_int(struct http_json *j, int64_t v)
{
    GEN(j, yajl_gen_integer(j->gen, (long long)v));
}

static void gen_tree(struct http_json *j, yajl_val v)
{
    if (YAJL_IS_OBJECT(v)) {
        http__json_obj_open(j);
        for (size_t i = 0; i < v->u.object.len; i++) {
            http__json_key(j, v->u.object.keys[i]);
            gen_tree(j, v->u.object.values[i]);
        }
        http__json_obj_close(j);
    } else if (YAJL_IS_ARRAY(v)) {
        http__json_arr_open(j);
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_tree(j, v->u.array.values[i]);
        http__json_arr_close(j);
    } else if (YAJL_IS_STRING(v)) {
        http__json_str(j, v->u.string, strlen(v->u.string));
    } else if (YAJL_IS_NUMBER(v)) {
        GEN(j, yajl_gen_number(j->gen, v->u.number.r, strlen(v->u.number.r)));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        GEN(j, yajl_gen_bool(j->gen, YAJL_IS_TRUE(v)));
    } else {
        http__json_null(j);
    }
}

void http__json_raw(struct http_json *j, const char *text, size_t len)
{
    /* Stored attributes passed check_depth when they were written. */
    /* Stored attributes were produced by gen_tree, so they parse; a tree
     * keeps this simple and devices are small. */
    char err[64];
    char *copy = op_strndup(text, len);
    yajl_val v = copy ? yajl_tree_parse(copy, err, sizeof err) : NULL;
    if (!v) {
        if (!j->rc)
            j->rc = copy ? OP_ECORRUPT : OP_ENOMEM;
    } else {
        gen_tree(j, v);
        yajl_tree_free(v);
    }
    op_free(copy);
}

int http__parse_rule(const char *body, size_t len, char **text, struct op_diag *d)
{
    *text = NULL;
    int rc = 0;
    yajl_val root = parse_object(body, len, "invalid_rule", d, &rc);
    if (!root)
        return rc;
    rc = 0;
    struct op_buf out;
    op_buf_init(&out, 16 * 1024);
    /* Each pair becomes a `key = value` line for op_rules_kv_split, so a
     * key may not hold '=' or a newline and a value may not hold a newline;
     * the rule validator then sees exactly what the config file would give. */
    for (size_t i = 0; i < root->u.object.len && !rc; i++) {
        const char *k = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        const char *s = NULL;
        if (YAJL_IS_STRING(v))
            s = v->u.string;
        else if (YAJL_IS_NUMBER(v))
            s = v->u.number.r;
        else if (YAJL_IS_TRUE(v))
            s = "true";
        else if (YAJL_IS_FALSE(v))
            s = "false";
        if (!s || strpbrk(k, "=\n") || strchr(s, '\n')) {
            op_diag_set(d, "invalid_rule",
                        "each value must be a string, number or boolean on one line");
            snprintf(d->field, sizeof d->field, "%.60s", k);
            rc = 422;
        } else if (op_buf_appendf(&out, "%s = %s\n", k, s) != OP_OK) {
            op_diag_set(d, "invalid_rule", "the definition is larger than 16 KiB");
            rc = 413;
        }
    }
    if (!rc) {
        if (!(*text = op_buf_steal(&out, NULL)) && !(*text = op_strndup("", 0))) {
            op_diag_set(d, "overloaded", "out of memory");
            rc = 503;
        }
    }
    op_buf_fini(&out);
    yajl_tree_free(root);
    return rc;
}
