/*
 * store_int.h: the store's private header, shared by the files in src/store
 * and by nothing else. It holds struct op_store, the reader connection, the
 * writer's cached statements, the layout interface (how readings are laid out
 * on disk) and the constants that bound every queue and every retention step.
 */
#ifndef OUTPOST_STORE_INT_H
#define OUTPOST_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "outpost/codec.h"
#include "outpost/core.h"
#include "outpost/err.h"
#include "outpost/store.h"
#include "outpost/util.h"

#define STORE_SUB "store"
#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)
#define STORE_DB_FILE "outpost.db"
#define STORE_LOCK_FILE "outpost.lock"

/* The schema version this build writes; see the migration table in
 * store_open.c. PRAGMA user_version holds the version of a database file. */
#define STORE_SCHEMA_VERSION 7

/* Read jobs waiting for a reader; one more gets OP_EBUSY. */
#define STORE_READ_QUEUE_MAX 1024
/* The most rows one retention step deletes, so that a step (one transaction
 * on the writer thread) delays ingest by milliseconds, not seconds. */
#define STORE_RETENTION_CHUNK 5000
/* Longest a retention step spends emptying the log before it deletes. */
#define STORE_RETENTION_DRAIN_MS 2000
/* Compaction moves at most this many log rows per step (a step's time is
 * the longest ingest waits behind it, ~1 us a row); it starts once the
 * log holds STORE_COMPACT_ROWS rows, or STORE_COMPACT_IDLE_MS after the log
 * became non-empty when the writer is idle, so queries (which scan the
 * log) stay fast and a quiet node still ends up with a small log. */
#define STORE_COMPACT_CHUNK 65536
#define STORE_COMPACT_ROWS 65536
#define STORE_COMPACT_IDLE_MS 2000
/* Compaction leaves the log rows the rules runner has not evaluated yet
 * (seq above its persisted cursor), so the runner always reads the log by
 * its primary key; but a runner that stalls must not make the log (which
 * every query scans) grow without bound: beyond this many log rows the
 * hold is ignored and the runner counts what it skipped. */
#define STORE_COMPACT_HOLD_MAX (4 * STORE_COMPACT_CHUNK)
/* outpost_store_db_bytes is refreshed after a commit at most this often. */
#define STORE_DB_BYTES_REFRESH_MS 100
/* A read query running longer than this is interrupted (OP_ETOOBIG). */
#define STORE_QUERY_MAX_MS 10000
/* The most freelist pages one retention step gives back to the file system. */
#define STORE_VACUUM_PAGES 2048
/* Sensor names are 1..OP_STORE_SENSOR_MAX bytes; longer ones are OP_EINVAL. */
#define STORE_SENSOR_MAX OP_STORE_SENSOR_MAX
/* More reader threads than this is a configuration mistake. */
#define STORE_MAX_READERS 64
/* WAL frames (pages) after which the writer checkpoints, as SQLite's
 * default wal_autocheckpoint would, but after the done callbacks. */
#define STORE_CHECKPOINT_FRAMES 4000
/* Defaults for option fields left at 0. */
#define STORE_DEFAULT_QUEUE_BYTES ((size_t)16 << 20)
#define STORE_DEFAULT_RETENTION_INTERVAL_MS 1000
/* A day: the interval is kept in nanoseconds, and a longer one is a typo. */
#define STORE_MAX_INTERVAL_MS ((int64_t)86400 * 1000)
/* How long a connection waits on a lock held by another one. In WAL mode the
 * single writer never waits for readers; this covers WAL recovery only. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* ---- chunks: a sensor's readings, codec-encoded (store_chunk.c) -------- */

/* Readings a chunk holds at most (one codec block). */
#define STORE_CHUNK_MAX 1024
/* Compaction appends to a sensor's newest chunk while it holds fewer than
 * this many readings (and the new ones all come after it), so a sensor
 * that gets a few readings per compaction does not end up as many tiny
 * chunks. Growing a chunk to F readings k at a time re-encodes about
 * F / 2k readings per reading: with 1,000 sensors (65 readings each per
 * compaction) 128 took batched ingest 9 % past 512, side by side. */
#define STORE_CHUNK_FILL 128

