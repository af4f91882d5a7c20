#!/usr/bin/env bash
# Runs xfstests one at a time on ksfs, each under a time limit and without the exclude list:
# how an entry of `exclude` is measured before it is kept or dropped.
#
#   XFSTESTS_DIR=/tmp/xfstests KSFS_CONFIG_DIR=/tmp/ksfs-hold xfstests/measure.sh \
#       [-t SECONDS] generic/070 generic/117 ...
#
# Same environment as run.sh. -t is the limit per test (default 480). For each test a line
# `TEST RESULT SECONDS` (RESULT: passed, failed, notrun, timeout) goes to stdout and to
# xfstests/results/measure-<date>.txt; the check output of all of them to the matching .log.
# A test past its limit is stopped with SIGTERM (SIGKILL 30 s later), what is left of it on
# the two mounts is killed, and both are unmounted before the next test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
limit=480
if [ "${1:-}" = "-t" ]; then
	limit=$2
	shift 2
fi
[ $# -gt 0 ] || { echo "usage: measure.sh [-t SECONDS] TEST..." >&2; exit 1; }
# shellcheck source=prepare.sh
. "$here/prepare.sh"

mkdir -p "$here/results"
stamp=$(date -u +%Y%m%d-%H%M)
out="$here/results/measure-$stamp.txt"
log="$here/results/measure-$stamp.log"
echo "# ksfs $KSFS_BIN, limit ${limit}s per test, $(date -u '+%Y-%m-%d %H:%M UTC')" >"$out"

unmount_both() {
	for m in "$TEST_DIR" "$SCRATCH_MNT"; do
		if mountpoint -q "$m"; then
			# Only processes of the stopped test can be using these mounts.
			fuser -k -m "$m" >/dev/null 2>&1 || true
			umount "$m" 2>/dev/null || umount -l "$m" || true
		fi
	done
}

for t in "$@"; do
	mountpoint -q "$TEST_DIR" || mount -t fuse.ksfs $TEST_FS_MOUNT_OPTS "$TEST_DEV" "$TEST_DIR"
	start=$(date +%s)
	set +e
	part=$( (cd "$XFSTESTS_DIR" && timeout -k 30 "$limit" ./check "$t") 2>&1)
	rc=$?
	set -e
	secs=$(($(date +%s) - start))
	printf '%s\n' "$part" >>"$log"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		result=timeout
	elif grep -q '^Not run:' <<<"$part"; then
		result=notrun # check also says "Passed all" then
	elif grep -q '^Passed all' <<<"$part"; then
		result=passed
	else
		result=failed
	fi
	echo "$t $result $secs" | tee -a "$out"
	[ "$result" = timeout ] && unmount_both
done
unmount_both
