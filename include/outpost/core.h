/*
 * core: diagnostics, logging, configuration, the metrics registry and
 * process signals. Depends only on util.
 */
#ifndef OUTPOST_CORE_H
#define OUTPOST_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "outpost/util.h"

/* ---- diagnostics ----------------------------------------------------- */

/* Human-readable detail for a failure at a user-facing edge (config file,
 * HTTP body, CLI). Fields that do not apply stay empty / -1. */
struct op_diag {
    char code[32];    /* machine-readable, e.g. "invalid_json" */
    char msg[256];    /* one sentence for a human */
    char field[64];   /* the offending field or key, if any */
    long index;       /* index in a batch, or -1 */
    long line;        /* line in a file, or -1 */
    char file[512];   /* file name, if any */
};

void op_diag_clear(struct op_diag *d);
/* Sets code and msg (printf-style); keeps field, index, line and file. */
void op_diag_set(struct op_diag *d, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- logging --------------------------------------------------------- */

enum op_log_level { OP_LOG_ERROR = 0, OP_LOG_WARN, OP_LOG_INFO, OP_LOG_DEBUG };

extern _Atomic int op__log_level;

/* The level is checked before the arguments are evaluated. sub names the
 * subsystem and instance, e.g. "store" or "sync:cloud". */
#define OP_LOG(lvl, sub, ...)                                                             \
    do {                                                                                  \
        if ((int)(lvl) <= atomic_load_explicit(&op__log_level, memory_order_relaxed))     \
            op_log_write((lvl), (sub), __VA_ARGS__);                                      \
    } while (0)
#define OP_ERROR(sub, ...) OP_LOG(OP_LOG_ERROR, sub, __VA_ARGS__)
#define OP_WARN(sub, ...) OP_LOG(OP_LOG_WARN, sub, __VA_ARGS__)
#define OP_INFO(sub, ...) OP_LOG(OP_LOG_INFO, sub, __VA_ARGS__)
#define OP_DEBUG(sub, ...) OP_LOG(OP_LOG_DEBUG, sub, __VA_ARGS__)

void op_log_set_level(enum op_log_level lvl);
/* Writes one line to stderr: time, level, [sub], message. Identical
 * messages repeated within a second are counted, not printed. */
void op_log_write(enum op_log_level lvl, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "error", "warn", "info", "debug" -> level; OP_EINVAL if unknown. */
int op_log_level_parse(const char *s, enum op_log_level *out);

/* ---- configuration --------------------------------------------------- */

enum op_sync_mode { OP_SYNC_FULL = 0, OP_SYNC_NORMAL = 1 };
enum op_tls_min { OP_TLS_MIN_13 = 0, OP_TLS_MIN_12 = 1 };

/* A key that may repeat (auth.token): its values in file order, each with
 * the line it came from so that the subsystem that interprets it can name
 * the line in its error. */
#define OP_CONFIG_LIST_MAX 64
#define OP_CONFIG_ITEM_MAX 256
struct op_config_list {
    int n;
    struct op_config_item {
        char v[OP_CONFIG_ITEM_MAX];
        long line; /* 0 when set from a flag */
    } items[OP_CONFIG_LIST_MAX];
};

/* Named sections ([rule.NAME], [uplink.NAME]): their `key = value` lines,
 * in file order, for the subsystem that owns them to validate (core does
 * not know rules or uplinks). */
#define OP_CONFIG_SECTION_LINES 256
struct op_config_sections {
    int n;
    struct op_config_section_line {
        char name[65]; /* NAME of [rule.NAME] */
        char key[32];
        char value[192];
        long line;
    } items[OP_CONFIG_SECTION_LINES];
};

/* One key = value line of a named section, as views into the config. */
struct op_config_kv {
    struct op_str key, value;
    long line;
};
/* Fills kv[0..max) with the lines of section name (a section may be split
 * across the file); returns how many the section has (may exceed max). */
size_t op_config_section_kv(const struct op_config_sections *rs, const char *name,
                            struct op_config_kv *kv, size_t max);
/* Whether items[i] is the first line of its section's name: iterate over
 * i and take those to visit each section once, in file order. */
bool op_config_section_first(const struct op_config_sections *rs, int i);

/* One typed key of a configuration table: core's (core_config.c) and the
 * ones of named sections ([uplink.NAME], sync_config.c) share the parsing,
 * the bounds and the error wording. */
enum op_config_type {
    OP_T_STR,      /* text of at most size - 1 bytes */
    OP_T_INT,      /* integer in [min, max] (0 also when min is 0: "off") */
    OP_T_SIZE,     /* 4096, 64KiB, 4MiB ..., bounds as OP_T_INT */
    OP_T_DURATION, /* 500ms, 30s, 2h, 7d: milliseconds, bounds as OP_T_INT */
    OP_T_ENUM,     /* one of choices: its index, as an int */
    OP_T_BOOL,     /* true | false */
    OP_T_LIST,     /* repeatable: appended to a struct op_config_list */
    OP_T_URL,      /* http:// or https:// with a host, as OP_T_STR */
    OP_T_CUSTOM,   /* parse(field, value) decides; help says what it takes */
};
struct op_config_field {
    const char *name; /* "section.key", or "key" at top level */
    enum op_config_type type;
    size_t offset;
    size_t size; /* OP_T_STR, OP_T_URL: the buffer's size */
    const char *def;
    int64_t min, max;
    const char *const *choices; /* OP_T_ENUM, NULL-terminated */
    bool reloadable;
    const char *help;
    int (*parse)(void *field, const char *v); /* OP_T_CUSTOM: OP_OK if v is one */
};
/* Sets field f of the struct at base from text v. OP_EINVAL or OP_ERANGE
 * with d naming the field and the reason. */
int op_config_field_set(void *base, const struct op_config_field *f, const char *v,
                        struct op_diag *d);

/* The effective configuration. Every field has an entry in the key table
 * in core_config.c, which holds its default, bounds and help. */
struct op_config {
    char listen[128];         /* listen = ADDR:PORT */
    char data_dir[512];       /* data_dir */
    int log_level;            /* log_level (reloadable) */
    int64_t http_max_body;    /* http.max_body (bytes) */
    int64_t http_max_batch;   /* http.max_batch (readings per request) */
    int64_t http_max_conns;   /* http.max_connections */
    int64_t http_max_inflight; /* http.max_inflight: request body bytes held at once */
    int64_t http_timeout_ms;  /* http.timeout: idle time allowed while reading a request */
    int64_t http_threads;     /* http.threads: event-loop threads */
    int sync_mode;            /* store.sync = full | normal */
    int64_t queue_max_bytes;  /* store.queue_bytes */
    int64_t store_readers;    /* store.readers */
    int64_t retention_age_ms; /* store.retention_age, 0 = keep forever */
    int64_t retention_bytes;  /* store.retention_bytes, 0 = no quota */
    int64_t retention_interval_ms; /* store.retention_interval */
    char user[64];            /* user: drop to this user after start-up when run as root */
    bool insecure_bind;       /* insecure_bind: serve beyond loopback without TLS + auth */
    char tls_cert[512];       /* tls.cert: PEM certificate chain; empty = plain HTTP */
    char tls_key[512];        /* tls.key: PEM private key */
    char tls_client_ca[512];  /* tls.client_ca: PEM CA(s); set = mutual TLS required */
    int tls_min_version;      /* tls.min_version = 1.3 | 1.2 */
    struct op_config_list auth_tokens;     /* auth.token = NAME ROLE sha256:HEX (repeats) */
    struct op_config_list auth_cert_roles; /* auth.cert_role = CN ROLE (repeats) */
    int64_t auth_max_failures;  /* auth.max_failures per address per window */
    int64_t auth_failure_window_ms; /* auth.failure_window */
    struct op_config_sections rules;   /* [rule.NAME] sections (not reloadable) */
    struct op_config_sections uplinks; /* [uplink.NAME] sections (not reloadable) */
    char rules_webhook_url[512];    /* rules.webhook_url: empty = no webhook */
    int64_t rules_webhook_timeout_ms; /* rules.webhook_timeout: per request */
    int64_t rules_webhook_queue;    /* rules.webhook_queue: events held */
    char rules_webhook_ca[512];     /* rules.webhook_ca: PEM CA file, empty = system bundle */
    char rules_webhook_token[256];  /* rules.webhook_token: Bearer token, empty = none */
    struct op_config_list receiver_seal_keys; /* receiver.seal_key = PATH (repeats) */
    int64_t receiver_max_body;      /* receiver.max_body: bytes of one POST /v1/uplink */
    int64_t receiver_max_points;    /* receiver.max_points: readings in one batch */
    bool receiver_bind_node;        /* receiver.bind_node: node id == token name or CN */
    char source[256];         /* the file last loaded, for diagnostics ("" = none) */
};

/* ---- optional libraries, loaded on first use (core_dl.c) -------------- */

struct op_dl_sym {
    const char *name;
    void **slot;
};
/* Opens the first of files that loads and fills every slot of syms, or
 * logs why not (naming what) and returns false. */
bool op_dl_load(const char *what, const char *const *files, size_t nfiles,
                const struct op_dl_sym *syms, size_t nsyms);

/* Fills every field with its embedded default. */
void op_config_defaults(struct op_config *cfg);
/* Loads an INI file over cfg. Unknown keys, bad values and syntax errors
 * return OP_EINVAL with file, line and reason in diag. */
int op_config_load_file(struct op_config *cfg, const char *path, struct op_diag *diag);
/* Loads INI text (len bytes, need not be NUL-terminated) as if it were a
 * file named name. Same errors as op_config_load_file. */
int op_config_load_string(struct op_config *cfg, const char *text, size_t len, const char *name,
                          struct op_diag *diag);
/* Sets one key ("store.sync") from its text form, as the file would. A
 * repeatable key appends. */
int op_config_set(struct op_config *cfg, const char *key, const char *value, struct op_diag *diag);
/* Copies the reloadable fields from src into dst; returns how many changed. */
int op_config_apply_reloadable(struct op_config *dst, const struct op_config *src);
/* Writes the effective configuration in the file's own syntax. */
void op_config_print(const struct op_config *cfg, FILE *out);
/* Splits cfg->listen into a host and a port; OP_EINVAL if malformed. */
int op_config_listen_split(const char *listen, char *host, size_t hostlen, uint16_t *port);
/* Resolves the listen address for binding (brackets around an IPv6
 * literal allowed): *res from getaddrinfo, freed by the caller with
 * freeaddrinfo; OP_EINVAL if malformed or unresolvable. */
struct addrinfo;
int op_config_listen_resolve(const char *listen, struct addrinfo **res, uint16_t *port);

/* ---- metrics --------------------------------------------------------- */

/* A process-wide Prometheus registry. Series are registered at start-up
 * (registration takes a lock and may allocate); updates are lock-free
 * atomics safe from any thread. Names follow outpost_<sub>_<what>_<unit>. */
struct op_counter;
struct op_histogram;
typedef double op_gauge_fn(void *ctx);

/* labels is the inside of the braces ("route=\"/v1\",code=\"201\"") or
 * NULL. Returns NULL only on allocation failure. */
struct op_counter *op_metrics_counter(const char *name, const char *labels, const char *help);
void op_counter_add(struct op_counter *c, uint64_t n);
uint64_t op_counter_get(const struct op_counter *c);

/* bounds: ascending upper bounds, +Inf is implied. */
struct op_histogram *op_metrics_histogram(const char *name, const char *labels, const char *help,
                                          const double *bounds, int nbounds);
void op_histogram_observe(struct op_histogram *h, double v);

/* A gauge read at scrape time by calling fn(ctx) on the scraping thread. */
int op_metrics_gauge(const char *name, const char *labels, const char *help, op_gauge_fn *fn,
                     void *ctx);

/* Renders every series in the Prometheus text format (0.0.4). */
int op_metrics_render(struct op_buf *out);
/* Frees the registry (tests and shutdown). No series may be used after. */
void op_metrics_reset(void);

/* Resident set size of this process in bytes, from /proc; 0 if unknown. */
int64_t op_proc_rss_bytes(void);

/* Runs the process as user from now on: hands dir and the named files in
 * it (NULL-terminated; missing ones are skipped) to the user, then sets the
 * groups, gid and uid for every thread and checks root cannot be regained.
 * Only regular files with one link are handed over, through descriptors
 * opened without following symlinks, so a planted link cannot make root
 * give away another file. OP_ENOTFOUND for an unknown user, OP_EIO with
 * the reason in d on any failure (the caller must then exit: half-dropped
 * is unsafe). */
int op_proc_drop_privileges(const char *user, const char *dir, const char *const *names,
                            struct op_diag *d);

/* ---- signals --------------------------------------------------------- */

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (call before any
 * thread starts so all inherit the mask) and ignores SIGPIPE and SIGXFSZ so
 * that their errors come back as return codes. */
void op_signals_block(void);
/* Waits for a blocked signal or the timeout; returns the signal number, or
 * 0 on timeout. */
int op_signals_wait(int timeout_ms);

#endif
