/*
 * The route table: every route the node serves, its method and handler.
 * The metrics label of a route is its pattern, so the table also bounds
 * the number of series in outpost_http_requests_total.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"

const struct http_route http__routes[] = {
    { "/v1/readings", HM_POST, http__h_readings_post, true },
    { "/v1/readings", HM_GET, http__h_readings_get, false },
    { "/v1/readings/aggregate", HM_GET, http__h_readings_aggregate, false },
    { "/v1/sensors", HM_GET, http__h_sensors, false },
    { "/v1/devices", HM_GET, http__h_devices_list, false },
    { "/v1/devices/{id}", HM_PUT, http__h_device_put, true },
    { "/v1/devices/{id}", HM_GET, http__h_device_get, false },
    { "/v1/devices/{id}", HM_DELETE, http__h_device_delete, false },
    { "/data", HM_POST, http__h_compat_data_post, true },
    { "/data", HM_GET, http__h_compat_data_get, false },
    { "/status", HM_POST, http__h_compat_status_post, false },
    { "/status", HM_GET, http__h_compat_status_get, false },
    { "/healthz", HM_GET, http__h_healthz, false },
    { "/readyz", HM_GET, http__h_readyz, false },
    { "/metrics", HM_GET, http__h_metrics, false },
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
