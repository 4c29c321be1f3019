/*
 * rules: the real-time rule engine. Rules select sensors by exact name or
 * glob and watch their readings: thresholds with hysteresis and a minimum
 * duration, rate of change over a span, tumbling-window aggregates that
 * produce derived series, streaming anomaly detectors (EWMA, median/MAD)
 * and silence. Alerts have a lifecycle: one `firing` event when the
 * condition starts, one `resolved` event when it clears.
 *
 * This is a pure in-process library: no I/O, no threads, no store calls.
 * It depends on util and core, and on store.h only for struct op_reading.
 * An engine is single-threaded by contract: every call on one engine must
 * come from one thread at a time (the store's writer or a rules thread).
 * Definitions (struct op_rules_def) are immutable once parsed and may be
 * shared between threads.
 *
 * docs/rules.md describes the rule keys, each kind, the alert lifecycle and
 * how out-of-order readings are treated.
 */
#ifndef OUTPOST_RULES_H
#define OUTPOST_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/core.h"
#include "outpost/store.h"
#include "outpost/util.h"

/* ---- definitions ----------------------------------------------------- */

enum op_rules_kind {
    OP_RULES_THRESHOLD = 1, /* above / below / outside a band */
    OP_RULES_RATE = 2,      /* change over a time span */
    OP_RULES_WINDOW = 3,    /* tumbling-window aggregates, derived series */
    OP_RULES_ANOMALY = 4,   /* EWMA or median/MAD z-score */
    OP_RULES_SILENCE = 5,   /* no reading for a given time */
};

#define OP_RULES_NAME_MAX 64       /* rule names: 1..64 bytes of [A-Za-z0-9_.-] */
#define OP_RULES_PATTERNS_MAX 32   /* names or globs in `sensors` */
#define OP_RULES_SENSOR_MAX 128    /* bytes in a sensor name or pattern */
#define OP_RULES_DERIVED_MAX 160   /* bytes in a derived series name */

/* One key = value pair of a rule definition, as views (not NUL-terminated).
 * The config file's [rule.NAME] sections and the HTTP API's JSON objects
 * are both turned into such pairs, so there is one validator. */
struct op_rules_kv {
    struct op_str key;
    struct op_str value;
};

/* A validated rule definition. Opaque; immutable once parsed. */
struct op_rules_def;

/* Parses and validates the definition of the rule called name[0..name_len)
 * from kv[0..n). On success *out is a definition the caller frees with
 * op_rules_def_free. On failure returns OP_EINVAL with d->code =
 * "invalid_rule", d->field = the offending key ("name" for a bad name, the
 * missing key for a missing one) and a one-sentence d->msg, or OP_ENOMEM.
 * d may be NULL. Any thread. */
int op_rules_def_parse(const char *name, size_t name_len, const struct op_rules_kv *kv, size_t n,
                       struct op_rules_def **out, struct op_diag *d);
/* NULL-safe. */
void op_rules_def_free(struct op_rules_def *def);
/* The rule's name (NUL-terminated, owned by def) and kind. */
const char *op_rules_def_name(const struct op_rules_def *def);
enum op_rules_kind op_rules_def_kind(const struct op_rules_def *def);
/* Appends the canonical form of def as `key = value` lines, every key that
 * applies to its kind with its effective value (defaults filled in). The
 * lines parse back to an equal definition. OP_OK, OP_ETOOBIG, OP_ENOMEM. */
int op_rules_def_format(const struct op_rules_def *def, struct op_buf *out);
/* Whether a and b define the same rule (same name and effective values). */
bool op_rules_def_equal(const struct op_rules_def *a, const struct op_rules_def *b);

/* ---- events and the sink --------------------------------------------- */

enum op_rules_state {
    OP_RULES_FIRING = 1,
    OP_RULES_RESOLVED = 2,
};

