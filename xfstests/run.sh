#!/usr/bin/env bash
# Runs xfstests against ksfs mounts.
#
#   XFSTESTS_DIR=/path/to/built/xfstests KSFS_CONFIG_DIR=/etc/ksfs xfstests/run.sh [check args]
#
# XFSTESTS_DIR   an xfstests tree that was built with `make` (this project ships none of it).
# KSFS_CONFIG_DIR holds ksfs-test.toml and ksfs-scratch.toml: two mount configs, one bucket
#                each, with `subtype = ""` (see README.md). Default /etc/ksfs.
# KSFS_BIN       the ksfs binary (default: target/release/ksfs, then target/debug/ksfs).
# Check args default to `-g quick -x dangerous`; the exclude list beside this script is
# always applied. Results land in $XFSTESTS_DIR/results and a summary in
# xfstests/results/summary-<date>.txt. Needs root and fuse3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
: "${XFSTESTS_DIR:?set XFSTESTS_DIR to a built xfstests tree}"
export KSFS_CONFIG_DIR=${KSFS_CONFIG_DIR:-/etc/ksfs}
[ "$(id -u)" = 0 ] || { echo "run.sh: xfstests needs root" >&2; exit 1; }
[ -x "$XFSTESTS_DIR/check" ] || { echo "run.sh: $XFSTESTS_DIR/check not found" >&2; exit 1; }
for c in ksfs-test ksfs-scratch; do
	[ -r "$KSFS_CONFIG_DIR/$c.toml" ] || { echo "run.sh: missing $KSFS_CONFIG_DIR/$c.toml" >&2; exit 1; }
done
if [ -z "${KSFS_BIN:-}" ]; then
	for b in "$repo/target/release/ksfs" "$repo/target/debug/ksfs"; do
		[ -x "$b" ] && KSFS_BIN=$b && break
	done
fi
[ -x "${KSFS_BIN:-}" ] || { echo "run.sh: build ksfs first (cargo build --release -p ksfs)" >&2; exit 1; }
export KSFS_BIN

# The mount helper mount(8) runs for `-t fuse.ksfs`.
install -m 0755 "$here/mount.fuse.ksfs" /sbin/mount.fuse.ksfs
sed -i "s#^ksfs=.*#ksfs=$KSFS_BIN#" /sbin/mount.fuse.ksfs
grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null || echo user_allow_other >> /etc/fuse.conf
# Users some tests switch to.
id fsgqa >/dev/null 2>&1 || useradd -m fsgqa
id fsgqa2 >/dev/null 2>&1 || useradd -m fsgqa2
id 123456-fsgqa >/dev/null 2>&1 || useradd -m 123456-fsgqa
grep -q '^fsgqa:' /etc/group || groupadd fsgqa

cp "$here/local.config" "$XFSTESTS_DIR/local.config"
# shellcheck disable=SC1091
. "$here/local.config"
mkdir -p "$TEST_DIR" "$SCRATCH_MNT"
for m in "$TEST_DIR" "$SCRATCH_MNT"; do mountpoint -q "$m" && umount "$m" || true; done
# shellcheck disable=SC2086
mount -t fuse.ksfs $TEST_FS_MOUNT_OPTS "$TEST_DEV" "$TEST_DIR"

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-g quick -x dangerous)
mkdir -p "$here/results"
log="$here/results/check-$(date -u +%Y%m%d-%H%M).log"
set +e
(cd "$XFSTESTS_DIR" && ./check -E "$here/exclude" "${args[@]}") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
for m in "$TEST_DIR" "$SCRATCH_MNT"; do mountpoint -q "$m" && umount "$m" || true; done
"$here/summarize.sh" "$log" > "${log%.log}.summary.txt" || true
cat "${log%.log}.summary.txt"
exit "$rc"
