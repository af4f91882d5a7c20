#!/usr/bin/env bash
# Resident memory of a ksfs mount and of the storage nodes under read workloads (issue 19,
# "memory stays bounded": the figures beside the random-read and small-file rows).
#
#   ksfs/bench/rss.sh            (root: FUSE mount, drop_caches, clear_refs)
#
# Starts `kdss up --no-mount` (1 master, 4 nodes x 2 disks, EC 5+2) and one ksfs mount with
# default settings (plus MOUNT_EXTRA lines), writes a SIZE file with fio, then for each
# phase drops the page cache, resets the peak RSS (VmHWM) of the mount and of every storage
# node (`echo 5 > /proc/PID/clear_refs`), runs the phase and reads VmHWM and VmRSS:
#   randread   fio 4 KiB random reads, 4 jobs, RANDTIME s (perf-fs.sh's random-read row)
#   smallfile  perf-fs.sh's small.py: NFILES files of 4 KiB in 50 directories, create,
#              stat, read, delete
#   range32    fio 64 KiB random reads with O_DIRECT, 32 jobs, RANDTIME s: 32 range reads
#              at a time reach the storage nodes (the page cache cannot answer them)
# and prints one markdown table. Everything started here is stopped on exit.
#
# Env: KDSS_BIN (target/release), SIZE (1G), RANDTIME (30), NFILES (5000), PORT_BASE
# (17900), BENCH (../shared/bench, for small.py), MOUNT_EXTRA.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KDSS_BIN:-$here/target/release}
size=${SIZE:-1G}; randtime=${RANDTIME:-30}; nfiles=${NFILES:-5000}
port_base=${PORT_BASE:-17900}; bench=${BENCH:-$here/../shared/bench}
for b in "$bin/kdss" "$bin/ksfs"; do [ -x "$b" ] || { echo "rss.sh: $b missing (cargo build --release)" >&2; exit 1; }; done
command -v fio >/dev/null || { echo "rss.sh: needs fio" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "rss.sh: needs root (drop_caches, clear_refs)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/ksfs-rss.XXXXXX)
up_pid=; ksfs_pid=; mnt=$work/mnt
cleanup() {
	[ -n "$ksfs_pid" ] && { fusermount3 -u -z "$mnt" 2>/dev/null || true; kill "$ksfs_pid" 2>/dev/null || true; wait "$ksfs_pid" 2>/dev/null || true; }
	[ -n "$up_pid" ] && { kill -INT "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# small.py is the small-file script perf-fs.sh writes out; take it from there.
awk '/cat >"\$RES\/small.py"/{f=1;next} /^PY$/{f=0} f' "$bench/perf-fs.sh" >"$work/small.py"
[ -s "$work/small.py" ] || { echo "rss.sh: no small.py in $bench/perf-fs.sh" >&2; exit 1; }

"$bin/kdss" up --data "$work/data" --no-mount --port-base "$port_base" --disk-size 2GiB >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 240); do grep -q "KDSS is up" "$work/up.log" && break; kill -0 "$up_pid" || break; sleep 0.5; done
grep -q "KDSS is up" "$work/up.log" || { cat "$work/up.log" >&2; exit 1; }
cli=$work/data/cli.toml
val() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$cli"; }
mkdir -p "$mnt"
cat >"$work/mount.toml" <<EOF
[cluster]
masters = $(sed -n 's/^masters = \(.*\)$/\1/p' "$cli")
[auth]
access_key = "$(val access_key)"
secret_key = "$(val secret_key)"
bucket = "kdss"
[mount]
mountpoint = "$mnt"
${MOUNT_EXTRA:-}
EOF
"$bin/ksfs" -c "$work/mount.toml" >"$work/ksfs.log" 2>&1 &
ksfs_pid=$!
for _ in $(seq 200); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { cat "$work/ksfs.log" >&2; exit 1; }
nodes=$(pgrep -f "kdss storage -c $work/data/config/node-" | tr '\n' ' ')
[ -n "$nodes" ] || { echo "rss.sh: no storage node processes found" >&2; exit 1; }

mib() { awk -v k="$2:" '$1 == k { print int($2 / 1024) }' "/proc/$1/status"; }
reset() { for p in "$ksfs_pid" $nodes; do echo 5 >"/proc/$p/clear_refs"; done; }
nodes_max() { local m=0 v; for p in $nodes; do v=$(mib "$p" "$1"); [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }
dropc() { sync; echo 3 >/proc/sys/vm/drop_caches; }
rows=()
row() { # phase figure
	rows+=("| $1 | $2 | $(mib "$ksfs_pid" VmHWM) | $(mib "$ksfs_pid" VmRSS) | $(nodes_max VmHWM) | $(nodes_max VmRSS) | $load |")
}

f=$mnt/rss.dat
fio --name=w --filename="$f" --rw=write --bs=1M --size="$size" --end_fsync=1 --output-format=terse >/dev/null
rows+=("| (after writing $size) | | $(mib "$ksfs_pid" VmHWM) | $(mib "$ksfs_pid" VmRSS) | $(nodes_max VmHWM) | $(nodes_max VmRSS) | |")

dropc; reset; load=$(cut -d' ' -f1 /proc/loadavg)
iops=$(fio --name=r --filename="$f" --rw=randread --bs=4k --size="$size" --numjobs=4 --runtime="$randtime" \
	--time_based --group_reporting --output-format=json | python3 -c 'import json,sys; print(round(sum(j["read"]["iops"] for j in json.load(sys.stdin)["jobs"])))')
row "randread 4 KiB, 4 jobs" "$iops IOPS"

dropc; reset; load=$(cut -d' ' -f1 /proc/loadavg)
mkdir -p "$mnt/small"
rates=""
for ph in create stat read delete; do
	dropc
	rates="$rates $ph $(python3 "$work/small.py" "$ph" "$mnt/small" "$nfiles" 50)/s"
done
row "small files ($nfiles x 4 KiB)" "$rates"

dropc; reset; load=$(cut -d' ' -f1 /proc/loadavg)
mibs=$(fio --name=r32 --filename="$f" --rw=randread --bs=64k --direct=1 --size="$size" --numjobs=32 \
	--runtime="$randtime" --time_based --group_reporting --output-format=json \
	| python3 -c 'import json,sys; print(round(sum(j["read"]["bw_bytes"] for j in json.load(sys.stdin)["jobs"]) / 1048576))')
row "range reads 64 KiB, 32 jobs, O_DIRECT" "$mibs MiB/s"

echo
echo "binaries $bin; mount: defaults${MOUNT_EXTRA:+ + $MOUNT_EXTRA}; nodes: $(echo $nodes | wc -w) storage processes"
echo
echo "| phase | result | mount VmHWM (MiB) | mount VmRSS after (MiB) | largest node VmHWM (MiB) | largest node VmRSS after (MiB) | load avg |"
echo "|---|---|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