/* Why an alert resolved. */
enum op_rules_cause {
    OP_RULES_CAUSE_CLEARED = 0,      /* the condition cleared (or a firing event) */
    OP_RULES_CAUSE_RULE_CHANGED = 1, /* the rule was replaced by a different definition */
    OP_RULES_CAUSE_RULE_REMOVED = 2, /* the rule was removed */
};

/* An alert event, and an entry of op_rules_alerts. Every pointer is
 * borrowed for the duration of the callback only. An alert is identified
 * by (rule, sensor): at most one is firing per pair. */
struct op_rules_alert {
    const char *rule;        /* NUL-terminated */
    const char *sensor;      /* the input sensor, sensor_len bytes */
    uint32_t sensor_len;
    enum op_rules_kind kind;
    enum op_rules_state state;
    enum op_rules_cause cause;
    const char *severity;    /* "info", "warning" or "critical" */
    /* value is what the rule watches, at this event: the reading
     * (threshold, anomaly), the change over the span (rate), the aggregate
     * (window), or milliseconds without a reading (silence). score is what
     * is compared with threshold: the z-score for anomaly rules, value for
     * every other kind. threshold is the level crossed when firing and the
     * clear level when resolved (for a resolve caused by a rule change, the
     * level at firing). */
    double value;
    double score;
    double threshold;
    /* Times, in the readings' clock. since: when the condition began (a
     * window rule: the start of the first window that breached; silence:
     * the last reading). fired_at: when it fired (a window rule: the end of
     * the window that fired it; silence: the tick). ts: this event's time,
     * == fired_at when firing; when resolving, the reading's (the sensor's
     * newest for a threshold), the window's end, or for a rule change the
     * sensor's newest reading. */
    int64_t since;
    int64_t fired_at;
    int64_t ts;
};

/* A derived reading: one aggregate of a closed window. r.sensor is
 * "<sensor>:<fn>_<window>", e.g. "line1/temp:avg_1m"; r.ts is the window's
 * start. important is the rule's `important` key. */
struct op_rules_derived {
    const char *rule;
    struct op_reading r;
    bool important;
};

typedef void op_rules_alert_fn(void *ctx, const struct op_rules_alert *a);
typedef void op_rules_derived_fn(void *ctx, const struct op_rules_derived *d);
/* The reading at index in the batch given to op_rules_eval is important
 * for rule (see docs/rules.md: readings of an alert episode). Called once
 * per (reading, rule). */
typedef void op_rules_important_fn(void *ctx, size_t index, const struct op_reading *r,
                                   const char *rule);

/* Where events go. Any callback may be NULL (that event is dropped), and a
 * NULL sink makes an evaluation update state silently (to rebuild detector
 * baselines from history after a restart). Callbacks run synchronously on
 * the caller's thread and must not call back into the engine. */
struct op_rules_sink {
    op_rules_alert_fn *alert;
    op_rules_derived_fn *derived;
    op_rules_important_fn *important;
    void *ctx;
};

/* ---- the engine ------------------------------------------------------ */

struct op_rules;

struct op_rules_opts {
    size_t max_rules;   /* rules at once; 0 = 1,024 */
    size_t max_sensors; /* distinct sensor names tracked; 0 = 100,000 */
};

/* Creates an empty engine. opts may be NULL for the defaults. OP_OK or
 * OP_ENOMEM. */
int op_rules_create(struct op_rules **out, const struct op_rules_opts *opts);
/* Frees the engine and all its state without emitting events. NULL-safe. */
void op_rules_destroy(struct op_rules *eng);

/* Adds the rule def names, or replaces the rule of that name. def is
 * borrowed (the engine keeps its own copy). Replacing a rule by an equal
 * definition changes nothing (a config reload keeps windows and alerts);
 * by a different one, it drops the old rule's state and emits `resolved`
 * with cause RULE_CHANGED for each of its firing alerts. Sensors already
 * known are matched at once. Returns OP_OK, OP_ETOOBIG (max_rules reached)
 * or OP_ENOMEM; on error the rules and their state are unchanged (a
 * silence rule's exactly named sensors may have been added to the sensor
 * table, without state). */
