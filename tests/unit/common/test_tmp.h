/* Temporary directories for unit tests that use real files (store, sec). */
#ifndef TEST_TMP_H
#define TEST_TMP_H

/* A fresh directory $TMPDIR/outpost-<tag>-XXXXXX (or under /tmp); fails
 * the test if it cannot be made. Free with tu_rmrf. */
char *tu_tmpdir(const char *tag);
/* Removes dir and everything below it, and frees the name. NULL-safe. */
void tu_rmrf(char *dir);

#endif
