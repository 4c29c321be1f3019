/*
 * The rules and alerts routes of the v1 API. A rule is a name and a JSON
 * object of key -> string/number/bool, validated by the rule engine's own
 * parser (op_rules_def_parse) and stored in its canonical text; the rules
 * runner picks changes up from the store (see docs/rules.md). Alerts are
 * the events the runner stored, queried by state and time; the one writer
 * of an alert's JSON object here also serves the SSE stream
 * (http_stream.c) and the webhook sink (op_http_alert_json).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http_int.h"
#include "outpost/err.h"
#include "outpost/rules.h"

#define RULE_KEYS_MAX 32
#define ALERTS_LIMIT_DEFAULT 100
#define ALERTS_LIMIT_MAX 10000

static struct op_str trim(const char *p, size_t len)
{
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        len--;
    return (struct op_str){ p, len };
}

static void write_rule(struct http_json *j, const struct op_rule_info *ri)
{
    struct op_rules_kv kv[RULE_KEYS_MAX];
    size_t n = op_rules_kv_split(ri->text, strlen(ri->text), kv, RULE_KEYS_MAX);
    http__json_obj_open(j);
    http__json_key(j, "name");
    http__json_str(j, ri->name, strlen(ri->name));
    http__json_key(j, "definition");
    http__json_obj_open(j);
    for (size_t i = 0; i < n; i++) {
        struct op_str k = trim(kv[i].key.p, kv[i].key.len);
        struct op_str v = trim(kv[i].value.p, kv[i].value.len);
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.p);
        http__json_key(j, key);
        http__json_str(j, v.p, v.len);
    }
    http__json_obj_close(j);
    http__json_key(j, "updated_at");
    http__json_int(j, ri->updated_at);
    http__json_key(j, "origin");
    http__json_str(j, ri->from_config ? "config" : "api", ri->from_config ? 6 : 3);
    http__json_obj_close(j);
}

/* An API write met a rule of the config file: 409, change it there. */
static void reply_locked(struct http_req *r, const char *name)
{
    http__reply_errorf(r, 409, "rule_in_config", "name",
                       "rule '%.64s' is defined in the config file; change it there", name);
}

static void reply_rule(struct http_req *r, unsigned status, const struct op_rule_info *ri)
{
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, HTTP_RESPONSE_MAX);
    http__json_init(&j, &b);
    write_rule(&j, ri);
    if (http__json_fini(&j) != OP_OK) {
        op_buf_fini(&b);
        http__reply_errorf(r, 500, "internal", NULL, "cannot build the response");
        return;
    }
    http__reply_json(r, status, &b);
}

static void put_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rule_locked) {
        reply_locked(r, w->rule_name);
    } else if (w->rc) {
        http__reply_store_error(r, w->rc);
    } else {
        struct op_rule_info ri = { w->rule_name, w->rule_text, w->updated_at, false };
        reply_rule(r, w->created ? 201 : 200, &ri);
    }
    http__resume(r);
}

void http__h_rule_put(struct http_req *r)
{
    struct op_diag d;
    op_diag_clear(&d);
    const char *body = r->body.data ? r->body.data : "";
    int st = http__parse_rule(body, r->body.len, &r->owned[0], &d);
    if (st) {
        http__reply_error(r, (unsigned)st, &d);
        return;
    }
    struct op_rules_kv kv[RULE_KEYS_MAX + 1];
    size_t n = op_rules_kv_split(r->owned[0], strlen(r->owned[0]), kv, RULE_KEYS_MAX + 1);
    if (n > RULE_KEYS_MAX) {
        http__reply_errorf(r, 422, "invalid_rule", NULL, "a rule has at most %d keys",
                           RULE_KEYS_MAX);
        return;
    }
    struct op_rules_def *def = NULL;
    int rc = op_rules_def_parse(r->param.p, r->param.len, kv, n, &def, &d);
    if (rc == OP_EINVAL) {
        http__reply_error(r, 422, &d);
        return;
    }
    struct op_buf text;
    op_buf_init(&text, 16 * 1024);
    if (rc == OP_OK)
        rc = op_rules_def_format(def, &text);
    op_rules_def_free(def);
    if (rc == OP_OK && !(r->owned[1] = op_buf_steal(&text, NULL)))
        rc = OP_ENOMEM;
    op_buf_fini(&text);
    if (rc != OP_OK) {
        http__reply_store_error(r, rc);
        return;
    }
    r->write.op = OP_STORE_RULE_PUT;
    r->write.rule_name = r->param.p; /* the last path segment: NUL-terminated */
    r->write.rule_text = r->owned[1];
    r->write.updated_at = op_time_now_ms();
    http__submit_write(r, put_done);
}

static int got_rule(void *ctx, const struct op_rule_info *ri)
{
    reply_rule(ctx, 200, ri);
    return 0;
}

