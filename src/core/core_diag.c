/* The diagnostic record filled at user-facing edges (config, HTTP, CLI). */
#include <stdio.h>
#include <string.h>

#include "outpost/core.h"

void op_diag_clear(struct op_diag *d)
{
    memset(d, 0, sizeof *d);
    d->index = -1;
    d->line = -1;
}

void op_diag_set(struct op_diag *d, const char *code, const char *fmt, ...)
{
    snprintf(d->code, sizeof d->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}