/* Readings as parallel arrays: what a chunk is built from and decodes to. */
struct store_pts {
    int64_t *ts;
    double *val;
    int64_t *seq;
    size_t n, cap;
};

/* One encoded chunk: the points frame, then the seqs frame, in data. */
struct store_chunk_buf {
    uint8_t *data;
    size_t cap;
    size_t points_len, seqs_len;
};

/* Makes room for n readings in all (OP_OK, OP_ENOMEM). */
int store__pts_reserve(struct store_pts *p, size_t n);
int store__pts_push(struct store_pts *p, int64_t ts, double val, int64_t seq);
void store__pts_free(struct store_pts *p);
/* Encodes p's readings [at, at + n), 1 <= n <= STORE_CHUNK_MAX, sorted by
 * (ts, seq), into out (reused across calls; the caller frees out->data
 * with op_free). ctx is the caller's codec context (op_codec_ctx_create). */
int store__chunk_encode(struct op_codec_ctx *ctx, const struct store_pts *p, size_t at, size_t n,
                        struct store_chunk_buf *out);
/* Appends a chunk's readings to p. OP_ECORRUPT for frames that do not
 * check out or disagree, OP_ENOMEM. */
int store__chunk_decode(struct op_codec_ctx *ctx, const void *points, size_t points_len,
                        const void *seqs, size_t seqs_len, struct store_pts *p);
/* The same from the current row of st, whose columns col and col + 1 are
 * a chunk's points and seqs (store_scan.c, as the next one). */
int store__chunk_decode_cols(struct op_codec_ctx *ctx, sqlite3_stmt *st, int col,
                             struct store_pts *p);
/* The entries of the log record at st's current row, whose columns 0..2
 * are seq_lo, n, data (*n gets n); NULL, logged, when the data's length
 * disagrees with n (the caller's read fails with OP_ECORRUPT). */
const uint8_t *store__log_entries(sqlite3_stmt *st, int64_t *n);

/* ---- the log: one record per group (store_layout.c) -------------------- */

/*
 * CREATE TABLE log(seq_lo INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL):
 * a record holds the n readings with seqs seq_lo .. seq_lo + n - 1, each as
 * STORE_LOG_BYTES: sensor id, ts and the value's bits, 8 bytes each,
 * little-endian. Records are contiguous in seq (a group's readings take
 * consecutive seqs, compaction deletes from the front).
 */
#define STORE_LOG_BYTES 24
/* Readings a record holds at most (a group with more writes several, so
 * the writer never holds more than one record's entries in memory). */
#define STORE_LOG_RECORD_MAX 65536

/* Whether a record's data of bytes bytes holds n entries (no overflow for
 * a damaged n). */
static inline bool store__log_record_ok(int64_t n, int bytes)
{
    return n >= 1 && bytes > 0 && bytes % STORE_LOG_BYTES == 0 && bytes / STORE_LOG_BYTES == n;
}

static inline void store__log_put(uint8_t *p, int64_t sensor, int64_t ts, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    op_le64_put(p, (uint64_t)sensor);
    op_le64_put(p + 8, (uint64_t)ts);
    op_le64_put(p + 16, bits);
}

static inline void store__log_get(const uint8_t *p, int64_t *sensor, int64_t *ts, double *value)
{
    uint64_t bits = op_le64_get(p + 16);
    *sensor = (int64_t)op_le64_get(p);
    *ts = (int64_t)op_le64_get(p + 8);
    memcpy(value, &bits, sizeof(*value));
}

/* ---- layout: how readings are stored ---------------------------------- */

/*
 * The write path of readings behind a small vtable (the log + chunks of
 * store_layout.c replaced a row per reading this way), so that a layout
 * changes without touching the writer, the group commit or retention
 * scheduling.
 * Every function runs on the writer thread inside a transaction the writer
 * opened; none of them begins, commits or rolls back. Functions return OP_OK
 * or an op_err mapped with store__err() at the failing call.
 */
