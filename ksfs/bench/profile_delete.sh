#!/usr/bin/env bash
# A CPU profile of small-file deletes (issue 19's slowest row) on a fresh `kdss up` cluster
# with a ksfs mount (started by peers.sh hold): 3,000 files of 4 KiB in 20 directories are
# created, caches dropped, and the unlinks run under `perf record -a -g`.
#
#   ksfs/bench/profile_delete.sh BIN_DIR OUT.data      (root; perf from Debian)
#   perf report -i OUT.data --no-children --sort comm        (where the time went)
set -euo pipefail
bin=${1:?usage: profile_delete.sh BIN_DIR OUT.data}
out=${2:?usage: profile_delete.sh BIN_DIR OUT.data}
here=$(cd "$(dirname "$0")" && pwd)
W=${W:-/var/tmp/kdss-peers}
BIN=$bin W=$W "$here/peers.sh" hold >"$out.hold.log" 2>&1 &
holder=$!
trap 'kill $holder 2>/dev/null; wait $holder 2>/dev/null || true' EXIT
for _ in $(seq 120); do mountpoint -q "$W/ksfs" && break; sleep 1; done
mountpoint -q "$W/ksfs" || { echo "profile_delete: no mount (see $out.hold.log)" >&2; exit 1; }
m=$W/ksfs/p
mkdir -p "$m"
python3 - "$m" <<'PY'
import os, sys
r = sys.argv[1]
for d in range(20):
    os.mkdir(f"{r}/d{d}")
    for f in range(150):
        fd = os.open(f"{r}/d{d}/f{f}", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"x" * 4096)
        os.close(fd)
PY
sync
echo 3 >/proc/sys/vm/drop_caches
perf record -a -g -F 999 -o "$out" -- python3 - "$m" <<'PY'
import os, sys, time
r = sys.argv[1]
t = time.perf_counter()
for d in range(20):
    for f in range(150):
        os.unlink(f"{r}/d{d}/f{f}")
print("deletes/s", round(3000 / (time.perf_counter() - t)), flush=True)
PY
