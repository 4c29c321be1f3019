/* Facts about this process read from /proc, for metrics and benchmarks,
 * and the one-way switch from root to the configured user. */
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

/* Hands one file in dfd to uid/gid through a descriptor: no symlink is
 * followed, and a hard link (nlink > 1) to a file elsewhere is refused. */
static int chown_file(int dfd, const char *dir, const char *name, uid_t uid, gid_t gid,
                      struct op_diag *d)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT)
        return OP_OK;
    struct stat st;
    int rc = OP_OK;
    if (fd < 0 || fstat(fd, &st)) {
        op_diag_set(d, "privileges", "cannot open %s/%s: %m", dir, name);
        rc = OP_EIO;
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        op_diag_set(d, "privileges", "%s/%s is not a plain file with one link: not handing it "
                    "to the user", dir, name);
        rc = OP_EIO;
    } else if (fchown(fd, uid, gid)) {
        op_diag_set(d, "privileges", "cannot hand %s/%s to the user: %m", dir, name);
        rc = OP_EIO;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int chown_dir(const char *dir, const char *const *names, uid_t uid, gid_t gid,
                     struct op_diag *d)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || fchown(dfd, uid, gid)) {
        op_diag_set(d, "privileges", "cannot hand %s to the user: %m", dir);
        if (dfd >= 0)
            close(dfd);
        return OP_EIO;
    }
    int rc = OP_OK;
    for (int i = 0; names && names[i] && !rc; i++)
        rc = chown_file(dfd, dir, names[i], uid, gid, d);
    close(dfd);
    return rc;
}

int op_proc_drop_privileges(const char *user, const char *dir, const char *const *names,
                            struct op_diag *d)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof buf, &res) || !res) {
        op_diag_set(d, "privileges", "user '%s' does not exist", user);
        return OP_ENOTFOUND;
    }
    int rc = chown_dir(dir, names, pw.pw_uid, pw.pw_gid, d);
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
