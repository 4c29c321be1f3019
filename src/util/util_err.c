/*
 * Names for enum op_err and the single retry predicate every retrying
 * component uses.
 */
#include "outpost/err.h"

const char *op_err_str(int rc)
{
    switch (rc) {
    case OP_OK: return "ok";
    case OP_ENOMEM: return "out of memory";
    case OP_EINVAL: return "invalid argument";
    case OP_EIO: return "i/o error";
    case OP_ENOSPC: return "storage full";
    case OP_EBUSY: return "busy";
    case OP_ECORRUPT: return "corrupt data";
    case OP_ENOTFOUND: return "not found";
    case OP_ERANGE: return "out of range";
    case OP_ESHUTDOWN: return "shutting down";
    case OP_ETOOBIG: return "too big";
    default: return rc > 0 ? "ok (count)" : "unknown error";
    }
}

bool op_err_is_retryable(int rc)
{
    return rc == OP_EBUSY || rc == OP_ENOSPC || rc == OP_EIO || rc == OP_ENOMEM;
}