struct store_layout {
    const char *name;
    /* Prepares what the layout needs on the write connection. */
    int (*create)(struct op_store *s, sqlite3 *db, void **state);
    void (*destroy)(void *state);
    /* Called right after every BEGIN the writer issues (groups and
     * retention steps alike). */
    void (*txn_begin)(void *state);
    /* Appends readings[0..n); they become visible only at COMMIT. */
    int (*append)(void *state, const struct op_reading *readings, size_t n);
    /* The seq given to the next appended reading (appends take contiguous ones). */
    int64_t (*next_seq)(const void *state);
    /* Called once per group before COMMIT: writes what was aggregated over
     * the group (per-sensor stats, the sequence high-water mark). */
    int (*group_end)(void *state);
    /* Called after a failed transaction was rolled back: forget in-memory
     * state that may describe rows that no longer exist. */
    void (*txn_abort)(void *state);
    /* Deletes at most max_rows readings with ts < cutoff_ts, oldest first per
     * sensor, keeping the per-sensor stats right; *deleted gets the count. */
    int (*delete_older)(void *state, int64_t cutoff_ts, int64_t max_rows, int64_t *deleted);
    /* Deletes at most max_rows of the oldest readings (by ts; whole chunks
     * of the sensor whose data is oldest). */
    int (*delete_oldest)(void *state, int64_t max_rows, int64_t *deleted);
    /* Background work between groups, in its own transaction: moves at
     * most max_rows from the write-optimized log into the read-optimized
     * form, none with seq > hold (see STORE_COMPACT_HOLD_MAX). *moved gets
     * the count. */
    int (*compact)(void *state, int64_t max_rows, int64_t hold, int64_t *moved);
    /* How long the writer may wait before calling compact: 0 now, < 0 no
     * compaction is due. idle says the write queue is empty. */
    int64_t (*compact_wait_ns)(void *state, bool idle, int64_t hold);
};

extern const struct store_layout store__layout_chunks;

/* ---- the store -------------------------------------------------------- */

/* Statements the writer prepares once and keeps for its lifetime. */
enum store_wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_DEV_PUT,
    W_DEV_STATUS,
    W_DEV_DELETE,
    W_PAGE_COUNT,
    W_FREELIST_COUNT,
    W_INCR_VACUUM,
    W_RULE_EXISTS, /* store_rules.c from here on */
    W_RULE_PUT,
    W_RULE_DELETE,
    W_ALERT_ADD,
    W_CURSOR_SET,
    W_DERIVED_FLAG,
    W_MARK_ADD,
    W_MARKS_TRIM,
    W_OUTBOX_ADD, /* store_outbox.c from here on */
    W_UPLINK_SET,
    W_OUTBOX_TRIM,
    W_DEAD_ADD,
    W_PEER_GET,
    W_PEER_SET,
    W_OUTBOX_UNSENT,
    W_OUTBOX_DROP,
    W_UPLINK_CURSOR,
    W_RANGES_GET,
    W_RANGES_DEL,
    W_RANGES_ADD,
    W_PEER_RANGES_GET,
    W_PEER_RANGES_DEL,
    W_PEER_RANGES_ADD,
    W_OUTBOX_ACKED_DROPPED,
    W_STMT_COUNT
};

/* Statements a reader prepares on first use and keeps. */
enum store_rstmt {
    R_BEGIN, /* a read transaction: scans, the rules' reads */
    R_COMMIT,
    R_SCAN_SENSOR, /* store_scan.c */
    R_SCAN_LOG,
    R_SCAN_CHUNKS_ASC,
    R_SCAN_CHUNKS_DESC,
    R_SENSORS, /* store_query.c */
    R_DEVICE_GET,
    R_DEVICES,
    R_SINCE,       /* store_rules.c from here on */
    R_SENSOR_NAME,
    R_MARKS,
    R_RULES,
    R_RULE_GET,
    R_ALERTS,
    R_ALERTS_STATE,
    R_ALERTS_FIRING,
    R_UPLINK_GET, /* store_outbox.c from here on */
    R_UPLINKS,
    R_OUTBOX_READ,
    R_OUTBOX_BACKLOG,
    R_MARKS_READ,
    R_DEAD_LETTERS,
    R_UPLINK_RANGES,
    R_OUTBOX_HEAD,
    R_STMT_COUNT
};

/* A decoded chunk (or the log's rows) in a scan: readings [lo, hi) of p
 * are still to be handed out. */
