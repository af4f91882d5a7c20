#!/usr/bin/env bash
# 4 KiB random reads with the read cache's disk tier (`[mount] cache_dir`, issue 19).
#
#   ksfs/bench/disk_cache.sh
#
# Starts a local cluster with `kdss up --no-mount` (4 nodes x 2 disks, EC 5+2), writes a
# SIZE_MIB file through a ksfs mount, then reads READS random 4 KiB-aligned 4 KiB ranges of
# it (one reader, pread, POSIX_FADV_RANDOM, the same offsets every pass) twice, each time
# through a fresh mount (memory cache cold) with the same cache_dir, after dropping the page
# cache when root:
#   both cold  - cache_dir empty: every block comes from the storage nodes (and is written
#                to the disk cache behind the reads);
#   disk warm  - a new mount on the directory the first pass filled: blocks from local disk.
# Prints one markdown table with reads/s and the mount's disk-cache counters.
#
# Env: KDSS_BIN (directory with kdss and ksfs; default target/release if built, else
# target/debug), SIZE_MIB (256), READS (4000), PORT_BASE (18300), WORK_ROOT (/tmp: where
# the cluster's files go; tmpfs spares a small disk), DISK_SIZE (kdss up's default),
# CACHE_ROOT (the work dir: where cache_dir goes; keep it on the disk meant for the cache).
# Needs FUSE and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
size_mib=${SIZE_MIB:-256}; reads=${READS:-4000}; port_base=${PORT_BASE:-18300}
bin=${KDSS_BIN:-}
if [ -z "$bin" ]; then
	bin=$here/target/debug; [ -x "$here/target/release/ksfs" ] && bin=$here/target/release
fi
for b in kdss ksfs; do [ -x "$bin/$b" ] || { echo "disk_cache.sh: $bin/$b missing (cargo build --bins)" >&2; exit 1; }; done
command -v fusermount3 >/dev/null || { echo "disk_cache.sh: needs fusermount3 (FUSE)" >&2; exit 1; }

work=$(mktemp -d "${WORK_ROOT:-/tmp}/ksfs-dcache.XXXXXX")
dcache=$(mktemp -d "${CACHE_ROOT:-$work}/ksfs-dcache.XXXXXX")
up_pid=; ksfs_pid=; mnt=$work/mnt
cleanup() {
	[ -n "$ksfs_pid" ] && { fusermount3 -u -z "$mnt" 2>/dev/null || true; kill "$ksfs_pid" 2>/dev/null || true; wait "$ksfs_pid" 2>/dev/null || true; }
	[ -n "$up_pid" ] && { kill -INT "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; }
	rm -rf "$work" "$dcache"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "starting the cluster in $work" >&2
"$bin/kdss" up --data "$work/data" --no-mount --port-base "$port_base" ${DISK_SIZE:+--disk-size "$DISK_SIZE"} >"$work/up.log" 2>&1 &
up_pid=$!
json=$work/data/cluster.json
for _ in $(seq 600); do
	[ -s "$json" ] && grep -q '"running"' "$json" && break
	kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log" >&2; exit 1; }
	sleep 0.5
done
[ -s "$json" ] || { echo "disk_cache.sh: cluster did not start:" >&2; cat "$work/up.log" >&2; exit 1; }
read -r masters ak sk < <(python3 - "$json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(",".join('"%s"' % m["grpc"] for m in j["masters"]), j["s3"]["access_key"], j["s3"]["secret_key"])
PY
)
mport=$((port_base + 2390))

mount_it() { # extra [mount] lines
	mkdir -p "$mnt"
	cat >"$work/mount.toml" <<EOF
[cluster]
masters = [$masters]
[auth]
access_key = "$ak"
secret_key = "$sk"
bucket = "kdss"
[mount]
mountpoint = "$mnt"
metrics_addr = "127.0.0.1:$mport"
$1
EOF
	"$bin/ksfs" -c "$work/mount.toml" >>"$work/ksfs.log" 2>&1 &
	ksfs_pid=$!
	for _ in $(seq 200); do grep -q " $mnt " /proc/self/mountinfo && break; sleep 0.1; done
	grep -q " $mnt " /proc/self/mountinfo || { cat "$work/ksfs.log" >&2; exit 1; }
}
unmount_it() {
	fusermount3 -u "$mnt"
	wait "$ksfs_pid" 2>/dev/null || true
	ksfs_pid=
}
metric() {
	python3 - "127.0.0.1:$mport" "$1" <<'PY' 2>/dev/null || echo 0
import sys, urllib.request
t = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=2).read().decode()
print(next(int(float(l.split()[1])) for l in t.splitlines() if l.startswith(sys.argv[2] + " ")))
PY
}
drop_caches() { [ "$(id -u)" = 0 ] && { sync; echo 3 >/proc/sys/vm/drop_caches; } || true; }

mount_it ""
echo "writing $size_mib MiB" >&2
dd if=/dev/urandom of="$mnt/rand.dat" bs=1M count="$size_mib" conv=fsync status=none
unmount_it

cache="cache_dir = \"$dcache\"
cache_dir_size = \"1GiB\""
rows=()
for pass in "both cold" "disk warm"; do
	drop_caches
	mount_it "$cache"
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	rate=$(python3 - "$mnt/rand.dat" "$reads" <<'PY'
import os, random, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
rng = random.Random(19)
offs = [rng.randrange(size // 4096) * 4096 for _ in range(n)]
t = time.monotonic()
for o in offs:
    assert len(os.pread(fd, 4096, o)) == 4096
print(round(n / (time.monotonic() - t)))
PY
)
	hits=$(metric kdss_ksfs_disk_cache_hits_total)
	misses=$(metric kdss_ksfs_disk_cache_misses_total)
	sleep 3 # let the writes behind the reads land before the next mount
	writes=$(metric kdss_ksfs_disk_cache_writes_total)
	drops=$(metric kdss_ksfs_disk_cache_write_drops_total)
	rows+=("| $pass | $rate | $hits | $misses | $writes | $drops | $load |")
	echo "$pass: $rate reads/s" >&2
	unmount_it
done

echo
echo "$reads random 4 KiB preads of a $size_mib MiB file, one reader, fresh mount per pass, binaries $bin"
echo
echo "| pass | reads/s | disk hits | disk misses | disk writes | write drops | load avg |"
echo "|---|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