int op_rules_put(struct op_rules *eng, const struct op_rules_def *def,
                 const struct op_rules_sink *sink);
/* Removes the rule called name[0..len), emitting `resolved` with cause
 * RULE_REMOVED for each of its firing alerts. OP_OK or OP_ENOTFOUND. */
int op_rules_remove(struct op_rules *eng, const char *name, size_t len,
                    const struct op_rules_sink *sink);
/* The engine's copy of the rule called name[0..len), or NULL. Valid until
 * the rule is next put or removed. */
const struct op_rules_def *op_rules_get(const struct op_rules *eng, const char *name, size_t len);
/* How many rules the engine holds (O(1)). */
size_t op_rules_count(const struct op_rules *eng);
/* Whether any rule selects the sensor name[0..len). */
bool op_rules_selects_any(const struct op_rules *eng, const char *name, size_t len);
/* How far back (in reading time) readings still shape the rules' state:
 * the longest of open window + grace, rate span, and `for` hold. Readings
 * older than the newest minus this can be skipped when rebuilding state
 * after a restart (anomaly baselines excepted: they learn from any). */
int64_t op_rules_history_ms(const struct op_rules *eng);
/* Calls fn for each rule, in the order they were added; returns the count. */
typedef void op_rules_def_fn(void *ctx, const struct op_rules_def *def);
size_t op_rules_each(const struct op_rules *eng, op_rules_def_fn *fn, void *ctx);

/* Evaluates a batch of committed readings r[0..n) against every rule, in
 * order, emitting events to sink. Readings are borrowed. A reading older
 * than its sensor's newest is out of order: see docs/rules.md for how each
 * kind treats it. Returns OP_OK, or OP_ENOMEM when a sensor seen for the
 * first time could not be tracked (the rest of the batch is still
 * evaluated; the sensor is tried again at its next reading). */
int op_rules_eval(struct op_rules *eng, const struct op_reading *r, size_t n,
                  const struct op_rules_sink *sink);

/* Time-driven events, with now_ms on the readings' clock (Unix ms): silence
 * rules fire, windows whose end plus grace has passed close (and emit their
 * derived readings and alerts). Call it periodically, e.g. every second.
 * Returns OP_OK. */
int op_rules_tick(struct op_rules *eng, int64_t now_ms, const struct op_rules_sink *sink);

/* ---- state export and restore ----------------------------------------- */

/* Calls fn for every firing alert (state FIRING, cause CLEARED, ts =
 * fired_at); returns the count. For persisting alerts across a restart. */
size_t op_rules_alerts(const struct op_rules *eng, op_rules_alert_fn *fn, void *ctx);

/* Marks (a->rule, a->sensor) as firing, as exported by op_rules_alerts:
 * no second `firing` is emitted, and `resolved` follows when the condition
 * clears. Uses rule, sensor, value, since and fired_at. OP_OK, OP_ENOTFOUND
 * (no such rule, or the rule does not select that sensor: the caller
 * resolves the stored alert itself), OP_ETOOBIG (a sensor cap is reached)
 * or OP_ENOMEM. */
int op_rules_alert_seed(struct op_rules *eng, const struct op_rules_alert *a);

/* An open (not yet closed) tumbling window of a window rule. sum_d and
 * sum_d2 are the sums of (x - first) and (x - first)^2, which the engine
 * keeps for a numerically stable stddev; persist them as given. */
struct op_rules_window {
    const char *rule;
    const char *sensor;
    uint32_t sensor_len;
    int64_t start; /* Unix ms, a multiple of the rule's window */
    uint32_t count;
    double sum, min, max, first, last, sum_d, sum_d2;
};
typedef void op_rules_window_fn(void *ctx, const struct op_rules_window *w);

