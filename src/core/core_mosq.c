/*
 * core_mosq.c: loads libmosquitto on first use (see include/outpost/mosq.h).
 */
#include <pthread.h>

#include "outpost/core.h"
#include "outpost/mosq.h"

static struct op_mosq api;
static const struct op_mosq *loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define SYM(field, name) { name, (void **)&api.field }

static void load(void)
{
    static const char *const libs[] = { "libmosquitto.so.1" };
    const struct op_dl_sym syms[] = {
        SYM(lib_init, "mosquitto_lib_init"),
        SYM(new_, "mosquitto_new"),
        SYM(destroy, "mosquitto_destroy"),
        SYM(username_pw_set, "mosquitto_username_pw_set"),
        SYM(tls_set, "mosquitto_tls_set"),
        SYM(tls_opts_set, "mosquitto_tls_opts_set"),
        SYM(connect, "mosquitto_connect"),
        SYM(disconnect, "mosquitto_disconnect"),
        SYM(publish, "mosquitto_publish"),
        SYM(loop, "mosquitto_loop"),
        SYM(publish_callback_set, "mosquitto_publish_callback_set"),
        SYM(connect_callback_set, "mosquitto_connect_callback_set"),
        SYM(reinitialise, "mosquitto_reinitialise"),
        SYM(strerror, "mosquitto_strerror"),
    };
    if (!op_dl_load("libmosquitto (Debian package libmosquitto1)", libs, 1, syms,
                    sizeof syms / sizeof syms[0]))
        return;
    if (api.lib_init() != MOSQ_ERR_SUCCESS) {
        OP_ERROR("core", "mosquitto_lib_init failed");
        return;
    }
    loaded = &api;
}

const struct op_mosq *op_mosq(void)
{
    pthread_once(&once, load);
    return loaded;
}