struct store_run {
    struct store_pts p;
    size_t lo, hi;
};

/* A sensor name by id, cached by a reader that reads the log (whose
 * entries hold ids): see names_gen. */
struct store_name {
    int64_t id; /* 0: empty */
    char *name;
    uint32_t len;
    bool derived;
};
#define STORE_NAME_SLOTS 4096

struct op_store_reader {
    struct op_store *s;
    sqlite3 *db; /* read-only; used by this reader's thread only */
    sqlite3_stmt *stmt[R_STMT_COUNT];
    struct op_codec_ctx *codec; /* scans' decoding, created on first use */
    struct store_run *runs;     /* scans' runs, kept with their buffers */
    size_t runs_cap;
    struct store_name *names;   /* STORE_NAME_SLOTS by id, created on first use */
    uint64_t names_gen;         /* s->names_gen they were read under */
    int64_t deadline_ns; /* the running query is interrupted past this */
    pthread_t thread;
    bool started;
};

struct store_metrics {
    struct op_counter *commits;
    struct op_counter *commit_err_full;
    struct op_counter *commit_err_io;
    struct op_counter *appended;
    struct op_counter *ret_age;
    struct op_counter *ret_quota;
    struct op_counter *compacted;
    struct op_histogram *commit_seconds;
    struct op_histogram *commit_readings;
};

struct op_store {
    struct op_store_opts opts; /* opts.dir points at dir below */
    char *dir;
    char *path;     /* <dir>/outpost.db */
    char *wal_path; /* <dir>/outpost.db-wal */
    int lock_fd;    /* <dir>/outpost.lock, flocked while open */
    const struct store_layout *layout;

    /* The write queue, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* signalled when work arrives or on close */
    struct op_store_write *head, *tail;
    size_t queue_bytes;
    bool closing;

    /* Owned by the writer thread once it runs. */
    sqlite3 *wdb;
    sqlite3_stmt *wstmt[W_STMT_COUNT];
    void *layout_state;
    int64_t page_size;
    int wal_frames;            /* frames in the WAL after the last commit */
    int64_t retention_next_ns; /* op_time_mono_ns() of the next step */
    bool retention_behind;     /* the last step hit its bound: go again */
    bool compact_failed;       /* the last compaction step failed */
    /* Log rows with seq above this stay in the log: the persisted rules
     * cursor, or INT64_MAX when there are no rules (store_rules.c). */
    int64_t rules_hold;
    int64_t rules_count;  /* rows in the rules table */
    int64_t rules_cursor; /* meta 'rules_cursor', -1 when never set */
    int64_t db_bytes_at_ns;    /* when db_bytes was last refreshed after a commit */
    pthread_t writer;
    bool writer_started;

    /* Read from any thread. */
    _Atomic bool writer_alive;
    _Atomic int64_t db_bytes;
    _Atomic int64_t commits;

    /* The read queue and the reader pool, guarded by rmu. */
    pthread_mutex_t rmu;
    pthread_cond_t rwake;
    struct op_store_read_job *rhead, *rtail;
    int rcount;
    bool rclosing;
    _Atomic bool readers_closing; /* rclosing, readable without rmu */
    struct op_store_reader *readers;
    int nreaders;

    /* The commit hook (op_store_set_commit_hook), guarded by mu. */
    op_store_commit_fn *hook;
    void *hook_ctx;
    _Atomic uint64_t rules_gen;
    /* A seqlock over what sensor ids name (store__names_changing): odd
     * while a transaction that deletes a sensor or marks one derived is
     * open, moved again when it commits or rolls back. A reader's name
     * cache is good only while it reads the same even value before and
     * after its snapshot begins. names_dirty is the writer's. */
    _Atomic uint64_t names_gen;
    bool names_dirty;

    /* The outbox (store_outbox.c); ob_* are the writer thread's. */
    char node_id[17];
    bool outbox_on;
    struct op_reading *ob_rows; /* the group's appended readings, in seq order */
    size_t ob_n, ob_cap;
    int64_t ob_seq_lo;          /* the seq of ob_rows[0] */
    struct op_buf ob_buf;              /* one encoded record */
    struct op_counter **ob_dropped;    /* [uplink * 2 + reason]: age, quota */
    int64_t *ob_lost;                  /* the same, in the retention step not yet committed */
    bool ob_drop_episode;              /* the last retention step dropped unsent readings */

