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
# shellcheck source=prepare.sh
. "$here/prepare.sh"

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
