/*
 * Logging: one line per event on stderr, "TIME LEVEL [sub] message". The
 * level check happens in the OP_LOG macro before arguments are evaluated;
 * here a repeat of the same message within a second is counted instead of
 * printed, so a failing disk or a hammering client cannot flood the log.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "outpost/core.h"
#include "outpost/err.h"

_Atomic int op__log_level = OP_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_line[512];
static int64_t last_ms;
static long repeats;

void op_log_set_level(enum op_log_level lvl)
{
    atomic_store(&op__log_level, (int)lvl);
}

int op_log_level_parse(const char *s, enum op_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, level_names[i])) {
            *out = (enum op_log_level)i;
            return OP_OK;
        }
    }
    return OP_EINVAL;
}

static void stamp(char *buf, size_t n, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(ms % 1000));
}

void op_log_write(enum op_log_level lvl, const char *sub, const char *fmt, ...)
{
    char line[512];
    int k = snprintf(line, sizeof line, "%-5s [%s] ", level_names[lvl], sub);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
    va_end(ap);

    int64_t now = op_time_now_ms();
    char ts[40];
    pthread_mutex_lock(&log_lock);
    if (now - last_ms < 1000 && !strcmp(line, last_line)) {
        repeats++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    stamp(ts, sizeof ts, now);
    if (repeats)
        fprintf(stderr, "%s info  [log] last message repeated %ld times\n", ts, repeats);
    fprintf(stderr, "%s %s\n", ts, line);
    repeats = 0;
    last_ms = now;
    memcpy(last_line, line, sizeof line);
    pthread_mutex_unlock(&log_lock);
}
