#!/usr/bin/env bash
# Several ksfs builds (or settings) side by side on ONE `kdss up` cluster, through
# ../shared/bench/perf-fs.sh: each NAME=BINDIR[:MOUNT_LINES] gets its own mount of the same
# bucket (and its own subdirectory in it), so the master, nodes and disks are shared and
# only the client differs. The cluster runs the kdss of the first BINDIR.
#
#   ksfs/bench/builds.sh new=target/release 'old=/tmp/old-bin' 'noatime=target/release:atime = "noatime"'
#
# MOUNT_LINES are added to that mount's [mount] section (\n separates lines), e.g.
# 'cache_dir = "/var/tmp/c1"\ncache_dir_size = "4GiB"'. Root (FUSE mounts, drop_caches).
# Env: W (/var/tmp/kdss-builds, wiped), PORT (32400), DISK_SIZE (1GiB per file disk),
# HOLD=1 (mount and wait, for profiling), and perf-fs.sh's SIZE (64M), SKIP (randread),
# REPS (3). Everything started here is stopped and unmounted on exit, also on failure.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,13p' "$0"; exit 2; }
W=${W:-/var/tmp/kdss-builds}; PORT=${PORT:-32400}
here=$(cd "$(dirname "$0")" && pwd)
BENCH=${BENCH:-$here/../../../shared/bench}
first=${1#*=}; first=${first%%:*}
pids=(); mnts=(); dirs=()
cleanup() {
	for m in "${mnts[@]}"; do fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 2; rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W"
"$first/kdss" up --data "$W/kdss" --no-mount --port-base "$PORT" --disk-size "${DISK_SIZE:-1GiB}" >"$W/up.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do grep -q "KDSS is up" "$W/up.log" && break; sleep 1; done
grep -q "KDSS is up" "$W/up.log" || { echo "builds.sh: kdss up did not come up" >&2; exit 1; }
cli=$W/kdss/cli.toml
val() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$cli"; }
masters=$(sed -n 's/^masters = \(.*\)$/\1/p' "$cli"); ak=$(val access_key); sk=$(val secret_key)
for a in "$@"; do
	name=${a%%=*}; rest=${a#*=}; bin=${rest%%:*}; extra=""
	[[ "$rest" == *:* ]] && extra=${rest#*:}
	mkdir -p "$W/$name"
	printf '[cluster]\nmasters = %s\n[auth]\naccess_key = "%s"\nsecret_key = "%s"\nbucket = "kdss"\n[mount]\nmountpoint = "%s"\n%b\n' \
		"$masters" "$ak" "$sk" "$W/$name" "$extra" >"$W/$name.toml"
	"$bin/ksfs" -c "$W/$name.toml" >"$W/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 60); do mountpoint -q "$W/$name" && break; sleep 1; done
	mountpoint -q "$W/$name" || { echo "builds.sh: mount $name did not come up" >&2; exit 1; }
	mnts+=("$W/$name"); mkdir -p "$W/$name/$name"; dirs+=("$W/$name/$name")
done
echo "mounts: ${mnts[*]}"
if [ -n "${HOLD:-}" ]; then sleep infinity & wait $!; fi
SIZE=${SIZE:-64M} SKIP=${SKIP:-randread} REPS=${REPS:-3} "$BENCH/perf-fs.sh" "${dirs[@]}"
