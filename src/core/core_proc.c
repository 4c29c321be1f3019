/* Facts about this process read from /proc, for metrics and benchmarks,
 * and the one-way switch from root to the configured user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outpost/core.h"
#include "outpost/err.h"

int64_t op_proc_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    long size = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

/* chowns dir and the entries directly inside it (the store keeps no
 * subdirectories); symlinks are not followed. */
static int chown_dir(const char *dir, uid_t uid, gid_t gid, struct op_diag *d)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || fchown(dfd, uid, gid)) {
        op_diag_set(d, "privileges", "cannot hand %s to the user: %m", dir);
        if (dfd >= 0)
            close(dfd);
        return OP_EIO;
    }
    DIR *dp = fdopendir(dfd);
    if (!dp) {
        close(dfd);
        return OP_EIO;
    }
    int rc = OP_OK;
    struct dirent *e;
    while (!rc && (e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW)) {
            op_diag_set(d, "privileges", "cannot hand %s/%s to the user: %m", dir, e->d_name);
            rc = OP_EIO;
        }
    }
    closedir(dp);
    return rc;
}

int op_proc_drop_privileges(const char *user, const char *dir, struct op_diag *d)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof buf, &res) || !res) {
        op_diag_set(d, "privileges", "user '%s' does not exist", user);
        return OP_ENOTFOUND;
    }
    int rc = chown_dir(dir, pw.pw_uid, pw.pw_gid, d);
    if (rc)
        return rc;
    /* Groups first, uid last: once the uid changes nothing else may. glibc
     * applies each call to every thread of the process. */
    if (setgroups(1, &pw.pw_gid) || setgid(pw.pw_gid) || setuid(pw.pw_uid)) {
        op_diag_set(d, "privileges", "cannot switch to user '%s': %m", user);
        return OP_EIO;
    }
    if (pw.pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        op_diag_set(d, "privileges", "root could be regained after switching to '%s'", user);
        return OP_EIO;
    }
    return OP_OK;
}
