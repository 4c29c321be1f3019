/*
 * libcurl, loaded on first use. The webhook sink and the uplinks are
 * libcurl's only users, and a node without either should not carry it:
 * linking it maps libcurl-gnutls with OpenSSL's libcrypto, Kerberos and
 * LDAP behind it, about 2.5 MB resident and several ms of start-up
 * (measured with outpost run on its defaults). So it is dlopen'ed the
 * first time op_curl() is called. Debian's libcurl3-gnutls package
 * provides it (the -dev package, which the build installs, depends on it).
 */
#ifndef OUTPOST_CURL_H
#define OUTPOST_CURL_H

#include <curl/curl.h>

struct op_curl {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *c);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    void (*free)(void *p);
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *u);
    CURLUcode (*url_set)(CURLU *u, CURLUPart part, const char *content, unsigned int flags);
    CURLUcode (*url_get)(const CURLU *u, CURLUPart part, char **content, unsigned int flags);
};

/* The loaded library (and curl_global_init done), or NULL when it cannot
 * be loaded (logged once). Thread-safe; cheap after the first call. */
const struct op_curl *op_curl(void);

#endif
