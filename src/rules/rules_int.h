/*
 * rules: private declarations shared by the files of src/rules/. Nothing
 * outside this folder includes it.
 *
 * Layout. The engine keeps one entry per distinct sensor name (struct
 * rules__sensor) in a dense array indexed by an open-addressing hash table.
 * Each sensor owns one contiguous array of slots, one per rule that selects
 * it: the per-(rule, sensor) state. A reading is therefore one hash lookup
 * followed by a walk over adjacent memory; nothing is allocated per reading
 * in steady state. Which rules select a sensor is resolved once, when the
 * sensor is first seen, and updated for every known sensor when a rule is
 * put or removed.
 */
#ifndef OUTPOST_RULES_INT_H
#define OUTPOST_RULES_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "outpost/rules.h"

/* ---- definitions (rules_def.c) --------------------------------------- */

enum rules__fn {
    RULES__FN_COUNT = 0,
    RULES__FN_MIN,
    RULES__FN_MAX,
    RULES__FN_AVG,
    RULES__FN_SUM,
    RULES__FN_FIRST,
    RULES__FN_LAST,
    RULES__FN_STDDEV,
    RULES__FN_N
};
enum rules__dir { RULES__DIR_ANY = 0, RULES__DIR_UP, RULES__DIR_DOWN };
enum rules__method { RULES__EWMA = 0, RULES__MAD };
enum rules__cmp { RULES__GT = 0, RULES__GE, RULES__LT, RULES__LE };

/* Bounds checked by the parser. */
#define RULES__MAX_SENSORS_LIMIT 1000000
#define RULES__DURATION_MAX (366LL * 86400000LL) /* a year */
#define RULES__SAMPLES_MIN 5
#define RULES__SAMPLES_MAX 4096
#define RULES__WARMUP_MAX 1000000

/* Every field holds its effective value (defaults filled in), so two
 * definitions are equal when their fields are. */
struct op_rules_def {
    char name[OP_RULES_NAME_MAX + 1];
    enum op_rules_kind kind;
    uint32_t npat;
    char pat[OP_RULES_PATTERNS_MAX][OP_RULES_SENSOR_MAX + 1];
    int severity; /* index into rules__severity_names */
    bool important;
    int64_t max_sensors;
    /* threshold */
    bool has_above, has_below;
    double above, below;
    /* clear level(s) of threshold, rate, anomaly and window alerts; for a
     * one-sided rule only the side that fires is used */
    double clear_lo, clear_hi;
    int64_t for_ms;
    /* rate */
    int64_t span_ms;
    double rate;
    int direction; /* enum rules__dir, rate and anomaly */
    /* window */
    int64_t window_ms, grace_ms;
    unsigned fns; /* bit (1 << enum rules__fn) per derived series */
    bool has_alert;
    int alert_fn, alert_cmp;
    double alert_level;
    /* anomaly */
    int method;
    double z, alpha, min_sd;
    int64_t warmup, samples;
    /* silence */
    int64_t silence_ms;
};

extern const char *const rules__fn_names[RULES__FN_N];
extern const char *const rules__severity_names[3];

/* Writes the canonical text of a duration ("1m", "90s", "1500ms") into
 * buf (24 bytes); returns its length. */
size_t rules__fmt_duration(char *buf, int64_t ms);
/* Whether name[0..len) ends like a derived series name (":avg_1m"); window
 * rules never select such names, so derived series fed back into the
 * engine cannot cascade. */
bool rules__is_derived_name(const char *name, size_t len);

/* ---- engine state ----------------------------------------------------- */

enum rules__status { RULES__IDLE = 0, RULES__PENDING = 1, RULES__FIRING = 2 };

/* slot flags */
#define RULES__F_SIDE_LO 0x01  /* firing because below the low level */
#define RULES__F_NOCLOCK 0x02  /* silence: never seen, clock starts at next tick */
#define RULES__F_HISTORY 0x04  /* window: start holds the last window's start */

/* The state of one rule for one sensor: an alert lifecycle (status, since,
 * fired, fval) and the kind's own state. 96 bytes. */
struct rules__slot {
    uint16_t rule;  /* index into op_rules.rules */
    uint8_t status; /* enum rules__status */
    uint8_t flags;
    uint32_t n;     /* window: readings in the open window; anomaly: readings seen */
    int64_t since;  /* pending/firing: when the condition began */
    int64_t fired;  /* firing: when it fired */
    double fval;    /* firing: the value at firing */
    union {
        struct {
            void *ext; /* struct rules__rate_ext, allocated at the first reading */
            int64_t last_ts;
        } rate;
        struct {
            int64_t start; /* open window [start, start + window) */
            double sum, min, max, first, last, sum_d, sum_d2;
        } win;
        struct {
            double fscore; /* z at firing */
            double mean, var;
            int64_t last_ts;
            void *ext; /* MAD: struct rules__mad_ext */
        } anom;
        struct {
            int64_t last_seen;
        } sil;
    } u;
};

