#!/usr/bin/python3
"""kill -9 soak: acknowledged readings survive SIGKILL at any moment.

    /usr/bin/python3 bench/soak/kill9.py --bin build/outpost --cycles 100

Each cycle starts the daemon on the same data dir, hammers it with
concurrent POSTs (batches and single readings, unique sensor/ts per
reading) from a few threads, kills it with SIGKILL at a random moment,
restarts it and checks that every reading that got a 201 is stored exactly
once, that batches that got another answer stored nothing, and that batches
cut off by the kill were stored whole or not at all. Every 10 cycles and at
the end the readings of all earlier cycles are checked again.

Prints `kill9 soak: N cycles, A acknowledged, L lost` and exits 1 on any
loss or violation (2 on a usage or start-up error). Uses the integration
suite's daemon control (tests/integration/outpost_proc.py).
"""

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

from outpost_proc import Hammer, Outpost, StartError, scaled, wait_until  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="path to the outpost binary")
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--threads", type=int, default=4, help="concurrent clients")
    ap.add_argument("--batch", type=int, default=100, help="readings per batch")
    ap.add_argument("--sync", choices=["full", "normal", "both"], default="both",
                    help="store.sync; 'both' alternates per cycle")
    ap.add_argument("--max-delay", type=float, default=1.0,
                    help="kill at a uniformly random moment within this many seconds of load")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=None, help="keep files here (default: a temp dir, "
                    "removed on success)")
    a = ap.parse_args()

    seed = a.seed if a.seed is not None else int(time.time())
    rnd = random.Random(seed)
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="outpost-kill9-"))
    print(f"kill9 soak: bin={a.bin} cycles={a.cycles} threads={a.threads} batch={a.batch} "
          f"sync={a.sync} seed={seed} workdir={work}", flush=True)

    d = Outpost(work, bin=a.bin)
    hammers, total_problems, lost_total = [], [], 0
    t0 = time.monotonic()
    try:
        for cycle in range(a.cycles):
            sync = a.sync if a.sync != "both" else ("full", "normal")[cycle % 2]
            d.write_config({"store": {"sync": sync}})
            d.start()
            if cycle:
                # The previous cycle's bookkeeping, checked on this fresh start.
                acked, lost, problems = hammers[-1].verify(d)
                lost_total += lost
                total_problems += [f"cycle {cycle - 1}: {p}" for p in problems]
                if cycle % 10 == 0:
                    for i, h in enumerate(hammers[:-1]):
                        _, lost, problems = h.verify(d)
                        lost_total += lost
                        total_problems += [f"cycle {i} (recheck): {p}" for p in problems]
                if total_problems:
                    break
            h = Hammer(d, threads=a.threads, batch=a.batch, prefix=f"soak/c{cycle}",
                       ts0=1_600_000_000_000).start()
            hammers.append(h)
            # Let some load get acknowledged, then kill at a random moment.
            wait_until(lambda: h.acked or h.errors, scaled(60), what="the first 201")
            time.sleep(rnd.uniform(0.0, a.max_delay))
            d.kill9()
            h.join()
            print(f"  cycle {cycle + 1}/{a.cycles} sync={sync}: {h.acked_readings} acknowledged, "
                  f"{len(h.unknown)} batches in flight at the kill", flush=True)
        else:
            d.start()
            for i, h in enumerate(hammers):
                _, lost, problems = h.verify(d)
                lost_total += lost
                total_problems += [f"cycle {i} (final): {p}" for p in problems]
            rc = d.stop()
            if rc != 0:
                total_problems.append(f"exit code {rc} after SIGTERM at the end")
    except (StartError, TimeoutError) as e:
        print(f"kill9 soak: aborted: {e}", file=sys.stderr)
        if d.running:
            d.kill9()
        return 2
    finally:
        if d.proc is not None and d.running:
            d.kill9()

    acked = sum(h.acked_readings for h in hammers)
    for p in total_problems[:50]:
        print(f"  PROBLEM {p}", file=sys.stderr)
    print(f"kill9 soak: {len(hammers)} cycles, {acked} acknowledged, {lost_total} lost "
          f"({len(total_problems)} problems, {time.monotonic() - t0:.0f}s)", flush=True)
    if total_problems or lost_total:
        print(f"kill9 soak: files kept in {work}", file=sys.stderr)
        return 1
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
