#!/usr/bin/env bash
# Memory of a ksfs mount under many parallel writers (issue 19, "memory stays bounded").
#
#   ksfs/bench/mem.sh [BUDGET ...]        (default: "1TiB 256MiB")
#
# Starts a local cluster with `kdss up --no-mount` (4 nodes x 2 disks, EC 5+2) whose daemons
# run at low CPU priority (nice NICE), so the cluster is slower than the writers, as over a
# real network. Then, for each BUDGET in turn, mounts the bucket with ksfs
# (`[mount] write_buffer_total = BUDGET`, everything else default), runs WRITERS parallel
#   dd if=/dev/zero of=MNT/mem/fI bs=1M count=SIZE_MIB conv=fsync
# and reads the mount's /proc/PID/status: VmRSS before the writers, the highest VmRSS
# (VmHWM) while they ran, VmRSS right after the last one finished and again after IDLE_SECS
# of quiet. It also samples the mount's kdss_ksfs_write_buffer_bytes gauge for the largest
# value. "1TiB" stands for the old behaviour: no budget across files, only each file's
# 64 MiB write window. "none" leaves the key out: the default, or the behaviour of a build
# from before the setting (KDSS_BIN pointing at its binaries).
#
# Env: KDSS_BIN (directory with kdss and ksfs; default target/release if built, else
# target/debug), WRITERS (32), SIZE_MIB (48), NICE (19), IDLE_SECS (15),
# PORT_BASE (17700). Needs FUSE (/dev/fuse, fusermount3) and python3. Prints one markdown
# table (also the machine's load average before each run).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
budgets=("$@"); [ ${#budgets[@]} -gt 0 ] || budgets=(1TiB 256MiB)
writers=${WRITERS:-32}; size_mib=${SIZE_MIB:-48}; nice_lvl=${NICE:-19}
idle=${IDLE_SECS:-15}; port_base=${PORT_BASE:-17700}
bin=${KDSS_BIN:-}
if [ -z "$bin" ]; then
	bin=$here/target/debug; [ -x "$here/target/release/ksfs" ] && bin=$here/target/release
fi
for b in kdss ksfs; do [ -x "$bin/$b" ] || { echo "mem.sh: $bin/$b missing (cargo build --bins)" >&2; exit 1; }; done
command -v fusermount3 >/dev/null || { echo "mem.sh: needs fusermount3 (FUSE)" >&2; exit 1; }

work=$(mktemp -d /tmp/ksfs-mem.XXXXXX)
up_pid=; ksfs_pid=; mnt=$work/mnt
cleanup() {
	[ -n "$ksfs_pid" ] && { fusermount3 -u -z "$mnt" 2>/dev/null || true; kill "$ksfs_pid" 2>/dev/null || true; wait "$ksfs_pid" 2>/dev/null || true; }
	[ -n "$up_pid" ] && { kill -INT "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "starting the cluster (daemons at nice $nice_lvl) in $work" >&2
nice -n "$nice_lvl" "$bin/kdss" up --data "$work/data" --no-mount --port-base "$port_base" \
	>"$work/up.log" 2>&1 &
up_pid=$!
json=$work/data/cluster.json
for _ in $(seq 600); do
	[ -s "$json" ] && grep -q '"running"' "$json" && break
	kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log" >&2; exit 1; }
	sleep 0.5
done
[ -s "$json" ] || { echo "mem.sh: cluster did not start:" >&2; cat "$work/up.log" >&2; exit 1; }
read -r masters ak sk < <(python3 - "$json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(",".join('"%s"' % m["grpc"] for m in j["masters"]), j["s3"]["access_key"], j["s3"]["secret_key"])
PY
)

status() { awk -v k="$2:" '$1 == k { print int($2 / 1024) }' "/proc/$1/status"; } # MiB
gauge() { # the mount's buffered write bytes, MiB
	python3 - "$1" <<'PY' 2>/dev/null || echo 0
import sys, urllib.request
t = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=2).read().decode()
print(next(int(float(l.split()[1])) >> 20 for l in t.splitlines() if l.startswith("kdss_ksfs_write_buffer_bytes ")))
PY
}

rows=()
for budget in "${budgets[@]}"; do
	mkdir -p "$mnt"
	mport=$((port_base + 2390))
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
EOF
	# "none": no key, for binaries from before the setting (KDSS_BIN=... mem.sh none).
	[ "$budget" = none ] || echo "write_buffer_total = \"$budget\"" >>"$work/mount.toml"
	"$bin/ksfs" -c "$work/mount.toml" >"$work/ksfs-$budget.log" 2>&1 &
	ksfs_pid=$!
	for _ in $(seq 200); do grep -q " $mnt " /proc/self/mountinfo && break; sleep 0.1; done
	grep -q " $mnt " /proc/self/mountinfo || { cat "$work/ksfs-$budget.log" >&2; exit 1; }
	mkdir -p "$mnt/mem"
	sleep 2
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	before=$(status "$ksfs_pid" VmRSS)
	echo "budget $budget: $writers writers x $size_mib MiB (load $load)" >&2
	t0=$(date +%s.%N)
	pids=()
	for i in $(seq "$writers"); do
		dd if=/dev/zero of="$mnt/mem/f$i" bs=1M count="$size_mib" conv=fsync status=none &
		pids+=($!)
	done
	gmax=0
	while :; do
		running=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1 && break; done
		g=$(gauge "127.0.0.1:$mport"); [ "$g" -gt "$gmax" ] && gmax=$g
		[ $running = 1 ] || break
		sleep 0.2
	done
	fail=0
	for p in "${pids[@]}"; do wait "$p" || fail=1; done
	secs=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
	[ $fail = 0 ] || { echo "mem.sh: a dd failed" >&2; exit 1; }
	peak=$(status "$ksfs_pid" VmHWM)
	after=$(status "$ksfs_pid" VmRSS)
	sleep "$idle"
	idle_rss=$(status "$ksfs_pid" VmRSS)
	rows+=("| $budget | $before | $peak | $after | $idle_rss | $gmax | $secs | $load |")
	rm -rf "$mnt/mem"
	fusermount3 -u "$mnt"
	wait "$ksfs_pid" 2>/dev/null || true
	ksfs_pid=
done

echo
echo "$writers parallel dd writers x $size_mib MiB (conv=fsync), daemons at nice $nice_lvl, binaries $bin"
echo
echo "| write_buffer_total | VmRSS before (MiB) | VmHWM peak (MiB) | VmRSS at end (MiB) | VmRSS after ${idle} s idle (MiB) | largest write_buffer_bytes (MiB) | seconds | load avg |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
