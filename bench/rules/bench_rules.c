/*
 * Benchmark of the rule engine (issue 5): readings per second and rule
 * evaluations per second through op_rules_eval, in process on one core,
 * against the bar of 5,000,000 rule evaluations per second with 100
 * threshold/window rules over 10,000 sensors.
 *
 * 10,000 sensors named plant/lineNN/sensorNNNN (100 lines of 100) each walk
 * randomly in [0, 100]. Rules alternate between a threshold (above 90,
 * clear 85) and a 1-minute window (avg and max, alert_on avg > 95), and
 * select either every sensor ("all": each reading is evaluated by every
 * rule) or one line each ("line": rule i selects line i mod 100, so 100
 * rules give one evaluation per reading and 1,000 rules ten). Readings
 * arrive in batches of 1,000 in shuffled sensor order, 1 ms apart (each
 * sensor reports every 10 s, so windows close every 6 readings of a
 * sensor and derived readings flow). The sink counts events. Each figure
 * is the best of several passes over 2,000,000 readings after a warm-up
 * pass (which pays the first sight of every sensor, reported apart).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outpost/err.h"
#include "outpost/rules.h"

#define NSENSORS  10000
#define NREADINGS 2000000
#define BATCH     1000
#define PASSES    5
#define BAR       5e6

static char names[NSENSORS][32];
static struct op_reading *readings;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct counts {
    uint64_t alerts, derived, important;
};
static void on_alert(void *ctx, const struct op_rules_alert *a)
{
    (void)a;
    ((struct counts *)ctx)->alerts++;
}
static void on_derived(void *ctx, const struct op_rules_derived *d)
{
    (void)d;
    ((struct counts *)ctx)->derived++;
}

static void make_readings(void)
{
    readings = malloc((size_t)NREADINGS * sizeof *readings);
    double level[NSENSORS];
    int order[NSENSORS];
    for (int i = 0; i < NSENSORS; i++) {
        snprintf(names[i], sizeof names[i], "plant/line%02d/sensor%04d", i / 100, i);
        level[i] = 50;
        order[i] = i;
   }
    int64_t ts = 1700000000000;
    for (size_t k = 0; k < NREADINGS; k++) {
        if (k % NSENSORS == 0) /* a new round: shuffle the order */
            for (int i = NSENSORS - 1; i > 0; i--) {
                int j = (int)(rng() % (uint64_t)(i + 1)), t = order[i];
                order[i] = order[j];
                order[j] = t;
           }
        int s = order[k % NSENSORS];
        level[s] += ((double)(rng() >> 11) / 9007199254740992.0 - 0.5) * 8;
        level[s] = level[s] < 0 ? 0 : level[s] > 100 ? 100 : level[s];
        readings[k] = (struct op_reading){ names[s], (uint32_t)strlen(names[s]), ts++, level[s] };
   }
}

static struct op_rules *make_engine(int nrules, bool all)
{
    struct op_rules *eng;
    struct op_rules_opts opts = { .max_rules = 2000, .max_sensors = 20000 };
    if (op_rules_create(&eng, &opts) != OP_OK)
        return NULL;
    for (int i = 0; i < nrules; i++) {
        char name[32], sensors[48];
        snprintf(name, sizeof name, "r%d", i);
        if (all)
            snprintf(sensors, sizeof sensors, "*");
        else
            snprintf(sensors, sizeof sensors, "plant/line%02d/*", i % 100);
        struct op_rules_kv thr[] = {
            { OP_STR_LIT("kind"), OP_STR_LIT("threshold") },
            { OP_STR_LIT("sensors"), { sensors, strlen(sensors) } },
            { OP_STR_LIT("above"), OP_STR_LIT("90") },
            { OP_STR_LIT("clear"), OP_STR_LIT("85") },
       };
        struct op_rules_kv win[] = {
            { OP_STR_LIT("kind"), OP_STR_LIT("window") },
            { OP_STR_LIT("sensors"), { sensors, strlen(sensors) } },
            { OP_STR_LIT("window"), OP_STR_LIT("1m") },
            { OP_STR_LIT("fns"), OP_STR_LIT("avg,max") },
            { OP_STR_LIT("alert_on"), OP_STR_LIT("avg > 95") },
       };
        struct op_rules_def *def;
        struct op_diag d;
        int rc = i % 2 ? op_rules_def_parse(name, strlen(name), win, 5, &def, &d)
                       : op_rules_def_parse(name, strlen(name), thr, 4, &def, &d);
        if (rc != OP_OK || op_rules_put(eng, def, NULL) != OP_OK) {
            fprintf(stderr, "bench_rules: rule %s: %s\n", name, d.msg);
            exit(1);
       }
        op_rules_def_free(def);
   }
    return eng;
}