_Static_assert(sizeof(struct rules__slot) == 96, "docs/rules.md quotes 96 bytes per pair");

/* Pattern classes, so that the common cases skip fnmatch. */
enum rules__pat { RULES__PAT_EXACT = 0, RULES__PAT_PREFIX, RULES__PAT_GLOB };

/* The condition of an alert: breach when score > hi (>= if incl) on the
 * high side or score < lo (<=) on the low side; resolve when back within
 * the clear levels. */
struct rules__level {
    bool use_hi, use_lo, incl;
    double hi, lo, clear_hi, clear_lo;
    int64_t for_ms;
};

struct rules__kind;

/* A rule as the engine runs it. */
struct rules__rule {
    struct op_rules_def def;
    uint64_t seq; /* order of addition */
    const struct rules__kind *ops;
    struct rules__level level;
    uint8_t pat_class[OP_RULES_PATTERNS_MAX];
    uint16_t pat_len[OP_RULES_PATTERNS_MAX];
    char suffix[RULES__FN_N][32]; /* window: ":avg_1m" per fn */
    uint8_t suffix_len[RULES__FN_N];
    size_t nsensors;  /* slots held */
    uint64_t dropped; /* sensors not tracked: max_sensors */
    uint64_t fired;
};

struct rules__sensor {
    char *name; /* NUL-terminated copy */
    uint32_t len;
    uint32_t hash;
    int64_t max_ts; /* newest reading's ts, INT64_MIN before the first */
    struct rules__slot *slots;
    uint32_t n, cap;
};

struct op_rules {
    size_t max_rules, max_sensors;
    struct rules__rule **rules; /* max_rules entries, NULL = free index */
    size_t nrules;
    uint64_t seq;
    size_t ntick; /* window and silence rules: op_rules_tick has work */
    struct rules__sensor *sensors;
    size_t nsensors, capsensors;
    /* open addressing: hash and sensor index + 1 (0 = empty) */
    struct rules__bucket {
        uint32_t hash;
        uint32_t idx1;
    } *table;
    size_t tmask;
    struct op_rules_stats st;
};

/* One evaluation: what a kind's eval or tick needs beyond its slot. */
struct rules__ev {
    struct op_rules *eng;
    const struct op_rules_sink *sink;
    const struct rules__sensor *sensor;
    const struct op_reading *r; /* NULL on tick */
    size_t index;               /* r's index in the batch */
    int64_t ts_max;             /* the sensor's newest ts, this reading included */
    bool ooo;                   /* r is older than the sensor's newest */
};

/* A kind's behaviour (a vtable per kind, chosen by table lookup). */
struct rules__kind {
    enum op_rules_kind kind;
    /* Prepares a new slot. */
    void (*init)(const struct rules__rule *rule, struct rules__slot *s);
    /* Evaluates ev->r. */
    void (*eval)(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s);
    /* Time-driven work at now_ms, or NULL. */
    void (*tick)(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s,
                 int64_t now_ms);
    /* Frees what the slot owns, or NULL. */
    void (*drop)(struct rules__slot *s);
    /* Bytes the slot owns beyond itself. */
    size_t (*ext_bytes)(const struct rules__rule *rule, const struct rules__slot *s);
};

extern const struct rules__kind rules__threshold_kind;
extern const struct rules__kind rules__rate_kind;
extern const struct rules__kind rules__window_kind;
extern const struct rules__kind rules__anomaly_kind;
extern const struct rules__kind rules__silence_kind;

/* rules_threshold.c: compiles def's condition into rule->level. */
void rules__level_compile(struct rules__rule *rule);
/* Runs the alert lifecycle on one evaluated quantity: score is compared
 * with the levels, value is reported. ts is the evaluation's time (the
 * sensor's newest for thresholds, a window's end); start is when the
 * condition began if it begins now (== ts, or a window's start). Emits
 * firing/resolved and marks the reading important while an episode is
 * pending or firing. */
void rules__level_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s,
                       double value, double score, int64_t start, int64_t ts);
/* The level reported with an alert of side (s->flags) at status. */
double rules__level_threshold(const struct rules__rule *rule, const struct rules__slot *s,
                              enum op_rules_state state);

/* rules_engine.c: event emission. */
void rules__emit_alert(struct rules__ev *ev, struct rules__rule *rule,
                       const struct rules__slot *s, enum op_rules_state state,
                       enum op_rules_cause cause, double value, double score, double threshold,
                       int64_t ts);
void rules__emit_important(struct rules__ev *ev, const struct rules__rule *rule);

/* rules_window.c: closes the open window of s, emitting derived readings
 * and evaluating alert_on. Used by eval, tick and rule changes. */
void rules__window_close(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s);

