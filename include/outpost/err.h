/*
 * The one project-wide error convention: 0 is success, a negative value is
 * an error from enum op_err, a positive return is a documented count.
 */
#ifndef OUTPOST_ERR_H
#define OUTPOST_ERR_H

#include <stdbool.h>

enum op_err {
    OP_OK = 0,
    OP_ENOMEM = -1,    /* an allocation failed or a memory cap was reached */
    OP_EINVAL = -2,    /* bad argument or bad input */
    OP_EIO = -3,       /* an I/O or database error not covered below */
    OP_ENOSPC = -4,    /* the storage is full (disk, filesystem or file size limit) */
    OP_EBUSY = -5,     /* a bounded queue is full; try again later */
    OP_ECORRUPT = -6,  /* stored or received data failed a consistency check */
    OP_ENOTFOUND = -7, /* the named thing does not exist */
    OP_ERANGE = -8,    /* a number is outside its allowed range */
    OP_ESHUTDOWN = -9, /* the component is stopping and takes no new work */
    OP_ETOOBIG = -10,  /* input exceeds a configured size cap */
};

/* A short lower-case description of rc, for logs. Never NULL. */
const char *op_err_str(int rc);

/* Whether the operation that failed with rc may succeed if retried unchanged
 * (queue full, storage full, transient I/O). The single retry predicate. */
bool op_err_is_retryable(int rc);

#endif
