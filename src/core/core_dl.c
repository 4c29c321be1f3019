/*
 * core_dl.c: loading an optional shared library on first use (libcurl,
 * libmosquitto): the first of several file names that opens, and every
 * symbol of a table, or nothing. Why these are not linked: see
 * include/outpost/curl.h.
 */
#include <dlfcn.h>

#include "outpost/core.h"

bool op_dl_load(const char *what, const char *const *files, size_t nfiles,
                const struct op_dl_sym *syms, size_t nsyms)
{
    void *h = NULL;
    for (size_t i = 0; i < nfiles && !h; i++)
        h = dlopen(files[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        OP_ERROR("core", "cannot load %s: %s", what, dlerror());
        return false;
    }
    for (size_t i = 0; i < nsyms; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p) {
            OP_ERROR("core", "%s has no %s; it is not used", what, syms[i].name);
            return false; /* the handle stays open: harmless, and rare */
        }
        *syms[i].slot = p;
    }
    return true;
}