    struct store_metrics m;
    bool sync_inited; /* the mutexes and conditions above exist */
};

/* ---- store_open.c ------------------------------------------------------ */

/* Maps a failed SQLite call on db to an op_err: SQLITE_FULL and I/O errors
 * whose system errno is ENOSPC, EFBIG or EDQUOT are OP_ENOSPC, other I/O
 * errors OP_EIO. saved_errno is errno read right after the failing call
 * (set errno to 0 before it): SQLite does not always keep the errno of a
 * failed WAL write for sqlite3_system_errno. */
int store__err(sqlite3 *db, int rc, int saved_errno);
/* Runs sql (one or more statements, no parameters); a failure is logged
 * with path and mapped as store__err. */
int store__exec_sql(sqlite3 *db, const char *sql, const char *path);
/* The first column of sql's first row into *out; an SQLite result code
 * (SQLITE_OK, or the failure; SQLITE_DONE when there is no row). */
int store__query_int(sqlite3 *db, const char *sql, int64_t *out);
/* Prepares sql on db for repeated use. */
int store__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
/* Runs a prepared statement to its end, ignoring rows, and resets it.
 * Returns OP_OK or the op_err of the failure. */
int store__exec(sqlite3 *db, sqlite3_stmt *st);
/* (page_count - freelist_count) * page_size on the write connection, or a
 * negative op_err. Writer thread. */
int64_t store__db_bytes_now(struct op_store *s);

/* ---- store_writer.c ---------------------------------------------------- */

/* Bytes readings[0..n) hold in the queue, or 0 when one is invalid (no
 * sensor, a name over STORE_SENSOR_MAX, a value that is not finite). */
size_t store__readings_bytes(const struct op_reading *rd, size_t n);
int store__writer_prepare(struct op_store *s);
void store__writer_finalize(struct op_store *s);
int store__writer_start(struct op_store *s);
/* Wakes the writer and waits for it to finish everything queued. */
void store__writer_stop(struct op_store *s);

/* ---- store_reader.c ---------------------------------------------------- */

int store__readers_open(struct op_store *s);
int store__readers_start(struct op_store *s);
/* Lets the readers finish the queued jobs, joins them, closes connections. */
void store__readers_stop(struct op_store *s);
/* Finalizes a reader's statements, closes its connection, frees its scan
 * buffers (not r itself). */
void store__reader_fini(struct op_store_reader *r);

/* ---- store_writer.c: compaction ------------------------------------------ */

/* Ends a failed transaction; begun says whether the layout's txn_begin ran
 * (only then is its state rolled back). Writer thread. */
void store__txn_rollback(struct op_store *s, bool begun);

/* Before a change to what a sensor id names (a sensor deleted, or marked
 * derived), inside the transaction, and after that transaction ended. */
void store__names_changing(struct op_store *s);
void store__names_settled(struct op_store *s);

/* One compaction step in its own transaction; returns rows moved or < 0. */
int64_t store__compact_step(struct op_store *s);

/* ---- store_scan.c ------------------------------------------------------ */

/* One sensor's readings in (ts, seq) order; zero it, optionally set a
 * cursor with store__scan_after, then open, next until 0, close. */
struct store_scan {
    struct op_store_reader *r;
    const char *sensor;
    bool desc;
    bool lo_set, hi_set; /* a cursor narrowed the window */
    int64_t lo_ts, lo_seq, hi_ts, hi_seq; /* the window: keys strictly inside */
    sqlite3_stmt *chunks; /* the candidate chunks, while open */
    bool pending;         /* chunks is on a row not decoded yet */
    int64_t pend_key;     /* that row's ts_lo (asc) or ts_hi (desc) */
    int src;              /* the first SQLite failure */
    bool in_txn;
    size_t nruns;         /* the active runs: r->runs[0..nruns) */
};

/* Continue strictly after (asc) or before (desc) the reading (ts, seq). */
void store__scan_after(struct store_scan *sc, bool desc, int64_t ts, int64_t seq);
/* Starts a scan of the sensor's readings with from <= ts < to; at most
 * log_limit of them come from the log (-1: all). An unknown sensor scans
 * nothing. OP_OK or an op_err; close the scan either way. */
