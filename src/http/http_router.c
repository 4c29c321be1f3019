/*
 * The route table: every route the node serves, its method and handler.
 * The metrics label of a route is its pattern, so the table also bounds
 * the number of series in outpost_http_requests_total. Every route names
 * the role it needs (OP_ROLE_UNSET is rejected by the unit tests and the
 * RBAC matrix test is generated from `outpost routes`), so a new route
 * cannot be added without deciding who may call it.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"

const struct http_route http__routes[] = {
    { "/v1/readings", HM_POST, http__h_readings_post, HB_JSON, OP_ROLE_INGEST },
    { "/v1/readings", HM_GET, http__h_readings_get, HB_NONE, OP_ROLE_READ },
    { "/v1/readings/aggregate", HM_GET, http__h_readings_aggregate, HB_NONE, OP_ROLE_READ },
    { "/v1/sensors", HM_GET, http__h_sensors, HB_NONE, OP_ROLE_READ },
    { "/v1/devices", HM_GET, http__h_devices_list, HB_NONE, OP_ROLE_READ },
    { "/v1/devices/{id}", HM_PUT, http__h_device_put, HB_JSON, OP_ROLE_INGEST },
    { "/v1/devices/{id}", HM_GET, http__h_device_get, HB_NONE, OP_ROLE_READ },
    { "/v1/devices/{id}", HM_DELETE, http__h_device_delete, HB_NONE, OP_ROLE_ADMIN },
    { "/v1/rules", HM_GET, http__h_rules_list, HB_NONE, OP_ROLE_READ },
    { "/v1/rules/{id}", HM_PUT, http__h_rule_put, HB_JSON, OP_ROLE_ADMIN },
    { "/v1/rules/{id}", HM_GET, http__h_rule_get, HB_NONE, OP_ROLE_READ },
    { "/v1/rules/{id}", HM_DELETE, http__h_rule_delete, HB_NONE, OP_ROLE_ADMIN },
    { "/v1/alerts", HM_GET, http__h_alerts, HB_NONE, OP_ROLE_READ },
    { "/v1/alerts/stream", HM_GET, http__h_alerts_stream, HB_NONE, OP_ROLE_READ },
    { "/v1/uplink", HM_POST, http__h_uplink_post, HB_BATCH, OP_ROLE_NODE },
    { "/v1/uplinks", HM_GET, http__h_uplinks, HB_NONE, OP_ROLE_READ },
    { "/v1/uplinks/dead-letters", HM_GET, http__h_dead_letters, HB_NONE, OP_ROLE_READ },
    { "/data", HM_POST, http__h_compat_data_post, HB_JSON, OP_ROLE_INGEST },
    { "/data", HM_GET, http__h_compat_data_get, HB_NONE, OP_ROLE_READ },
    { "/status", HM_POST, http__h_compat_status_post, HB_NONE, OP_ROLE_INGEST },
    { "/status", HM_GET, http__h_compat_status_get, HB_NONE, OP_ROLE_READ },
    { "/healthz", HM_GET, http__h_healthz, HB_NONE, OP_ROLE_PUBLIC },
    { "/readyz", HM_GET, http__h_readyz, HB_NONE, OP_ROLE_PUBLIC },
    { "/metrics", HM_GET, http__h_metrics, HB_NONE, OP_ROLE_READ },
};
const int http__nroutes = (int)(sizeof http__routes / sizeof http__routes[0]);

static const struct {
    const char *name;
    int method;
} methods[] = {
    { "GET", HM_GET }, { "POST", HM_POST }, { "PUT", HM_PUT }, { "DELETE", HM_DELETE },
    { "HEAD", HM_HEAD },
};

int http__method_parse(const char *m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(m, methods[i].name))
            return methods[i].method;
    return HM_OTHER;
}

static const char *method_name(int m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].method == m)
            return methods[i].name;
    return "?";
}

/* Matches path against pattern; a trailing "{id}" takes one non-empty
 * segment into *param. */
static bool path_match(const char *pattern, const char *path, struct op_str *param)
{
    const char *brace = strstr(pattern, "{id}");
    if (!brace)
        return strcmp(pattern, path) == 0;
    size_t prefix = (size_t)(brace - pattern);
    if (strncmp(pattern, path, prefix))
        return false;
    const char *seg = path + prefix;
    if (!*seg || strchr(seg, '/'))
        return false;
    param->p = seg;
    param->len = strlen(seg);
    return true;
}

const struct http_route *http__route_find(int method, const char *path, struct op_str *param,
                                          int *idx, char *allow, size_t allowlen)
{
    allow[0] = '\0';
    int found_path = -1;
    for (int i = 0; i < http__nroutes; i++) {
        const struct http_route *rt = &http__routes[i];
        if (!path_match(rt->pattern, path, param))
            continue;
        /* HEAD is served by the GET handler; the library drops the body. */
        if (rt->method == method || (method == HM_HEAD && rt->method == HM_GET)) {
            *idx = i;
            return rt;
        }
        if (found_path < 0)
            found_path = i;
        size_t n = strlen(allow);
        snprintf(allow + n, allowlen - n, "%s%s", n ? ", " : "", method_name(rt->method));
    }
    if (found_path >= 0)
        *idx = found_path;
    return NULL;
}

const char *http__route_label(int idx)
{
    return idx < http__nroutes ? http__routes[idx].pattern : "other";
}

void op_http_routes_print(FILE *out)
{
    for (int i = 0; i < http__nroutes; i++)
        fprintf(out, "%s %s %s\n", method_name(http__routes[i].method), http__routes[i].pattern,
                op_sec_role_name(http__routes[i].role));
}