/* Calls fn for every open window; returns the count. */
size_t op_rules_windows(const struct op_rules *eng, op_rules_window_fn *fn, void *ctx);
/* Restores an open window as exported by op_rules_windows. OP_OK,
 * OP_ENOTFOUND (no such rule, not a window rule, or it does not select the
 * sensor), OP_EINVAL (start not aligned, count 0), OP_ETOOBIG or
 * OP_ENOMEM. */
int op_rules_window_seed(struct op_rules *eng, const struct op_rules_window *w);

/* ---- statistics ------------------------------------------------------- */

/* Counters since creation; each is exported by the integration as a
 * Prometheus counter (outpost_rules_*). */
struct op_rules_stats {
    uint64_t readings;        /* readings given to op_rules_eval */
    uint64_t evaluations;     /* (reading, rule) pairs evaluated */
    uint64_t out_of_order;    /* readings older than their sensor's newest */
    uint64_t late;            /* readings a window ignored: its window had closed */
    uint64_t ignored;         /* readings a rate or anomaly rule ignored as out of order */
    uint64_t nonfinite;       /* values not used: non-finite readings, rates, scores or
                               * aggregates outside the double range */
    uint64_t derived_dropped; /* derived readings not emitted: name over OP_RULES_DERIVED_MAX */
    uint64_t sensors_dropped; /* readings of sensors not tracked: max_sensors reached */
    uint64_t rule_sensors_dropped; /* (rule, sensor) pairs not tracked: a rule's max_sensors */
    uint64_t alloc_failures;  /* state that could not be allocated */
    uint64_t alerts_fired;
    uint64_t alerts_resolved;
    uint64_t derived;         /* derived readings emitted */
    size_t rules;             /* current rules */
    size_t sensors;           /* current distinct sensors tracked */
    size_t pairs;             /* current (rule, sensor) states */
    size_t bytes;             /* approximate memory held by the engine */
};
void op_rules_stats(const struct op_rules *eng, struct op_rules_stats *out);

/* Per-rule figures: sensors it tracks and sensors it did not track because
 * of its max_sensors. OP_OK or OP_ENOTFOUND. */
struct op_rules_rule_stats {
    size_t sensors;
    uint64_t sensors_dropped;
    uint64_t fired;
};
int op_rules_rule_stats(const struct op_rules *eng, const char *name, size_t len,
                        struct op_rules_rule_stats *out);

/* ---- the runner: the engine on committed readings (rules_runner.c) ---- */

struct op_rules_runner;

/* Loads the rules stored in store into a new engine, seeds the alerts
 * still firing, and starts the rules thread, which follows the store's
 * committed readings by seq (a persisted cursor; a first start begins at
 * the newest reading), evaluates them, ticks every second, and stores alert
 * events with the cursor. Rule changes committed to the store (PUT and
 * DELETE /v1/rules) are picked up at the next wake-up. Start it before
 * readings flow; store must outlive it. OP_OK, OP_EIO, OP_ENOMEM. Main
 * thread. */
struct op_store_alert;
/* Called on the rules thread with alert events right after they were
 * committed, in commit order, with their store ids set. It must not block
 * for long (it delays the rules, not ingest): copy and hand off. */
typedef void op_rules_publish_fn(void *ctx, const struct op_store_alert *events, size_t n);

/* A rule of the config file's [rule.NAME] sections, validated. */
struct op_rules_config_rule {
    char name[OP_RULES_NAME_MAX + 1];
    char *text; /* canonical definition text (op_rules_def_format) */
};
struct op_config;
/* Validates every [rule.NAME] section of cfg; *out (free with
 * op_rules_config_free) gets them in file order. A bad one: OP_EINVAL with
 * d naming the file, the line of the offending key and the reason. */
int op_rules_config_parse(const struct op_config *cfg, struct op_rules_config_rule **out,
                          size_t *n, struct op_diag *d);
