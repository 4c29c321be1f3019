/*
 * store_reader.c: the reader pool. A fixed number of threads, each owning
 * one read-only connection to the same WAL database, take jobs from one
 * bounded queue and run them. In WAL mode a reader sees the last commit as
 * of its statement's start and never blocks the writer, so queries cannot
 * stall ingest. The query functions a job may call are in store_query.c.
 */
#include <string.h>

#include "store_int.h"

int op_store_read_submit(struct op_store *s, struct op_store_read_job *job)
{
    if (!s || !job || !job->fn)
        return OP_EINVAL;
    job->next = NULL;
    pthread_mutex_lock(&s->rmu);
    if (s->rclosing) {
        pthread_mutex_unlock(&s->rmu);
        return OP_ESHUTDOWN;
    }
    if (s->rcount >= STORE_READ_QUEUE_MAX) {
        pthread_mutex_unlock(&s->rmu);
        return OP_EBUSY;
    }
    if (s->rtail)
        s->rtail->next = job;
    else
        s->rhead = job;
    s->rtail = job;
    s->rcount++;
    pthread_cond_signal(&s->rwake);
    pthread_mutex_unlock(&s->rmu);
    return OP_OK;
}

/* SQLite calls this every few thousand VM steps: a query past its time
 * budget, or any query once the store is closing, is interrupted, so an
 * aggregate over years of data cannot hold a reader (and the WAL snapshot)
 * or delay shutdown indefinitely. The query then fails with OP_ETOOBIG. */
static int query_watch(void *ctx)
{
    struct op_store_reader *r = ctx;
    return op_time_mono_ns() > r->deadline_ns || atomic_load(&r->s->readers_closing);
}

static void *reader_main(void *arg)
{
    struct op_store_reader *r = arg;
    struct op_store *s = r->s;

    pthread_mutex_lock(&s->rmu);
    for (;;) {
        while (!s->rhead && !s->rclosing)
            pthread_cond_wait(&s->rwake, &s->rmu);
        struct op_store_read_job *job = s->rhead;
        if (!job)
            break; /* closing, and every queued job has run */
        s->rhead = job->next;
        if (!s->rhead)
            s->rtail = NULL;
        s->rcount--;
        pthread_mutex_unlock(&s->rmu);
        /* The job may free itself in fn: do not touch it afterwards. */
        r->deadline_ns = op_time_mono_ns() + (int64_t)STORE_QUERY_MAX_MS * 1000000;
        job->fn(r, job);
        pthread_mutex_lock(&s->rmu);
    }
    pthread_mutex_unlock(&s->rmu);
    return NULL;
}

int store__readers_open(struct op_store *s)
{
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    if (!(s->readers = op_calloc((size_t)s->opts.readers, sizeof(*s->readers))))
        return OP_ENOMEM;
    s->nreaders = s->opts.readers;
    for (int i = 0; i < s->nreaders; i++) {
        struct op_store_reader *r = &s->readers[i];
        r->s = s;
        int rc = sqlite3_open_v2(s->path, &r->db, flags, NULL);
        if (rc != SQLITE_OK) {
            OP_ERROR(STORE_SUB, "cannot open %s for reading: %s", s->path,
                     r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
            return rc == SQLITE_NOMEM ? OP_ENOMEM : OP_EIO;
        }
        sqlite3_extended_result_codes(r->db, 1);
        sqlite3_busy_timeout(r->db, STORE_BUSY_TIMEOUT_MS);
        /* A smaller page cache than the writer's: readers are several, and
         * range scans touch each page once. */
        sqlite3_exec(r->db, "PRAGMA cache_size=-2048", NULL, NULL, NULL);
        sqlite3_progress_handler(r->db, 10000, query_watch, r);
    }
    return OP_OK;
}

int store__readers_start(struct op_store *s)
{
    for (int i = 0; i < s->nreaders; i++) {
        struct op_store_reader *r = &s->readers[i];
        int e = pthread_create(&r->thread, NULL, reader_main, r);
        if (e != 0) {
            OP_ERROR(STORE_SUB, "cannot start a reader thread: %s", strerror(e));
            return OP_ENOMEM;
        }
        r->started = true;
    }
    return OP_OK;
}

void store__readers_stop(struct op_store *s)
{
    if (!s->sync_inited)
        return;
    pthread_mutex_lock(&s->rmu);
    s->rclosing = true;
    atomic_store(&s->readers_closing, true);
    pthread_cond_broadcast(&s->rwake);
    pthread_mutex_unlock(&s->rmu);
    for (int i = 0; i < s->nreaders; i++) {
        if (s->readers[i].started) {
            pthread_join(s->readers[i].thread, NULL);
            s->readers[i].started = false;
        }
    }
    /* The connections are closed by the store's free path. */
}

void store__reader_fini(struct op_store_reader *r)
{
    for (int k = 0; k < R_STMT_COUNT; k++)
        sqlite3_finalize(r->stmt[k]);
    sqlite3_close(r->db);
    op_codec_ctx_destroy(r->codec);
    for (size_t k = 0; k < r->runs_cap; k++)
        store__pts_free(&r->runs[k].p);
    op_free(r->runs);
    for (size_t k = 0; r->names && k < STORE_NAME_SLOTS; k++)
        op_free(r->names[k].name);
    op_free(r->names);
}
