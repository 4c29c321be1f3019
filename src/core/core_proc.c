/* Facts about this process read from /proc, for metrics and benchmarks. */
#include <stdio.h>
#include <unistd.h>

#include "outpost/core.h"

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
