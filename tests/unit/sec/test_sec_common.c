/* Helpers for the signing and sealing unit tests; see test_sec_common.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/util.h"
#include "test_sec_common.h"
#include "test_tmp.h"

char *tsec_tmpdir(void)
{
    return tu_tmpdir("sec");
}

void tsec_rmrf(char *dir)
{
    tu_rmrf(dir);
}

char *tsec_path(const char *dir, const char *name)
{
    struct op_buf b;
    op_buf_init(&b, 4096);
    assert_int_equal(op_buf_appendf(&b, "%s/%s", dir, name), OP_OK);
    return op_buf_steal(&b, NULL);
}

void tsec_write(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

char *tsec_read(const char *path, size_t *len)
{
    char *data = NULL;
    assert_int_equal(op_file_read_all(path, (size_t)64 << 20, &data, len), OP_OK);
    return data;
}

mode_t tsec_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

void tsec_unhex(uint8_t *dst, const char *hex)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        dst[i] = (uint8_t)v;
    }
}

void tsec_fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}
