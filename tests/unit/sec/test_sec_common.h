/*
 * Helpers shared by the signing and sealing unit tests: a temporary
 * directory with real files in it, and whole-file reads and writes that
 * fail the test rather than return an error.
 */
#ifndef TEST_SEC_COMMON_H
#define TEST_SEC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A fresh directory under $TMPDIR (or /tmp); tsec_rmrf removes it and
 * frees the name. */
char *tsec_tmpdir(void);
void tsec_rmrf(char *dir);

/* dir/name, which the caller frees with op_free. */
char *tsec_path(const char *dir, const char *name);

/* Writes (replacing) or reads a whole file; read returns op_malloc'd bytes
 * with a NUL after them. */
void tsec_write(const char *path, const void *p, size_t n);
char *tsec_read(const char *path, size_t *len);
/* The permission bits of path. */
mode_t tsec_mode(const char *path);

/* Hex text (an even number of digits) into bytes, for known-answer
 * vectors; and n reproducible pseudo-random bytes from seed. */
void tsec_unhex(uint8_t *dst, const char *hex);
void tsec_fill(uint8_t *p, size_t n, uint32_t seed);

#endif