static void get_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    struct http_req *r = job->ctx;
    int rc = op_store_get_rule(rd, r->param.p, got_rule, r);
    if (rc == OP_ENOTFOUND)
        http__reply_errorf(r, 404, "rule_not_found", "name", "no rule '%.64s'", r->param.p);
    else if (rc < 0)
        http__reply_store_error(r, rc);
    http__resume(r);
}

void http__h_rule_get(struct http_req *r)
{
    http__submit_read(r, get_job);
}

static void delete_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rule_locked)
        reply_locked(r, w->rule_name);
    else if (w->rc == OP_ENOTFOUND)
        http__reply_errorf(r, 404, "rule_not_found", "name", "no rule '%.64s'", w->rule_name);
    else if (w->rc)
        http__reply_store_error(r, w->rc);
    else
        http__reply_empty(r, 204);
    http__resume(r);
}

void http__h_rule_delete(struct http_req *r)
{
    r->write.op = OP_STORE_RULE_DELETE;
    r->write.rule_name = r->param.p;
    http__submit_write(r, delete_done);
}

static int list_one(void *ctx, const struct op_rule_info *ri)
{
    struct http_json *j = ctx;
    write_rule(j, ri);
    return j->rc != 0;
}

static int list_rules(struct http_req *r, struct op_store_reader *rd, struct http_json *j)
{
    (void)r;
    return op_store_list_rules(rd, list_one, j);
}

static void list_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, "rules", list_rules);
    http__resume(job->ctx);
}

void http__h_rules_list(struct http_req *r)
{
    http__submit_read(r, list_job);
}

/* ---- alerts ---------------------------------------------------------- */

static int alert_one(void *ctx, const struct op_store_alert *a)
{
    struct http_json *j = ctx;
    http__json_obj_open(j);
    http__json_key(j, "id");
    http__json_int(j, a->id);
    http__json_key(j, "rule");
    http__json_str(j, a->rule, strlen(a->rule));
    http__json_key(j, "sensor");
    http__json_str(j, a->sensor, a->sensor_len);
    http__json_key(j, "kind");
    http__json_str(j, a->kind, strlen(a->kind));
    http__json_key(j, "state");
    http__json_str(j, a->state, strlen(a->state));
    http__json_key(j, "severity");
    http__json_str(j, a->severity, strlen(a->severity));
    http__json_key(j, "cause");
    http__json_str(j, a->cause, strlen(a->cause));
    http__json_key(j, "value");
    http__json_double(j, a->value);
    http__json_key(j, "threshold");
    http__json_double(j, a->threshold);
    http__json_key(j, "since");
    http__json_int(j, a->since);
    http__json_key(j, "fired_at");
    http__json_int(j, a->fired_at);
    http__json_key(j, "ts");
    http__json_int(j, a->ts);
    http__json_obj_close(j);
    return j->rc != 0;
}

int op_http_alert_json(const struct op_store_alert *a, struct op_buf *out)
{
    struct http_json j;
    if (http__json_init(&j, out) == OP_OK)
        alert_one(&j, a);
    return http__json_fini(&j);
}

static void alerts_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    struct http_req *r = job->ctx;
    struct op_alert_query q = { .state = r->q.range.sensor, .since = r->q.range.from,
                                .limit = r->q.range.limit };
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, HTTP_RESPONSE_MAX);
    http__json_init(&j, &b);
    http__json_obj_open(&j);
    http__json_key(&j, "alerts");
    http__json_arr_open(&j);
    int rc = op_store_query_alerts(rd, &q, alert_one, &j);
    http__json_arr_close(&j);
    http__json_obj_close(&j);
    http__reply_json_doc(r, &j, &b, rc < 0 ? rc : 0);
    http__resume(r);
}

void http__h_alerts(struct http_req *r)
{
    const char *state = http__query(r, "state");
    const char *since = http__query(r, "since");
    const char *limit = http__query(r, "limit");
    int64_t v;
    r->q.range.sensor = NULL;
    r->q.range.from = INT64_MIN;
    r->q.range.limit = ALERTS_LIMIT_DEFAULT;
    if (state) {
        if (strcmp(state, "firing") && strcmp(state, "resolved")) {
            http__reply_errorf(r, 400, "invalid_query", "state", "state is firing or resolved");
            return;
        }
        r->q.range.sensor = !strcmp(state, "firing") ? "firing" : "resolved";
    }
    if (since) {
        if (op_parse_i64(since, strlen(since), &v) != OP_OK) {
            http__reply_errorf(r, 400, "invalid_query", "since", "since is Unix milliseconds");
            return;
        }
        r->q.range.from = v;
    }
    if (limit) {
        if (op_parse_i64(limit, strlen(limit), &v) != OP_OK || v < 1 || v > ALERTS_LIMIT_MAX) {
            http__reply_errorf(r, 400, "invalid_query", "limit", "limit is 1-%d",
                               ALERTS_LIMIT_MAX);
            return;
        }
        r->q.range.limit = v;
    }
    http__submit_read(r, alerts_job);
}
