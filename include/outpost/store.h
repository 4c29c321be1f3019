/*
 * store: the durable home of readings and device status. SQLite in WAL mode
 * with one writer thread (group commit) and a small pool of reader threads,
 * each owning a read-only connection. Depends on util, core and codec (older
 * readings are kept in codec-encoded chunks).
 *
 * Writes are submitted as struct op_store_write records the caller owns;
 * the writer drains everything queued, commits once, then calls each
 * record's done callback. A write is durable (per store.sync) when done runs
 * with rc == OP_OK. Reads are jobs run on a reader thread.
 */
#ifndef OUTPOST_STORE_H
#define OUTPOST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/core.h"

struct op_store;

struct op_reading;
struct op_buf;
/* Encodes r[0..n) (seqs seq_lo .. seq_lo + n - 1, in that order) as one
 * outbox record appended to out. Runs on the writer thread inside the
 * group's transaction: it must be quick and must not call into the store.
 * OP_OK, or an op_err that fails the group. */
typedef int op_outbox_encode_fn(void *ctx, const struct op_reading *r, size_t n,
                                struct op_buf *out);
#define OP_OUTBOX_RECORD_MAX 65536

struct op_store_opts {
    const char *dir;                /* data directory, created if missing */
    int sync_mode;                  /* OP_SYNC_FULL or OP_SYNC_NORMAL */
    size_t queue_max_bytes;         /* cap on bytes waiting for the writer */
    int readers;                    /* reader threads (>= 1) */
    int64_t retention_age_ms;       /* delete readings older than this; 0 = off */
    int64_t retention_bytes;        /* keep the database under this; 0 = off */
    int64_t retention_interval_ms;  /* how often retention takes a step */
    /* Uplinks by name (store-and-forward, store_outbox.c). With at least
     * one, every committed reading also goes into the outbox: records of up
     * to OP_OUTBOX_RECORD_MAX readings in seq order, encoded by
     * outbox_encode, kept until every uplink has acknowledged them (or
     * retention drops them, counted per uplink). An uplink first seen
     * starts at the newest reading; one no longer listed is forgotten. */
    const char *const *uplinks;
    size_t nuplinks;
    op_outbox_encode_fn *outbox_encode;
    void *outbox_ctx;
};

/* Opens (creating or migrating) the database in opts->dir and starts the
 * writer and reader threads. Returns OP_OK, OP_EIO (with a log line naming
 * the path and the reason) or OP_ENOMEM. */
int op_store_open(struct op_store **out, const struct op_store_opts *opts);

/* Creates dir and its missing parents (mode 0750), as op_store_open would:
 * a privilege drop creates the data directory while still root, hands it
 * over, then opens the store as the user. OP_OK, OP_EIO (logged), OP_ENOMEM. */
int op_store_dir_create(const char *dir);

/* The names of the files the store keeps in its directory (database, WAL,
 * shared memory, lock), NULL-terminated: what a privilege drop hands over. */
extern const char *const op_store_file_names[];

/* Stops taking work, commits everything already submitted (each done is
 * called), finishes queued reads, joins the threads and closes. NULL-safe. */
void op_store_close(struct op_store *s);

/* True while the database is open and the writer thread is alive. */
bool op_store_ready(struct op_store *s);

/* ---- writes ---------------------------------------------------------- */

/* The longest sensor name the store keeps: clients send 1-128 bytes
 * (DESIGN.md); names the node makes itself are longer: derived series
 * ("<sensor>:<fn>_<window>") and readings received from another node,
 * stored under "<node id>/<sensor>". */
#define OP_STORE_SENSOR_MAX 192

/* One reading. sensor points into memory the submitter keeps alive until
 * the write's done callback has run; it is not NUL-terminated. */
struct op_reading {
    const char *sensor;
    uint32_t sensor_len;
    int64_t ts;    /* Unix ms */
    double value;  /* finite */
};

