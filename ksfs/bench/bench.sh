#!/usr/bin/env bash
# ksfs benchmark: the same workloads on a ksfs mount and on a local directory, in one run,
# with the ratio mount/local for each.
#
#   ksfs/bench/bench.sh MOUNT_DIR LOCAL_DIR [SIZE]      (SIZE default 1G)
#
# Workloads (fio from Debian, psync engine, page cache dropped before reads when root):
#   seq-write  SIZE in 1 MiB blocks, fsync at the end (durable: ksfs answers close/fsync
#              only once every shard is on disk, see docs/architecture.md, promise 1)
#   seq-read   SIZE in 1 MiB blocks
#   rand-read  4 KiB random reads over the SIZE file, 20 s
#   small files: create (write 100 bytes + close) / stat / unlink 10,000 files
# Env: FILES (default 10000), RAND_SECS (default 20), PARTS (default "data small": the
# fio workloads and the small-file workload; run one alone with PARTS=data or PARTS=small).
# rand-read runs on a fresh file after dropping caches, so the 4 KiB reads reach the
# cluster (through the client's read cache, cache_size in mount.toml) rather than the
# kernel page cache that the sequential read filled.
set -euo pipefail
mnt=${1:?usage: bench.sh MOUNT_DIR LOCAL_DIR [SIZE]}
loc=${2:?usage: bench.sh MOUNT_DIR LOCAL_DIR [SIZE]}
size=${3:-1G}
files=${FILES:-10000}
rand_secs=${RAND_SECS:-20}
parts=${PARTS:-data small}
has() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
command -v fio >/dev/null || { echo "bench.sh: install fio (apt-get install fio)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench.sh: needs python3" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

drop_caches() { [ "$(id -u)" = 0 ] && sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

fio_run() { # name dir rw bs extra...
	local name=$1 dir=$2 rw=$3 bs=$4; shift 4
	fio --name="$name" --directory="$dir" --filename=bench.dat --rw="$rw" --bs="$bs" \
		--size="$size" --ioengine=psync --numjobs=1 --group_reporting \
		--output-format=json "$@" > "$out/$name.json"
}

small_files() { # dir -> "create stat unlink" ops/s
	python3 - "$1" "$files" <<'PY'
import os, sys, time
d, n = os.path.join(sys.argv[1], "small"), int(sys.argv[2])
os.makedirs(d, exist_ok=True)
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
t = time.monotonic()
for p in names:
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"x" * 100)
    os.close(fd)
c = n / (time.monotonic() - t)
t = time.monotonic()
for p in names:
    os.stat(p)
s = n / (time.monotonic() - t)
t = time.monotonic()
for p in names:
    os.unlink(p)
u = n / (time.monotonic() - t)
os.rmdir(d)
print("%.1f %.1f %.1f" % (c, s, u))
PY
}

for side in mount local; do
	dir=$mnt; [ $side = local ] && dir=$loc
	mkdir -p "$dir/kdss-bench"; dir=$dir/kdss-bench
	echo "== $side ($dir)" >&2
	if has data; then
		fio_run "$side-seq-write" "$dir" write 1M --end_fsync=1
		drop_caches
		fio_run "$side-seq-read" "$dir" read 1M
		drop_caches
		fio_run "$side-rand-read" "$dir" randread 4k --time_based --runtime="$rand_secs" \
			--invalidate=1
		rm -f "$dir/bench.dat"
	fi
	if has small; then
		small_files "$dir" > "$out/$side-small.txt"
	fi
	rmdir "$dir" 2>/dev/null || true
done

python3 - "$out" "$size" "$files" <<'PY'
import json, os, sys
out, size, files = sys.argv[1], sys.argv[2], sys.argv[3]
def fio(side, name, rw):
    j = json.load(open(os.path.join(out, "%s-%s.json" % (side, name))))["jobs"][0][rw]
    return j["bw_bytes"] / 2**20, j["iops"]
rows = []
if os.path.exists(os.path.join(out, "mount-seq-write.json")):
    for name, rw, unit in [("seq-write", "write", "MiB/s"), ("seq-read", "read", "MiB/s"), ("rand-read", "read", "IOPS")]:
        m, l = fio("mount", name, rw), fio("local", name, rw)
        k = 0 if unit == "MiB/s" else 1
        rows.append((name + (" 1MiB" if k == 0 else " 4KiB"), m[k], l[k], unit))
if os.path.exists(os.path.join(out, "mount-small.txt")):
    ms = [float(x) for x in open(os.path.join(out, "mount-small.txt")).read().split()]
    ls = [float(x) for x in open(os.path.join(out, "local-small.txt")).read().split()]
    for i, what in enumerate(["create", "stat", "unlink"]):
        rows.append(("%s %s files" % (what, files), ms[i], ls[i], "ops/s"))
print("| workload (size %s) | ksfs | local | unit | ksfs/local |" % size)
print("|---|---:|---:|---|---:|")
for name, m, l, unit in rows:
    print("| %s | %.1f | %.1f | %s | %.3f |" % (name, m, l, unit, m / l if l else 0))
PY
