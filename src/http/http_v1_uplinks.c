/*
 * The uplinks' state over the API: GET /v1/uplinks (this node's id, each
 * uplink's cursor, last batch and backlog) and GET /v1/uplinks/dead-letters
 * (batches a receiver refused for good, newest first, with its answer).
 */
#include <string.h>

#include "http_int.h"
#include "outpost/err.h"

#define DEAD_LETTERS_DEFAULT 100
#define DEAD_LETTERS_MAX 1000

static int write_uplink(void *ctx, const struct op_uplink_info *ui)
{
    struct http_json *j = ctx;
    http__json_obj_open(j);
    http__json_key(j, "name");
    http__json_str(j, ui->name, strlen(ui->name));
    http__json_key(j, "cursor");
    http__json_int(j, ui->cursor);
    http__json_key(j, "batch");
    http__json_int(j, ui->batch_seq);
    http__json_key(j, "updated_at");
    http__json_int(j, ui->updated_at);
    http__json_key(j, "backlog_readings");
    http__json_int(j, ui->backlog);
    http__json_key(j, "backlog_bytes");
    http__json_int(j, ui->backlog_bytes);
    http__json_key(j, "oldest_unsent_ts");
    if (ui->oldest_ts == INT64_MAX)
        http__json_null(j);
    else
        http__json_int(j, ui->oldest_ts);
    http__json_obj_close(j);
    return j->rc != 0;
}

/* {"node": id, "uplinks": [...]}: the body's members, for http__reply_list. */
static int fill_uplinks(struct http_req *r, struct op_store_reader *rd, struct http_json *j)
{
    const char *node = op_store_node_id(r->srv->store);
    http__json_key(j, "node");
    http__json_str(j, node, strlen(node));
    http__json_key(j, "uplinks");
    http__json_arr_open(j);
    int rc = op_store_list_uplinks(rd, write_uplink, j);
    http__json_arr_close(j);
    return rc;
}

static void uplinks_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, NULL, fill_uplinks);
    http__resume(job->ctx);
}

void http__h_uplinks(struct http_req *r)
{
    http__submit_read(r, uplinks_job);
}

static int write_dead_letter(void *ctx, const struct op_dead_letter *dl)
{
    struct http_json *j = ctx;
    http__json_obj_open(j);
    http__json_key(j, "id");
    http__json_int(j, dl->id);
    http__json_key(j, "uplink");
    http__json_str(j, dl->uplink, strlen(dl->uplink));
    http__json_key(j, "batch");
    http__json_int(j, dl->batch_seq);
    http__json_key(j, "first_pos");
    http__json_int(j, dl->first_pos);
    http__json_key(j, "last_pos");
    http__json_int(j, dl->last_pos);
    http__json_key(j, "readings");
    http__json_int(j, dl->readings);
    http__json_key(j, "status");
    http__json_int(j, dl->status);
    http__json_key(j, "answer");
    http__json_str(j, dl->answer, strlen(dl->answer));
    http__json_key(j, "ts");
    http__json_int(j, dl->ts);
    http__json_obj_close(j);
    return j->rc != 0;
}

static int fill_dead_letters(struct http_req *r, struct op_store_reader *rd,
                             struct http_json *j)
{
    return op_store_dead_letters(rd, r->q.count, write_dead_letter, j);
}

static void dead_letters_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, "dead_letters", fill_dead_letters);
    http__resume(job->ctx);
}

void http__h_dead_letters(struct http_req *r)
{
    const char *limit = http__query(r, "limit");
    int64_t n = DEAD_LETTERS_DEFAULT;
    if (limit && (op_parse_i64(limit, strlen(limit), &n) || n < 1 || n > DEAD_LETTERS_MAX)) {
        http__reply_errorf(r, 400, "invalid_query", "limit", "limit must be 1-%d",
                           DEAD_LETTERS_MAX);
        return;
    }
    r->q.count = n;
    http__submit_read(r, dead_letters_job);
}