enum op_store_op {
    OP_STORE_APPEND,        /* readings[0..n): all committed or none */
    OP_STORE_DEVICE_PUT,    /* replace device's status and attributes */
    OP_STORE_DEVICE_STATUS, /* set status only, keep attributes */
    OP_STORE_DEVICE_DELETE, /* rc OP_ENOTFOUND if there was no such device */
    OP_STORE_RULE_PUT,      /* insert or replace rule_name's definition; sets created */
    OP_STORE_RULE_DELETE,   /* rc OP_ENOTFOUND if there was no such rule */
    OP_STORE_RULES_PROGRESS,/* append alerts[0..nalerts) and set the rules cursor, atomically */
    OP_STORE_UPLINK_ACK,    /* set uplink_name's cursor and batch_seq; with dead_status, a dead letter */
    OP_STORE_UPLINK_RECEIVE,/* receiver: append the readings whose position is new for (peer_node, uplink_name) */
};

/* One alert event of the rule engine, as stored (store does not know the
 * engine's enums: kind, state, severity and cause are their names). Strings
 * are NUL-terminated except sensor (sensor_len bytes). */
struct op_store_alert {
    int64_t id; /* assigned by the store: set in the write's alerts by the commit */
    const char *rule;
    const char *sensor;
    uint32_t sensor_len;
    const char *kind;
    const char *state;    /* "firing" or "resolved" */
    const char *severity;
    const char *cause;    /* "cleared", "rule_changed", "rule_removed" */
    double value, threshold;
    int64_t since, fired_at, ts;
};

/* A reading marked important by a rule (its seq, and its ts so that
 * retention can trim marks with the readings). */
struct op_store_mark {
    int64_t seq, ts;
};

struct op_store_write;
/* Called exactly once per accepted write, on the writer thread, with
 * w->rc set: OP_OK (committed), OP_ENOSPC (storage full; nothing of this
 * write was stored), OP_EBUSY (another process held the database locked
 * past the busy timeout; nothing stored, retry), OP_EIO, OP_ENOTFOUND
 * (delete of a missing device). */
typedef void op_store_done_fn(struct op_store_write *w);

/* A write request, owned by the submitter until done has run. */
struct op_store_write {
    enum op_store_op op;
    const struct op_reading *readings; /* OP_STORE_APPEND */
    size_t n;
    const char *device_id;   /* OP_STORE_DEVICE_*: NUL-terminated */
    const char *status;      /* PUT/STATUS: NUL-terminated */
    const char *attributes;  /* PUT: JSON object text, or NULL for {} */
    int64_t updated_at;      /* PUT/STATUS/RULE_PUT: Unix ms */
    const char *rule_name;   /* OP_STORE_RULE_*: NUL-terminated */
    const char *rule_text;   /* RULE_PUT: the canonical definition text */
    struct op_store_alert *alerts; /* RULES_PROGRESS: may be NULL when nalerts is 0; ids set on commit */
    size_t nalerts;
    /* RULES_PROGRESS: derived readings (window aggregates) appended as
     * readings of derived sensors, which op_store_read_since never returns
     * (rules do not feed on their own output); important[i] != 0 marks
     * readings[i] important (may be NULL). */
    const struct op_reading *derived;
    const uint8_t *derived_important;
    size_t nderived;
    /* RULES_PROGRESS: readings a rule marked important, for the uplink. */
    const struct op_store_mark *marks;
    size_t nmarks;
    int64_t cursor;          /* RULES_PROGRESS: the last reading seq the rules have seen */
    bool created;            /* out, RULE_PUT: the rule did not exist before */
    /* RULE_*: the write comes from the config file's [rule.NAME] sections.
     * Rules from there are changed only from there: an API write (false)
     * to one sets rule_locked and rc OP_EINVAL, and the group goes on. */
    bool rule_config;
    bool rule_locked;
    /* UPLINK_*: the uplink's name (NUL-terminated); batch_seq is the batch
     * acknowledged or received. ACK: cursor is the last position (seq) the
     * receiver acknowledged. A dead letter (dead_status != 0, the HTTP
     * status, or -1 for a transport error) also records the batch's
     * first_pos..last_pos, its reading count (dead_readings) and the
     * receiver's answer (dead_answer, NUL-terminated, may be NULL). */
    const char *uplink_name;
    int64_t batch_seq;
    int64_t first_pos, last_pos;
    int dead_status;
    const char *dead_answer;
    int64_t dead_readings;
    /* ACK: the batch settled first_pos..last_pos, or with ack_points only
     * those positions (sorted); out: cursor, the uplink's new cursor (the
     * positions acknowledged above it are kept as ranges). */
    const int64_t *ack_points;
    size_t ack_npoints;
    /* RECEIVE: readings[0..n) with their positions on the sending node
     * (positions[i] for readings[i]); only those with a position not yet
     * stored for (peer_node, uplink_name) are appended, and the positions
     * the batch settles are recorded, in one transaction. A plain batch
     * settles everything up to its last position; a ranged one (priorities)
     * everything up to peer_floor plus first_pos..last_pos, or with
     * peer_sparse only its own positions. */
    const int64_t *positions;
    const char *peer_node;
    bool peer_ranged, peer_sparse;
    int64_t peer_floor;
    int64_t accepted, duplicates; /* out, RECEIVE */
    op_store_done_fn *done;
    void *ctx;
    int rc;
    /* private to the store */
    size_t bytes;
    struct op_store_write *next;
};

