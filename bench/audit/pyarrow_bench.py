"""Reward histogram with pyarrow.compute on the same shards: read the reward
column, then count values (few distinct) or bin them. Prints one JSON line with the seconds of
each of 3 runs and the process's peak resident set."""
import glob, json, os, resource, sys, time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

d = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
pa.set_cpu_count(threads)
pa.set_io_thread_count(threads)
paths = sorted(glob.glob(os.path.join(d, "data", "rl", "*.parquet")))


def hist():
    t = ds.dataset(paths, format="parquet").to_table(columns=["reward"], use_threads=True)
    r = t.column("reward")
    counts = pc.value_counts(r.drop_null())
    if len(counts) > 10:
        mm = pc.min_max(r)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        idx = pc.floor(pc.divide(pc.subtract(r, lo), (hi - lo) / 20))
        counts = pc.value_counts(pc.min_element_wise(idx, 19))
    return t.num_rows, counts


secs = []
for _ in range(3):
    t0 = time.perf_counter()
    n, _ = hist()
    secs.append(time.perf_counter() - t0)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"tool": f"pyarrow {pa.__version__} (C++, {threads} threads)", "task": "reward histogram", "rows": n,
                  "seconds": secs, "peak_rss_mb": rss}))
