/*
 * Side-by-side parse cost of the JSON libraries Debian packages, on the
 * shape outpost ingests: an array of readings. Prints readings/s for each
 * and the ratio to the fastest, so the choice in docs/design.md can be
 * re-checked on any machine.
 */
#include <cjson/cJSON.h>
#include <json-c/json.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static char *make_batch(int n, size_t *len)
{
    size_t cap = (size_t)n * 80 + 16, off = 0;
    char *b = malloc(cap);
    off += (size_t)snprintf(b + off, cap - off, "[");
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(b + off, cap - off,
                                "%s{\"sensor\":\"line1/temp%d\",\"value\":%d.%02d,\"ts\":17322000%05d}",
                                i ? "," : "", i % 8, 20 + i % 5, i % 100, i);
    off += (size_t)snprintf(b + off, cap - off, "]");
    *len = off;
    return b;
}

static double sink;

static int run_cjson(const char *b, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(b, len);
    int n = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, root) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "sensor");
        cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "ts");
        sink += v->valuedouble + (double)strlen(s->valuestring) + t->valuedouble;
        n++;
    }
    cJSON_Delete(root);
    return n;
}

static int run_jsonc(const char *b, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, b, (int)len);
    int n = (int)json_object_array_length(root);
    for (int i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(root, (size_t)i), *v, *s, *t;
        json_object_object_get_ex(it, "value", &v);
        json_object_object_get_ex(it, "sensor", &s);
        json_object_object_get_ex(it, "ts", &t);
        sink += json_object_get_double(v) + json_object_get_string_len(s) + (double)json_object_get_int64(t);
    }
    json_object_put(root);
    json_tokener_free(tok);
    return n;
}

struct sax { int n; int key; };
static int sx_num(void *c, const char *s, size_t l) { (void)s; sink += (double)l; ((struct sax *)c)->n += ((struct sax *)c)->key == 1; return 1; }
static int sx_str(void *c, const unsigned char *s, size_t l) { (void)c; (void)s; sink += (double)l; return 1; }
static int sx_key(void *c, const unsigned char *s, size_t l) { ((struct sax *)c)->key = (l == 5 && s[0] == 'v'); return 1; }
static const yajl_callbacks sax_cb = { .yajl_number = sx_num, .yajl_string = sx_str, .yajl_map_key = sx_key };

static int run_yajl_sax(const char *b, size_t len)
{
    struct sax st = { 0, 0 };
    yajl_handle h = yajl_alloc(&sax_cb, NULL, &st);
    yajl_parse(h, (const unsigned char *)b, len);
    yajl_complete_parse(h);
    yajl_free(h);
    return st.n;
}

static int run_yajl_tree(const char *b, size_t len)
{
    (void)len; /* yajl_tree needs a NUL-terminated copy: b is one here */
    yajl_val root = yajl_tree_parse(b, NULL, 0);
    int n = (int)YAJL_GET_ARRAY(root)->len;
    for (int i = 0; i < n; i++) {
        yajl_val it = YAJL_GET_ARRAY(root)->values[i];
        sink += YAJL_GET_DOUBLE(it->u.object.values[1]);
    }
    yajl_tree_free(root);
    return n;
}

int main(int argc, char **argv)
{
    int batch = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    size_t len;
    char *b = make_batch(batch, &len);
    struct { const char *name; int (*fn)(const char *, size_t); double rate; } libs[] = {
        { "cJSON", run_cjson, 0 }, { "json-c", run_jsonc, 0 },
        { "yajl (SAX)", run_yajl_sax, 0 }, { "yajl (tree)", run_yajl_tree, 0 },
    };
    int nlibs = (int)(sizeof libs / sizeof libs[0]);
    double best = 0;
    for (int l = 0; l < nlibs; l++) {
        long total = 0;
        double t0 = now_s(), t;
        do {
            for (int k = 0; k < 100; k++) total += libs[l].fn(b, len);
            t = now_s() - t0;
        } while (t < secs);
        libs[l].rate = (double)total / t;
        if (libs[l].rate > best) best = libs[l].rate;
    }
    printf("JSON parse of a %d-reading batch (%zu bytes), one core\n", batch, len);
    printf("%-14s %14s %10s %8s\n", "library", "readings/s", "MB/s", "ratio");
    for (int l = 0; l < nlibs; l++)
        printf("%-14s %14.0f %10.1f %7.2fx\n", libs[l].name, libs[l].rate,
               libs[l].rate / batch * (double)len / 1e6, libs[l].rate / best);
    free(b);
    return sink == 0.12345;
}