/* Queues w for the writer. Returns OP_OK (done will be called), OP_EBUSY
 * (queue over its byte cap: try later; done is not called), OP_ESHUTDOWN
 * (closing), OP_EINVAL. Thread-safe; never blocks on I/O. */
int op_store_submit(struct op_store *s, struct op_store_write *w);

/* ---- reads ----------------------------------------------------------- */

/* A reader connection, lent to a job for the duration of its run. */
struct op_store_reader;
struct op_store_read_job;
typedef void op_store_read_fn(struct op_store_reader *r, struct op_store_read_job *job);

/* A read request, owned by the submitter until fn has returned. */
struct op_store_read_job {
    op_store_read_fn *fn;
    void *ctx;
    struct op_store_read_job *next; /* private */
};

/* Runs job->fn on a reader thread. OP_OK, OP_EBUSY (read queue full),
 * OP_ESHUTDOWN. Thread-safe. */
int op_store_read_submit(struct op_store *s, struct op_store_read_job *job);

/* The query functions below run only inside a read job, on r. Callbacks
 * return 0 to continue and non-zero to stop early. Each returns the number
 * of items delivered (>= 0) or a negative op_err. */

struct op_range_query {
    const char *sensor;  /* NUL-terminated */
    int64_t from;        /* inclusive, Unix ms */
    int64_t to;          /* exclusive, Unix ms */
    int64_t limit;       /* max rows, >= 1 */
    bool desc;           /* newest first */
    bool has_after;      /* continue after (after_ts, after_seq) in the order */
    int64_t after_ts;
    int64_t after_seq;
};
/* seq is the reading's position, unique and increasing in commit order. */
typedef int op_row_fn(void *ctx, int64_t ts, double value, int64_t seq);
int op_store_query_range(struct op_store_reader *r, const struct op_range_query *q, op_row_fn *fn,
                         void *ctx);

struct op_agg_query {
    const char *sensor;
    int64_t from, to; /* [from, to) */
    int64_t step_ms;  /* bucket width; buckets start at multiples of step */
};
struct op_agg_bucket {
    int64_t start; /* bucket start, Unix ms */
    int64_t count;
    double sum, min, max, first, last;
};
/* Delivers only non-empty buckets, oldest first. */
typedef int op_bucket_fn(void *ctx, const struct op_agg_bucket *b);
int op_store_query_aggregate(struct op_store_reader *r, const struct op_agg_query *q,
                             op_bucket_fn *fn, void *ctx);