void op_rules_config_free(struct op_rules_config_rule *rules, size_t n);

struct op_rules_runner_opts {
    op_rules_publish_fn *publish; /* NULL: events are only stored */
    void *publish_ctx;
    /* The config file's rules. At start the store's rules from the config
     * are made these (put when new or changed, deleted when gone); rules
     * from the API are left alone, and the API cannot change these. */
    const struct op_rules_config_rule *config_rules;
    size_t nconfig_rules;
};

/* opts may be NULL. */
int op_rules_runner_start(struct op_rules_runner **out, struct op_store *store,
                          const struct op_rules_runner_opts *opts);
/* Evaluates nothing more, persists the cursor, joins the thread, frees.
 * Call before op_store_close. NULL-safe. */
void op_rules_runner_stop(struct op_rules_runner *rr);
/* Makes rules[0..n) (copied) the config file's rules from now on (SIGHUP):
 * the rules thread applies them as at start, at its next wake-up, which
 * this call brings about. OP_OK or OP_ENOMEM. Any thread. */
int op_rules_runner_reconfig(struct op_rules_runner *rr, const struct op_rules_config_rule *rules,
                             size_t n);

/* ---- the webhook sink (rules_webhook.c) ---------------------------------- */

/* Writes one alert event as a JSON object into out (the caller owns out);
 * OP_OK or an error. The daemon passes the HTTP API's own writer
 * (op_http_alert_json), so the webhook's payload is one item of
 * GET /v1/alerts. Called on the rules thread. */
typedef int op_rules_alert_format_fn(const struct op_store_alert *a, struct op_buf *out);

struct op_rules_webhook_opts {
    const char *url;       /* http:// or https://; copied */
    int64_t timeout_ms;    /* one request, connecting included (0: 5 s) */
    size_t queue_max;      /* events held; when full the oldest is dropped (0: 1024) */
    const char *ca_file;   /* PEM CA file for https (NULL or "": the system bundle); copied */
    const char *token;     /* sent as a Bearer token (NULL or "": none); copied */
    op_rules_alert_format_fn *format; /* required */
    int64_t backoff_base_ms, backoff_max_ms; /* 0: 500 ms doubling up to 60 s */
};

struct op_rules_webhook;

/* Checks the options (the URL is parsed, the CA file must be readable),
 * registers the outpost_rules_webhook_* metrics and starts the delivery
 * thread. OP_OK, OP_EINVAL with the reason in d (d->field names the config
 * key), OP_ENOMEM. Main thread. */
int op_rules_webhook_start(struct op_rules_webhook **out, const struct op_rules_webhook_opts *o,
                           struct op_diag *d);
/* An op_rules_publish_fn (ctx is the webhook): formats and queues events,
 * never waits for the network; when the queue is full the oldest queued
 * event is dropped and counted. Events are POSTed one at a time, in order;
 * 2xx delivers, 4xx other than 408/429 gives up on the event (counted), the
 * rest is retried with backoff (Retry-After honoured, up to the cap). Any
 * thread, but one at a time (the rules thread). */
void op_rules_webhook_publish(void *wh, const struct op_store_alert *events, size_t n);
/* Stops the thread (a request in flight is aborted within about a second),
 * logs and frees what was still queued. NULL-safe. Main thread. */
void op_rules_webhook_stop(struct op_rules_webhook *wh);

/* Splits definition text (`key = value` lines, as op_rules_def_format
 * writes) into at most max pairs of views into text; lines without '='
 * are skipped. Returns the count. Any thread. */
size_t op_rules_kv_split(const char *text, size_t len, struct op_rules_kv *kv, size_t max);

/* Names, for logs and the API. */
const char *op_rules_kind_name(enum op_rules_kind k);
const char *op_rules_state_name(enum op_rules_state s);
const char *op_rules_cause_name(enum op_rules_cause c);

#endif