static void run(int nrules, bool all)
{
    struct op_rules *eng = make_engine(nrules, all);
    struct counts c = { 0 };
    struct op_rules_sink sink = { on_alert, on_derived, NULL, &c };
    /* Warm-up: the first pass sees every sensor for the first time. */
    double t0 = now_s();
    for (size_t k = 0; k < NSENSORS; k += BATCH)
        op_rules_eval(eng, readings + k, BATCH, &sink);
    double first_sight = now_s() - t0;
    for (size_t k = NSENSORS; k < NREADINGS; k += BATCH)
        op_rules_eval(eng, readings + k, BATCH, &sink);

    double best = 1e30;
    struct op_rules_stats st0, st1;
    uint64_t evals = 0, events = 0;
    for (int p = 0; p < PASSES; p++) {
        /* Each pass replays the readings NREADINGS ms later, so windows
         * keep moving forward instead of counting them as late. */
        for (size_t k = 0; k < NREADINGS; k++)
            readings[k].ts += NREADINGS;
        uint64_t ev0 = c.alerts + c.derived;
        op_rules_stats(eng, &st0);
        t0 = now_s();
        for (size_t k = 0; k < NREADINGS; k += BATCH)
            op_rules_eval(eng, readings + k, BATCH, &sink);
        double dt = now_s() - t0;
        op_rules_stats(eng, &st1);
        if (dt < best) {
            best = dt;
            evals = st1.evaluations - st0.evaluations;
            events = c.alerts + c.derived - ev0;
       }
   }
    for (size_t k = 0; k < NREADINGS; k++)
        readings[k].ts -= (int64_t)PASSES * NREADINGS;
    double rps = NREADINGS / best, eps = (double)evals / best;
    double per = (double)evals / NREADINGS;
    char bar[16] = "      -";
    if (per >= 1) /* below one evaluation per reading the lookup, not the rules, is measured */
        snprintf(bar, sizeof bar, "%6.2fx", eps / BAR);
    printf("%6d  %-4s %9zu %7.2f %12.0f %13.0f %8s %8.1f %9.1f %9llu%s\n", nrules,
           all ? "all" : "line", st1.pairs, per, rps, eps, bar, (double)st1.bytes / 1048576.0,
           first_sight * 1e3, (unsigned long long)events, st1.late ? " late readings!" : "");
    op_rules_destroy(eng);
}

int main(int argc, char **argv)
{
    (void)argv;
    make_readings();
    printf("bench_rules: op_rules_eval in process on one core; %d sensors, batches of %d, "
           "best of %d passes over %d readings\n",
           NSENSORS, BATCH, PASSES, NREADINGS);
    printf("rules alternate threshold (above 90, clear 85) and window (1m, avg+max, alert_on "
           "avg > 95);\n"
           "selection all = every rule selects every sensor, line = rule i selects line i mod "
           "100 (100 sensors)\n"
           "bar: 5,000,000 rule evaluations/s with 100 threshold/window rules over 10,000 "
           "sensors\n"
           "columns: (rule, sensor) pairs held, evaluations per reading, the best pass's rates,\n"
           "the ratio of evals/s to the bar, engine memory, the warm-up's first sight of 10,000\n"
           "sensors, alerts + derived readings emitted in the best pass\n\n");
    printf("%6s  %-4s %9s %7s %12s %13s %8s %8s %9s %9s\n", "rules", "sel", "pairs", "evals/r",
           "readings/s", "evals/s", "vs bar", "MB", "1st ms", "events");
    run(1, true);
    run(1, false);
    run(100, true);
    run(100, false);
    run(1000, false);
    if (argc > 1) /* 1,000 rules over every sensor: ~1 GB of state */
        run(1000, true);
    free(readings);
    return 0;
}