struct op_sensor_info {
    const char *name;
    int64_t count, first_ts, last_ts;
    double last_value; /* the value of the reading with the greatest ts */
};
typedef int op_sensor_fn(void *ctx, const struct op_sensor_info *si);
/* All sensors with at least one stored reading, by name. */
int op_store_list_sensors(struct op_store_reader *r, op_sensor_fn *fn, void *ctx);

struct op_device_info {
    const char *id;
    const char *status;
    const char *attributes; /* JSON object text */
    int64_t updated_at;
};
typedef int op_device_fn(void *ctx, const struct op_device_info *di);
/* OP_ENOTFOUND when there is no such device. */
int op_store_get_device(struct op_store_reader *r, const char *id, op_device_fn *fn, void *ctx);
int op_store_list_devices(struct op_store_reader *r, op_device_fn *fn, void *ctx);

/* ---- rules: the integration's persistence (store_rules.c) ----------- */

/* A reader connection of the caller's own, for one long-lived thread (the
 * rules runner) that reads synchronously instead of through read jobs. The
 * query functions above and below take it like a pooled one; its queries
 * are not time-limited. Close it before op_store_close. OP_OK, OP_EIO,
 * OP_ENOMEM. */
int op_store_reader_open(struct op_store *s, struct op_store_reader **out);
void op_store_reader_close(struct op_store_reader *r);

/* Called on the writer thread after each successful commit of a group, with
 * the count of readings it appended. It must be quick and must not block
 * (set a flag, signal a condition) and must not call into the store; it
 * runs under the write queue's lock. One hook per store; fn NULL removes it,
 * and once that returns no call is in flight. Any thread. */
typedef void op_store_commit_fn(void *ctx, int64_t readings);
void op_store_set_commit_hook(struct op_store *s, op_store_commit_fn *fn, void *ctx);
/* Incremented by every committed rule put or delete. Any thread. */
uint64_t op_store_rules_generation(struct op_store *s);

/* Committed readings with seq > after_seq, in seq (commit) order, at most
 * limit of them; the name in r is borrowed for the callback only. A
 * derived reading (a window rule's output) comes with r NULL: the caller
 * passes its seq without evaluating it. Returns the count delivered or a
 * negative op_err. */
typedef int op_seq_row_fn(void *ctx, int64_t seq, const struct op_reading *r);
int op_store_read_since(struct op_store_reader *r, int64_t after_seq, int64_t limit,
                        op_seq_row_fn *fn, void *ctx);
/* The seq of the newest committed reading (0 when none ever was) into
 * *seq; the persisted rules cursor into *cursor (-1 when never set).
 * OP_OK or a negative op_err. */
int op_store_rules_marks(struct op_store_reader *r, int64_t *seq, int64_t *cursor);

struct op_rule_info {
    const char *name;
    const char *text; /* canonical definition text, `key = value` lines */
    int64_t updated_at;
    bool from_config; /* defined in the config file, not over the API */
};
typedef int op_rule_fn(void *ctx, const struct op_rule_info *ri);
/* All rules by name; or one (OP_ENOTFOUND when there is none). */
int op_store_list_rules(struct op_store_reader *r, op_rule_fn *fn, void *ctx);
int op_store_get_rule(struct op_store_reader *r, const char *name, op_rule_fn *fn, void *ctx);

struct op_alert_query {
    const char *state; /* "firing", "resolved" or NULL for both */
    int64_t since;     /* events with ts >= since */
    int64_t after_id;  /* and id > after_id (0: from the first; ids only grow) */
    int64_t limit;     /* >= 1 */
};
typedef int op_alert_fn(void *ctx, const struct op_store_alert *a);
/* Alert events, oldest first. */
int op_store_query_alerts(struct op_store_reader *r, const struct op_alert_query *q,
                          op_alert_fn *fn, void *ctx);
/* Alerts still firing: firing events with no later resolved event for the
 * same (rule, sensor). */
int op_store_firing_alerts(struct op_store_reader *r, op_alert_fn *fn, void *ctx);

/* ---- the outbox and uplinks (store_outbox.c) ------------------------- */