/* rules_engine.c, for rules_state.c */
struct rules__rule *rules__find_rule(const struct op_rules *eng, const char *name, size_t len);
/* The sensor's index, creating and resolving it if new; OP_ETOOBIG at
 * max_sensors, OP_ENOMEM. */
int rules__sensor_get(struct op_rules *eng, const char *name, size_t len, uint32_t *idx);
bool rules__rule_selects(const struct rules__rule *rule, const char *name, size_t len);
struct rules__slot *rules__slot_of(const struct op_rules *eng, const struct rules__sensor *s,
                                   const struct rules__rule *rule);

/* Saturating helpers for timestamps near the int64 range. */
static inline int64_t rules__add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}
static inline int64_t rules__sub_sat(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

/* ---- the runner's unstored output (rules_pending.c) -------------------- */

#include "outpost/core.h"
#include "outpost/store.h"

#define RULES__PENDING_ALERTS 1024
#define RULES__PENDING_DERIVED 1024
#define RULES__PENDING_MARKS 4096

struct rules__pending {
    struct op_store_alert alerts[RULES__PENDING_ALERTS];
    char *alert_mem[RULES__PENDING_ALERTS]; /* rule + sensor of each, NUL-separated */
    size_t nalerts;
    struct op_reading derived[RULES__PENDING_DERIVED];
    char derived_names[RULES__PENDING_DERIVED][OP_RULES_DERIVED_MAX];
    uint8_t derived_important[RULES__PENDING_DERIVED];
    bool any_important;
    size_t nderived;
    struct op_store_mark marks[RULES__PENDING_MARKS];
    size_t nmarks;
    struct op_counter *c_alerts, *c_derived, *c_marks; /* dropped, by what */
};

/* p must be zeroed memory already. */
void rules__pending_init(struct rules__pending *p, struct op_counter *dropped_alerts,
                         struct op_counter *dropped_derived, struct op_counter *dropped_marks);
/* Copy one engine output (strings are borrowed by the callbacks). */
void rules__pending_alert(struct rules__pending *p, const struct op_rules_alert *a);
void rules__pending_derived(struct rules__pending *p, const struct op_rules_derived *d);
void rules__pending_mark(struct rules__pending *p, int64_t seq, int64_t ts);
bool rules__pending_half_full(const struct rules__pending *p);
bool rules__pending_empty(const struct rules__pending *p);
/* Points w's RULES_PROGRESS fields at the buffers (valid until clear). */
void rules__pending_fill(struct rules__pending *p, struct op_store_write *w);
/* Empties the buffers; stored false counts everything as dropped. */
void rules__pending_clear(struct rules__pending *p, bool stored);

/* ---- rebuilding state after a restart (rules_replay.c) --------------- */

struct op_store_reader;
/* Feeds eng, with no sink, the recent readings (op_rules_history_ms before
 * each selected sensor's newest) with seq <= upto_seq. */
int rules__replay(struct op_rules *eng, struct op_store_reader *rd, int64_t upto_seq,
                  int64_t *replayed);
/* ---- the webhook sink's delivery policy (rules_delivery.c) ------------ */

/* One alert event as the webhook sends it: its store id and its JSON. */
struct rules__msg {
    int64_t id;
    size_t len;
    char json[]; /* len bytes, NUL-terminated */
};

/* A bounded FIFO of messages: push never blocks and never fails for lack
 * of room; at capacity the oldest message is pushed out. */
struct rules__queue {
    struct rules__msg **ring;
    size_t cap, head, n;
};
/* OP_OK or OP_ENOMEM; cap >= 1. */
int rules__queue_init(struct rules__queue *q, size_t cap);
/* Frees the ring and every message still in it; returns how many there were. */
size_t rules__queue_fini(struct rules__queue *q);
/* Appends m (the queue owns it now). Returns the message dropped to make
 * room (the caller frees and counts it), or NULL. */
struct rules__msg *rules__queue_push(struct rules__queue *q, struct rules__msg *m);
/* The oldest message (the caller owns it), or NULL when empty. */
struct rules__msg *rules__queue_pop(struct rules__queue *q);

/* What a webhook's HTTP status means for the event it answered. */
enum rules__verdict { RULES__DELIVERED, RULES__REJECTED, RULES__RETRY };
enum rules__verdict rules__http_verdict(long status);

/* Full-jitter exponential backoff: a uniform delay in [0, min(cap, base *
 * 2^attempt)] drawn from rnd (attempt 0 is the first retry). */
int64_t rules__backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd);
/* The wait before the next attempt: the receiver's Retry-After (seconds,
 * > 0) when it gave one, else the backoff; never more than cap_ms. */
int64_t rules__retry_delay_ms(unsigned attempt, int64_t retry_after_s, int64_t base_ms,
                              int64_t cap_ms, uint64_t rnd);
/* A small non-cryptographic generator (splitmix64) for the jitter. */
uint64_t rules__rand_next(uint64_t *state);

#endif
