/*
 * Roles: the names, and which credential may call which route. admin is
 * granted every route; every other role exactly its own routes (and the
 * public ones), so widening access is an explicit admin token, never a
 * side effect of a role hierarchy.
 */
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"

static const char *const role_names[] = {
    [OP_ROLE_UNSET] = NULL,       [OP_ROLE_PUBLIC] = "public", [OP_ROLE_INGEST] = "ingest",
    [OP_ROLE_READ] = "read",      [OP_ROLE_ADMIN] = "admin",   [OP_ROLE_NODE] = "node",
};

int op_sec_role_parse(const char *s, size_t len, enum op_role *out)
{
    for (int r = OP_ROLE_PUBLIC; r <= OP_ROLE_NODE; r++) {
        if (strlen(role_names[r]) == len && !memcmp(s, role_names[r], len)) {
            *out = (enum op_role)r;
            return OP_OK;
        }
    }
    return OP_EINVAL;
}

const char *op_sec_role_name(enum op_role r)
{
    return r > OP_ROLE_UNSET && r <= OP_ROLE_NODE ? role_names[r] : "unset";
}

bool op_sec_role_allows(enum op_role have, enum op_role need)
{
    if (need == OP_ROLE_PUBLIC)
        return true;
    if (need == OP_ROLE_UNSET || have == OP_ROLE_UNSET || have == OP_ROLE_PUBLIC)
        return false;
    return have == OP_ROLE_ADMIN || have == need;
}
