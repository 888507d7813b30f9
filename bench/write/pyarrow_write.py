"""pyarrow's Parquet writer on the rows of an rl shard written COPIES times: the table read from
the shard (so the same Arrow schema) repeated, written with pq.write_table in files of 131,072
rows, zstd level 3 (the level of redraft's encoder, klauspost/compress's SpeedDefault), row
groups of 4096 rows, 2 threads. Prints one JSON line like bench/write's.

    pyarrow_write.py SHARD COPIES DIR LABEL [RUNS]
    pyarrow_write.py --zstd FILE RUNS      time pyarrow's zstd (level 3) on FILE in 256 KiB pages
"""
import json, os, resource, shutil, sys, time

import pyarrow as pa
import pyarrow.parquet as pq

if sys.argv[1] == "--zstd":
    data = open(sys.argv[2], "rb").read()
    codec = pa.Codec("zstd", 3)
    secs = []
    for _ in range(int(sys.argv[3])):
        t0 = time.perf_counter()
        out = sum(len(codec.compress(data[i:i + (256 << 10)], asbytes=True))
                  for i in range(0, len(data), 256 << 10))
        secs.append(time.perf_counter() - t0)
    print(json.dumps({"tool": "pyarrow %s zstd level 3 (libzstd)" % pa.__version__, "bytes_in": len(data), "bytes_out": out,
                      "seconds": secs}))
    sys.exit(0)

src, copies, out, label = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
pa.set_cpu_count(2)
pa.set_io_thread_count(2)
base = pq.read_table(src)
table = pa.concat_tables([base] * copies)  # chunks that share base's buffers
secs = []
for _ in range(runs):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    t0 = time.perf_counter()
    nbytes, shards = 0, 0
    for i, start in enumerate(range(0, table.num_rows, 131072)):
        path = os.path.join(out, "train-%05d.parquet" % i)
        pq.write_table(table.slice(start, 131072), path, compression="zstd", compression_level=3, row_group_size=4096)
        nbytes += os.path.getsize(path)
        shards += 1
    secs.append(time.perf_counter() - t0)
shutil.rmtree(out, ignore_errors=True)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"tool": "pyarrow %s (C++)" % pa.__version__, "rows_kind": label, "rows": table.num_rows, "seconds": secs,
                  "bytes": nbytes, "shards": shards, "peak_rss_mb": rss, "source": os.path.basename(src)}))
