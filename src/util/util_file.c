/*
 * Reading a whole file into memory under a size cap: the CLI, the codec
 * benchmark and the dataset tests all load CSVs or frames this way.
 */
#include <stdio.h>

#include "outpost/err.h"
#include "outpost/util.h"

int op_file_read_all(const char *path, size_t max, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return OP_EIO;
    size_t cap = 1 << 16, n = 0;
    char *buf = op_malloc(cap + 1);
    int rc = buf ? OP_OK : OP_ENOMEM;
    while (rc == OP_OK) {
        if (n == cap) {
            if (cap >= max) {
                rc = OP_ETOOBIG;
                break;
            }
            char *nb = op_realloc(buf, cap * 2 + 1);
            if (!nb) {
                rc = OP_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = OP_EIO;
            break;
        }
    }
    fclose(f);
    if (rc != OP_OK) {
        op_free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return OP_OK;
}
