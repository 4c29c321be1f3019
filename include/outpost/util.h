/*
 * util: allocation wrapper, bounded buffers, string views, time and checked
 * number parsing. Depends on nothing else in outpost.
 */
#ifndef OUTPOST_UTIL_H
#define OUTPOST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- allocation ------------------------------------------------------ */

/* The one allocation wrapper. These may return NULL; callers handle it.
 * op_free(NULL) is a no-op. Thread-safe. */
void *op_malloc(size_t n);
void *op_calloc(size_t count, size_t n);
void *op_realloc(void *p, size_t n);
void op_free(void *p);
/* Returns a NUL-terminated copy of s[0..len) the caller frees, or NULL. */
char *op_strndup(const char *s, size_t len);
/* Grows the array *pp (elements of elem bytes, *cap of them) to hold at
 * least need, doubling from at least min; pp is the address of the array
 * pointer. Existing elements are kept, new ones are not initialized.
 * OP_OK, or OP_ENOMEM with *pp and *cap unchanged (also on overflow). */
int op_reserve(void *pp, size_t *cap, size_t need, size_t elem, size_t min);

/* Test hook: make the n-th allocation from now (1-based) and every later
 * one fail; 0 switches failure injection off. */
void op_alloc_fail_after(long n);

/* ---- string views ---------------------------------------------------- */

/* A length-carrying view into bytes owned by someone else. */
struct op_str {
    const char *p;
    size_t len;
};

#define OP_STR_LIT(s) ((struct op_str){ (s), sizeof(s) - 1 })
bool op_str_eq(struct op_str a, const char *lit);

/* ---- bounded buffers ------------------------------------------------- */

/* A growable byte buffer with a cap fixed at init (curl's dynbuf). The data
 * is always NUL-terminated for convenience, the NUL is not counted in len. */
struct op_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void op_buf_init(struct op_buf *b, size_t max);
void op_buf_fini(struct op_buf *b);
void op_buf_reset(struct op_buf *b);
/* Return OP_OK, OP_ETOOBIG past the cap, or OP_ENOMEM. */
int op_buf_append(struct op_buf *b, const void *p, size_t n);
int op_buf_appends(struct op_buf *b, const char *s);
int op_buf_appendf(struct op_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int op_buf_vappendf(struct op_buf *b, const char *fmt, va_list ap);
/* Hands the bytes to the caller, who frees them with op_free; b is empty. */
char *op_buf_steal(struct op_buf *b, size_t *len);

/* ---- little-endian integers in byte buffers --------------------------- */

/* The byte order of every on-disk and wire format here; on a little-endian
 * machine each is one move. */
static inline void op_le64_put(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    __builtin_memcpy(p, &v, 8);
}

static inline uint64_t op_le64_get(const uint8_t *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* ---- files ----------------------------------------------------------- */

/* Reads the whole file at path into *data (NUL-terminated, not counted in
 * *len), which the caller frees with op_free. OP_EIO if it cannot be
 * opened or read (errno tells why), OP_ETOOBIG past max bytes, OP_ENOMEM. */
int op_file_read_all(const char *path, size_t max, char **data, size_t *len);

/* ---- time ------------------------------------------------------------ */

int64_t op_time_now_ms(void);  /* wall clock, Unix milliseconds */
int64_t op_time_mono_ns(void); /* monotonic clock, nanoseconds */

/* ---- checked parsing ------------------------------------------------- */

/* Whole-string parses of s[0..len): no leading or trailing junk, no
 * overflow. Return OP_OK, OP_EINVAL or OP_ERANGE. */
int op_parse_i64(const char *s, size_t len, int64_t *out);
int op_parse_double(const char *s, size_t len, double *out);
/* Durations: a non-negative integer with unit ms, s, m, h or d ("500ms",
 * "5s", "2h", "7d"); a bare number is milliseconds. */
int op_parse_duration_ms(const char *s, size_t len, int64_t *out);
/* Sizes: a non-negative integer with an optional unit B, k/KiB, M/MiB,
 * G/GiB (powers of 1024). */
int op_parse_size(const char *s, size_t len, int64_t *out);

/* Formats a double as the shortest decimal that reads back to the same
 * value (as Python's repr and JavaScript do). buf needs 32 bytes. Returns
 * the length. */
size_t op_fmt_double(char *buf, double v);

/* ---- hashing (util_hash.c) -------------------------------------------- */

/* FNV-1a over p[0..n), 32 bits. */
uint32_t op_fnv1a32(const void *p, size_t n);

/* ---- settled positions (util_ranges.c) ---------------------------------- */

/* A set of positions: everything <= floor, plus disjoint, non-adjacent,
 * sorted closed ranges above floor + 1 (after op_ranges_merge). An
 * uplink's acknowledged positions on the sender, and the positions a
 * receiver stored for a (node, uplink), when batches arrive out of
 * position order (priorities, docs/uplink.md). */
struct op_range {
    int64_t lo, hi;
};
struct op_ranges {
    int64_t floor;
    struct op_range *r;
    size_t n, cap;
    bool merged; /* r is normalized (what add leaves false) */
};
void op_ranges_init(struct op_ranges *s, int64_t floor);
void op_ranges_fini(struct op_ranges *s);
void op_ranges_clear(struct op_ranges *s, int64_t floor);
/* Adds lo..hi (lo <= hi); op_ranges_merge before the next lookup. */
int op_ranges_add(struct op_ranges *s, int64_t lo, int64_t hi);
/* Adds what a batch settles: first..last, or with points only those
 * npoints positions (any order). */
int op_ranges_cover(struct op_ranges *s, const int64_t *points, size_t npoints, int64_t first,
                    int64_t last);
/* Raises the floor to at least floor. */
void op_ranges_raise(struct op_ranges *s, int64_t floor);
/* Sorts, joins overlapping and adjacent ranges and folds into the floor
 * the ones that reach it. */
void op_ranges_merge(struct op_ranges *s);
/* The range above the floor holding pos, or NULL. */
const struct op_range *op_ranges_find(const struct op_ranges *s, int64_t pos);
static inline bool op_ranges_has(const struct op_ranges *s, int64_t pos)
{
    return pos <= s->floor || op_ranges_find(s, pos) != NULL;
}
/* Positions held above the floor. */
int64_t op_ranges_above(const struct op_ranges *s);

#endif