/* This node's id: 16 lowercase hex digits, made at the first open and kept. */
const char *op_store_node_id(struct op_store *s);

/* An uplink's acknowledged position (the seq of the last reading it has
 * delivered or passed) and its last batch sequence number. OP_ENOTFOUND
 * for a name not in opts.uplinks. */
int op_store_uplink_get(struct op_store_reader *r, const char *name, int64_t *cursor,
                        int64_t *batch_seq);

/* The positions acknowledged above an uplink's cursor (out of order, with
 * priorities), added to rs and merged. */
int op_store_uplink_ranges(struct op_store_reader *r, const char *name, struct op_ranges *rs);
/* The newest position in the outbox; INT64_MIN when it is empty. */
int op_store_outbox_head(struct op_store_reader *r, int64_t *head);

struct op_uplink_info {
    const char *name;
    int64_t cursor, batch_seq, updated_at;
    int64_t backlog, backlog_bytes; /* readings and outbox bytes past the cursor */
    int64_t oldest_ts;              /* smallest ts among them; INT64_MAX when none */
};
typedef int op_uplink_fn(void *ctx, const struct op_uplink_info *ui);
/* Every uplink's state, by name. */
int op_store_list_uplinks(struct op_store_reader *r, op_uplink_fn *fn, void *ctx);

struct op_outbox_record {
    int64_t seq_lo; /* the first reading's seq; the others follow */
    int64_t n;
    int64_t ts_min, ts_max;
    const void *data; /* borrowed for the callback */
    size_t len;
};
typedef int op_outbox_fn(void *ctx, const struct op_outbox_record *rec);
/* Outbox records holding readings with seq > after, in seq order, at most
 * limit of them (the first may start at or before after). */
int op_store_outbox_read(struct op_store_reader *r, int64_t after, int64_t limit,
                         op_outbox_fn *fn, void *ctx);
/* Readings and record bytes in the outbox past after, and the smallest ts
 * among them (INT64_MAX when none). */
int op_store_outbox_backlog(struct op_store_reader *r, int64_t after, int64_t *readings,
                            int64_t *bytes, int64_t *oldest_ts);
/* Seqs in [lo, hi] that a rule marked important, ascending. */
typedef int op_mark_fn(void *ctx, int64_t seq);
int op_store_marks_read(struct op_store_reader *r, int64_t lo, int64_t hi, op_mark_fn *fn,
                        void *ctx);

struct op_dead_letter {
    int64_t id;
    const char *uplink;
    int64_t batch_seq, first_pos, last_pos, readings;
    int status;
    const char *answer;
    int64_t ts;
};
typedef int op_dead_letter_fn(void *ctx, const struct op_dead_letter *dl);
/* Dead letters, newest first, at most limit. */
int op_store_dead_letters(struct op_store_reader *r, int64_t limit, op_dead_letter_fn *fn,
                          void *ctx);

/* ---- introspection --------------------------------------------------- */

struct op_store_stats {
    int64_t queue_bytes;       /* bytes waiting for the writer */
    int64_t db_bytes;          /* bytes in use in the database (pages not free) */
    int64_t file_bytes;        /* database + WAL file sizes on disk */
    int64_t commits;           /* group transactions committed since open */
};
void op_store_get_stats(struct op_store *s, struct op_store_stats *out);

/* ---- SQL access (store_sql.c) ---------------------------------------- */

struct sqlite3;
/* Registers the eponymous, read-only virtual table `readings` (sensor_id,
 * ts, seq, value) on db: every stored reading, from the log and decoded from
 * the chunks, as one row each. It lets any SQLite connection to an outpost
 * database (the tests; the sqlite3 shell through the loadable extension
 * outpost_sqlite.so, which calls this) read every stored reading as the
 * table `readings`. A scan of a damaged chunk fails with SQLITE_CORRUPT and
 * a message naming it. OP_OK or OP_EIO; on the connection's thread. */
int op_store_sql_register(struct sqlite3 *db);

#endif
