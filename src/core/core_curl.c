/*
 * core_curl.c: loads libcurl on first use (see include/outpost/curl.h for
 * why it is not linked). All or nothing: a library missing one of the
 * functions is not used.
 */
#include <pthread.h>

#include "outpost/core.h"
#include "outpost/curl.h"

static struct op_curl api;
static const struct op_curl *loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *const libs[] = { "libcurl-gnutls.so.4", "libcurl.so.4" };

#define SYM(field, name) { name, (void **)&api.field }

static void load(void)
{
    const struct op_dl_sym syms[] = {
        SYM(global_init, "curl_global_init"),
        SYM(global_cleanup, "curl_global_cleanup"),
        SYM(easy_init, "curl_easy_init"),
        SYM(easy_setopt, "curl_easy_setopt"),
        SYM(easy_perform, "curl_easy_perform"),
        SYM(easy_getinfo, "curl_easy_getinfo"),
        SYM(easy_cleanup, "curl_easy_cleanup"),
        SYM(easy_strerror, "curl_easy_strerror"),
        SYM(slist_append, "curl_slist_append"),
        SYM(slist_free_all, "curl_slist_free_all"),
        SYM(free, "curl_free"),
        SYM(url, "curl_url"),
        SYM(url_cleanup, "curl_url_cleanup"),
        SYM(url_set, "curl_url_set"),
        SYM(url_get, "curl_url_get"),
    };
    if (!op_dl_load("libcurl (Debian package libcurl3-gnutls)", libs, 2, syms,
                    sizeof syms / sizeof syms[0]))
        return;
    /* Once for the process, never cleaned up: several users share it and
     * the library stays mapped to the end anyway. */
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        OP_ERROR("core", "curl_global_init failed");
        return;
    }
    loaded = &api;
}

const struct op_curl *op_curl(void)
{
    pthread_once(&once, load);
    return loaded;
}