int store__scan_open(struct store_scan *sc, struct op_store_reader *r, const char *sensor,
                     bool desc, int64_t from, int64_t to, int64_t log_limit);
/* 1 with the next reading, 0 at the end, or a negative op_err. */
int store__scan_next(struct store_scan *sc, int64_t *ts, double *val, int64_t *seq);
/* Ends the scan's statements and read transaction; returns rc, or the
 * failure of ending them when rc is not already one. */
int store__scan_close(struct store_scan *sc, int rc);

/* ---- store_query.c: statements shared with store_rules.c ---------------- */

/* The reader's cached statement (prepared on first use), or NULL. */
sqlite3_stmt *store__rstmt(struct op_store_reader *r, enum store_rstmt which);
/* Ends a query on st: logs a failed step, resets, clears the bindings;
 * returns the op_err for src or delivered. */
int store__rstmt_end(struct op_store_reader *r, sqlite3_stmt *st, int src, int delivered);

/* ---- store_rules.c ------------------------------------------------------ */

extern const char *const store__rules_wsql[W_STMT_COUNT];
extern const char *const store__rules_rsql[R_STMT_COUNT];
/* Applies a RULE_PUT, RULE_DELETE or RULES_PROGRESS write inside the
 * group's transaction. Writer thread. */
int store__rules_apply(struct op_store *s, struct op_store_write *w);
/* Reads the rules count and cursor from the write connection and sets
 * rules_hold; at open and after a group that changed rules. Writer
 * thread (or before it starts). */
int store__rules_hold_load(struct op_store *s);
/* After a committed group: moves the rules generation and rules_hold for
 * the group's rule writes; true when rules were put or deleted. Writer
 * thread. */
bool store__rules_committed(struct op_store *s, const struct op_store_write *group);
/* After retention deleted readings: drops the marks older than every
 * remaining reading. Writer thread, inside the step's transaction. */
int store__rules_trim_marks(struct op_store *s);
/* Bytes a rules write holds (0: invalid). */
size_t store__rules_write_bytes(const struct op_store_write *w);

/* ---- store_outbox.c ----------------------------------------------------- */

extern const char *const store__outbox_wsql[W_STMT_COUNT];
extern const char *const store__outbox_rsql[R_STMT_COUNT];
/* The node id, the uplinks' rows for opts.uplinks, metrics. At open. */
int store__outbox_open(struct op_store *s);
void store__outbox_free(struct op_store *s);
/* Appends readings through the layout and, with the outbox on, keeps them
 * for the group's outbox records. Every append of readings goes here. */
int store__append(struct op_store *s, const struct op_reading *r, size_t n);
/* Writes the group's outbox records; before the group's COMMIT. */
int store__outbox_group_end(struct op_store *s);
/* Forgets the group's readings (after a rollback, or once written). */
void store__outbox_reset(struct op_store *s);
/* Applies UPLINK_ACK or UPLINK_RECEIVE; *readings counts appended ones. */
int store__outbox_apply(struct op_store *s, struct op_store_write *w, int64_t *readings);
size_t store__outbox_write_bytes(const struct op_store_write *w);
/* Drops outbox records older than what retention keeps (age_cutoff, or
 * INT64_MIN; after quota deletions, older than every kept reading). */
int store__outbox_retention(struct op_store *s, int64_t age_cutoff, bool quota_deleted);
/* After that step committed: counts (and logs, once per episode) what it dropped. */
void store__outbox_retention_committed(struct op_store *s);

/* The SQL of a writer or reader statement, wherever it is defined. */
const char *store__wsql(enum store_wstmt which);
const char *store__rsql_of(enum store_rstmt which);

/* ---- store_retention.c ------------------------------------------------- */

bool store__retention_enabled(const struct op_store *s);
/* Nanoseconds (op_time_mono_ns clock) until the next step is due; 0 if due
 * now, negative if retention is off. Writer thread. */
int64_t store__retention_wait_ns(struct op_store *s);
/* One bounded retention step in its own transaction. Writer thread. */
void store__retention_step(struct op_store *s);

#endif
