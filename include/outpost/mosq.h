/*
 * libmosquitto, loaded on first use, for the MQTT uplink transport. Like
 * libcurl (outpost/curl.h) it is not linked: it brings OpenSSL's libssl and
 * libcrypto, which a node without an MQTT uplink should not map. Debian's
 * libmosquitto1 package provides it.
 */
#ifndef OUTPOST_MOSQ_H
#define OUTPOST_MOSQ_H

#include <mosquitto.h>

struct op_mosq {
    int (*lib_init)(void);
    struct mosquitto *(*new_)(const char *id, bool clean_session, void *obj);
    void (*destroy)(struct mosquitto *m);
    int (*username_pw_set)(struct mosquitto *m, const char *user, const char *password);
    int (*tls_set)(struct mosquitto *m, const char *cafile, const char *capath,
                   const char *certfile, const char *keyfile,
                   int (*pw_callback)(char *buf, int size, int rwflag, void *userdata));
    int (*tls_opts_set)(struct mosquitto *m, int cert_reqs, const char *tls_version,
                        const char *ciphers);
    int (*connect)(struct mosquitto *m, const char *host, int port, int keepalive);
    int (*disconnect)(struct mosquitto *m);
    int (*publish)(struct mosquitto *m, int *mid, const char *topic, int len, const void *payload,
                   int qos, bool retain);
    int (*loop)(struct mosquitto *m, int timeout, int max_packets);
    void (*publish_callback_set)(struct mosquitto *m, void (*cb)(struct mosquitto *, void *, int));
    void (*connect_callback_set)(struct mosquitto *m, void (*cb)(struct mosquitto *, void *, int));
    int (*reinitialise)(struct mosquitto *m, const char *id, bool clean_session, void *obj);
    const char *(*strerror)(int err);
};

/* The loaded library (mosquitto_lib_init done), or NULL (logged once). */
const struct op_mosq *op_mosq(void);

#endif
