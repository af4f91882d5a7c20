#!/usr/bin/env bash
# Cold 1 GiB sequential read through ksfs, builds side by side (issue 19's regression hunt):
#   ksfs/bench/seqread.sh BIN_A [BIN_B ...]      (root: FUSE mounts and drop_caches)
# A BIN written DIR+cache gets a disk cache (cache_dir) on its mount, so one run can compare
# the same build with and without it.
# Starts one `kdss up` cluster and ksfs mount per BIN directory (kdss, ksfs), all up at once,
# then for each repetition and each BIN in turn (A, B, A, B, ...) does what
# ../shared/bench/perf-fs.sh does for its seqwrite/seqread rows: fio write 1 GiB (bs=1M,
# end_fsync), sync, drop caches, fio read of it (bs=1M, psync), and prints MiB/s of both with
# the 1-minute load average before the block (and what a disk cache holds after it). Ratios within one run are what count.
# Env: REPS (3), SIZE (1G), W (/var/tmp/kdss-seqread, wiped first), PORT (20000; kdss up uses up to +2320; each BIN
# gets PORT + 3000*i), DISK_CACHE (0; 1 gives each mount a cache_dir as peers.sh does),
# MOUNT_EXTRA (lines added to [mount]), HOLD (1: after the runs, wait until killed),
# DISK_SIZE (1GiB: each cluster writes 8 such images in full, so two clusters take 16 GiB),
# CACHE_ROOT ($W: where each mount's cache_dir goes, $CACHE_ROOT/<i>/cache, wiped first and
# on exit; with W on tmpfs to spare a small disk, keep it on the disk the cache is meant for).
# Everything started here is stopped and unmounted on exit, also on failure.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
REPS=${REPS:-3}; SIZE=${SIZE:-1G}; DISK_SIZE=${DISK_SIZE:-1GiB}; W=${W:-/var/tmp/kdss-seqread}; PORT=${PORT:-20000}
CACHE_ROOT=${CACHE_ROOT:-$W}
bins=("$@")
for b in "${bins[@]}"; do
	for x in kdss ksfs; do [ -x "${b%+cache}/$x" ] || { echo "seqread.sh: $b/$x missing" >&2; exit 1; }; done
done
pids=()
cleanup() {
	for i in "${!bins[@]}"; do
		m=$W/$i/mnt; mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 2
	rm -rf "$W" "$CACHE_ROOT"
}
trap cleanup EXIT; trap "exit 143" TERM INT
rm -rf "$W" "$CACHE_ROOT" && mkdir -p "$W"
wait_for() { # what command...
	local what=$1; shift
	for _ in $(seq 180); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
	echo "seqread.sh: $what did not come up; the last lines of its log:" >&2
	tail -5 "$LOG" >&2; exit 1
}
for i in "${!bins[@]}"; do
	d=$W/$i; B=${bins[$i]%+cache}; cache=${DISK_CACHE:-0}; [ "$B" != "${bins[$i]}" ] && cache=1; c=$CACHE_ROOT/$i/cache; mkdir -p "$d/mnt" "$c"; LOG=$d/up.log
	"$B/kdss" up --data "$d/kdss" --no-mount --port-base $((PORT + 3000 * i)) --disk-size "$DISK_SIZE" >"$d/up.log" 2>&1 &
	pids+=($!)
	wait_for "kdss up ($B)" grep -q "KDSS is up" "$d/up.log"
	cli=$d/kdss/cli.toml
	val() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$cli"; }
	cat >"$d/mount.toml" <<EOF
[cluster]
masters = $(sed -n 's/^masters = \(.*\)$/\1/p' "$cli")

[auth]
access_key = "$(val access_key)"
secret_key = "$(val secret_key)"
bucket = "kdss"

[mount]
mountpoint = "$d/mnt"
$([ "$cache" = 1 ] && printf 'cache_dir = "%s"\ncache_dir_size = "8GiB"' "$c")
${MOUNT_EXTRA:-}
EOF
	LOG=$d/ksfs.log
	"$B/ksfs" -c "$d/mount.toml" >"$d/ksfs.log" 2>&1 &
	pids+=($!)
	wait_for "ksfs ($B)" mountpoint -q "$d/mnt"
	echo "bin $i: $B (ksfs pid $!)"
done
mibs() { python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(round(j[sys.argv[1]]["bw_bytes"]/1048576))' "$1"; }
for rep in $(seq "$REPS"); do
	for i in "${!bins[@]}"; do
		f=$W/$i/mnt/seq.dat; load=$(cut -d' ' -f1 /proc/loadavg)
		wr=$(fio --output-format=json --name=seqwrite --filename="$f" --rw=write --bs=1M --size="$SIZE" \
			--numjobs=1 --end_fsync=1 --direct=0 --ioengine=psync | mibs write)
		sync; echo 3 >/proc/sys/vm/drop_caches
		rd=$(fio --output-format=json --name=seqread --filename="$f" --rw=read --bs=1M --size="$SIZE" \
			--numjobs=1 --direct=0 --ioengine=psync | mibs read)
		rm -f "$f"
		c=$CACHE_ROOT/$i/cache; dc=; [ -n "$(ls -A "$c")" ] && dc=", disk cache $(du -sm "$c" | cut -f1) MiB, $(find "$c" -type f | wc -l) files"
		echo "rep $rep bin $i ${bins[$i]}: write $wr MiB/s, read $rd MiB/s$dc, load $load"
	done
done
[ "${HOLD:-0}" = 1 ] && { echo "holding; kill $$ to stop"; sleep infinity & wait $!; }
exit 0
