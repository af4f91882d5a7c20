//! Files that hold a secret (the cluster secret, a user's secret key, a metadata backup)
//! and the directories they live in. A file is created with mode 0600 from its first byte
//! and reaches its final name by rename, so no reader ever sees it world-readable or half
//! written; directories are 0700.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a file holding a secret.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a directory holding such files.
pub const DIR_MODE: u32 = 0o700;

/// A private file or directory operation that failed, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub struct PrivateFileError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PrivateFileError {
    let path = path.to_path_buf();
    move |source| PrivateFileError { what, path, source }
}

/// Writes `bytes` to `path` atomically with mode 0600: a temp file beside it (created
/// 0600), fsynced, renamed over `path`, then the directory fsynced. Creates a missing
/// parent directory 0700.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_dir(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes).map_err(err("write", &tmp))?;
        f.sync_all().map_err(err("fsync", &tmp))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err("rename to", path)(e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err("fsync directory", dir))
}

/// Creates `path` (which must not exist) for writing with mode 0600, for streaming
/// writers that rename a `.part` file themselves.
pub fn create_new(path: &Path) -> Result<File, PrivateFileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(err("create", path))
}

/// Creates `path` for writing with mode 0600, truncating a file already there and
/// tightening its mode if it was looser (a leftover `.part` of an earlier run).
pub fn create(path: &Path) -> Result<File, PrivateFileError> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(err("create", path))?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(err("chmod", path))?;
    Ok(f)
}

/// Creates `dir` and missing parents with mode 0700; an existing directory is left as it
/// is (see [`tighten`]).
pub fn create_dir(dir: &Path) -> Result<(), PrivateFileError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(err("create directory", dir))
}

/// Takes group and other permissions away from an existing file or directory (data dirs
/// made by versions that wrote 0644/0755). Returns the old mode when it changed anything.
pub fn tighten(path: &Path) -> Result<Option<u32>, PrivateFileError> {
    let meta = std::fs::metadata(path).map_err(err("stat", path))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    let want = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
    std::fs::set_permissions(path, Permissions::from_mode(want)).map_err(err("chmod", path))?;
    Ok(Some(mode))
}

/// Whether `path` can be read by users other than its owner (group or other bits), for
/// daemons that warn about a config file holding a secret.
pub fn readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn write_makes_0600_files_in_0700_dirs_and_replaces_a_0644_file() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("new/dir/cli.toml");
        write(&f, b"secret_key = \"x\"\n").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(f.parent().unwrap()), 0o700);
        assert_eq!(mode(&t.path().join("new")), 0o700);

        let old = t.path().join("old.json");
        std::fs::write(&old, "old").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        write(&old, b"new").unwrap();
        assert_eq!(
            (mode(&old), std::fs::read_to_string(&old).unwrap().as_str()),
            (0o600, "new")
        );
        let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temp file left behind: {left:?}");
    }

    #[test]
    fn tighten_takes_group_and_other_bits_away() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        assert_eq!(tighten(&d).unwrap(), Some(0o755));
        assert_eq!(mode(&d), 0o700);
        assert_eq!(tighten(&d).unwrap(), None);
        let f = d.join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by_others(&f));
        assert_eq!(tighten(&f).unwrap(), Some(0o644));
        assert_eq!(mode(&f), 0o600);
        assert!(!readable_by_others(&f));
    }
}
