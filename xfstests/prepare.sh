# Sourced by run.sh and measure.sh (with $here and $repo set): checks the environment both
# document (XFSTESTS_DIR, KSFS_CONFIG_DIR, KSFS_BIN), makes the host ready for xfstests on
# ksfs, and mounts TEST_DEV.
: "${XFSTESTS_DIR:?set XFSTESTS_DIR to a built xfstests tree}"
export KSFS_CONFIG_DIR=${KSFS_CONFIG_DIR:-/etc/ksfs}
[ "$(id -u)" = 0 ] || { echo "$(basename "$0"): xfstests needs root" >&2; exit 1; }
[ -x "$XFSTESTS_DIR/check" ] || { echo "$(basename "$0"): $XFSTESTS_DIR/check not found" >&2; exit 1; }
for c in ksfs-test ksfs-scratch; do
	[ -r "$KSFS_CONFIG_DIR/$c.toml" ] || { echo "$(basename "$0"): missing $KSFS_CONFIG_DIR/$c.toml" >&2; exit 1; }
done
if [ -z "${KSFS_BIN:-}" ]; then
	for b in "$repo/target/release/ksfs" "$repo/target/debug/ksfs"; do
		[ -x "$b" ] && KSFS_BIN=$b && break
	done
fi
[ -x "${KSFS_BIN:-}" ] || { echo "$(basename "$0"): build ksfs first (cargo build --release -p ksfs)" >&2; exit 1; }
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
