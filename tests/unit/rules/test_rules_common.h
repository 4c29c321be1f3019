/*
 * Helpers shared by the rules unit tests: definitions from "key=value"
 * strings, a sink that logs every event as one line of text (so a test
 * compares a whole log with what it expects), and scripts of readings and
 * ticks run through an engine.
 */
#ifndef TEST_RULES_COMMON_H
#define TEST_RULES_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/rules.h"

#define TR_MAX_PAIRS 24

/* Parses name's definition from NULL-terminated "key=value" strings (the
 * first '=' splits). Returns the parse's rc; *def is NULL on failure. */
int tr_parse(const char *name, const char *const *pairs, struct op_rules_def **def,
             struct op_diag *d);
/* Same, failing the test on error. */
struct op_rules_def *tr_def(const char *name, const char *const *pairs);
/* An engine holding the one rule name defined by pairs. */
struct op_rules *tr_engine(const char *name, const char *const *pairs);

/* A sink that appends one line per event to log:
 *   F <rule> <sensor> v=<value> s=<score> thr=<threshold> since=<ms> at=<ms>
 *   R[:rule_changed|:rule_removed] <rule> <sensor> v=... thr=... since=... at=...
 *   D <name> <ts> <value>[ !]           a derived reading (! = important)
 *   I <index> <rule>                    an important mark
 * Scores are printed only for anomaly rules. */
struct tr_log {
    struct op_buf buf;
    bool with_important;
    size_t alerts, fired, resolved, derived, important;
};
void tr_log_init(struct tr_log *l);
/* The log so far ("" when empty). */
const char *tr_text(const struct tr_log *l);
void tr_log_fini(struct tr_log *l);
struct op_rules_sink tr_sink(struct tr_log *l);

/* One step of a script: a reading, or a tick when sensor is NULL. */
struct tr_step {
    const char *sensor;
    int64_t ts;
    double value;
};
/* Runs steps[0..n) (readings one per op_rules_eval call). */
void tr_run(struct op_rules *eng, const struct tr_step *steps, size_t n, struct tr_log *l);

/* One table case: a fresh engine holding rule "t" from pairs runs
 * steps[0..n); the test fails, naming case i and what, unless the event
 * log reads want. Returns the engine for further checks (the caller
 * destroys it). */
struct op_rules *tr_case(const char *const *pairs, const struct tr_step *steps, size_t n,
                         const char *want, size_t i, const char *what);

/* A reading with a NUL-terminated sensor name. */
struct op_reading tr_reading(const char *sensor, int64_t ts, double value);

/* Table shorthands: P("key", "value", ...) is a NULL-terminated pair
 * list; STEPS(R(ts, v), TICK(now), ...) a step array and its length. */
#define P(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define STEPS(...)                                                                       \
    (const struct tr_step[]){ __VA_ARGS__ },                                              \
        sizeof((const struct tr_step[]){ __VA_ARGS__ }) / sizeof(struct tr_step)
#define R(ts, v) { "s", (ts), (v) }
#define TICK(now) { NULL, (now), 0 }

#endif
