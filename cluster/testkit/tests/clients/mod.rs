//! The clients of the partition tests: S3 clients through the gateway and file clients
//! through ksfs mounts, all doing one call at a time on the same few keys of one bucket
//! and recording every call into one history.

pub mod files;
pub mod s3;

use kdss_history::{Call, History, Operation, Outcome};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long a client waits for an answer before it counts the call as unknown.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys `k0..k{N-1}`: few, so calls collide; 5 unless [`set_keys`] chose more.
static KEYS: AtomicUsize = AtomicUsize::new(5);

/// How many keys the clients use.
pub fn keys() -> usize {
    KEYS.load(Ordering::Relaxed)
}

/// Sets the key count before the clients start: a long run spreads its calls over more
/// keys, so that each key's history stays small enough for the checker's search.
pub fn set_keys(n: usize) {
    KEYS.store(n, Ordering::Relaxed);
}

/// A random key of the key space.
pub fn random_key() -> String {
    format!("k{}", rand::random_range(0..keys()))
}

/// The key `key` may be renamed to: keys are renamed only within pairs (`k0`/`k1`,
/// `k2`/`k3`...), so the history checker judges each pair as one small map; with an odd
/// key count the last key (`k4` of five) is never renamed and stays checked alone.
pub fn rename_partner(key: &str) -> Option<String> {
    let n: usize = key.strip_prefix('k')?.parse().ok()?;
    (n < keys() - keys() % 2).then(|| format!("k{}", n ^ 1))
}

/// Whether `name` is a key of the key space (lists leave out everything else, such as
/// the file clients' temporary files).
pub fn is_key(name: &str) -> bool {
    name.strip_prefix('k')
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n < keys() && name == format!("k{n}"))
}

/// The body for `value`: the value and a `|`, repeated to `len` bytes (at least once), so
/// a read can tell a whole body of one write from a torn or mixed one. Large bodies go
/// through the storage nodes, small ones stay inline in the metadata.
pub fn body_of(value: &str, len: usize) -> Vec<u8> {
    let unit = format!("{value}|");
    let n = len.div_ceil(unit.len()).max(1);
    unit.repeat(n).into_bytes()
}

/// The length of the `n`th write of a client: half 100 bytes, half 40 KB.
pub fn body_len(n: u64) -> usize {
    if n.is_multiple_of(2) { 40_000 } else { 100 }
}

/// The value a body carries, or a marker no write ever writes when it is not a whole body.
pub fn value_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let Some((value, _)) = text.split_once('|') else {
        return format!("torn-body-of-{}-bytes", body.len());
    };
    if body_of(value, body.len()) == body {
        value.to_string()
    } else {
        format!("torn-body-of-{}-bytes", body.len())
    }
}

/// Counts of what the history holds, for the log and docs/partitions.md.
pub fn summary(h: &History) -> String {
    let count = |f: &dyn Fn(&Operation) -> bool| h.ops.iter().filter(|o| f(o)).count();
    format!(
        "{} calls ({} through mounts): {} acknowledged writes, deletes and renames ({} \
         renames), {} reads and {} lists answered, {} unknown, {} failed",
        h.ops.len(),
        count(&|o| files::is_file_process(o.process)),
        count(&|o| o.outcome == Outcome::Ok),
        count(&|o| o.outcome == Outcome::Ok && matches!(o.call, Call::Rename { .. })),
        count(&|o| matches!(o.outcome, Outcome::Read { .. })),
        count(&|o| matches!(o.outcome, Outcome::Listed { .. })),
        count(&|o| o.outcome == Outcome::Unknown),
        count(&|o| o.outcome == Outcome::Failed),
    )
}
