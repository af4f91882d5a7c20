//! What a valid name is: POSIX entry names, S3 bucket names, and object keys that can be
//! paths of the bucket's tree (docs/architecture.md, "One namespace, two doors").

use crate::error::{MetaError, einval, fail};
use kdss_common::rpc_error::errno;

/// Longest entry name (one path segment), as in Linux NAME_MAX.
pub const NAME_MAX: usize = 255;
/// Longest object key S3 accepts.
pub const KEY_MAX: usize = 1024;

/// Checks one directory entry name given to a POSIX call.
pub fn check_entry_name(name: &str) -> Result<(), MetaError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(einval(format!("invalid entry name {name:?}")));
    }
    if name.len() > NAME_MAX {
        return Err(fail(
            errno::ENAMETOOLONG,
            "NameTooLong",
            "entry name longer than 255 bytes",
        ));
    }
    Ok(())
}

/// Checks a bucket name against the S3 naming rules.
pub fn check_bucket_name(name: &str) -> Result<(), MetaError> {
    let bad = |why: &str| {
        Err(fail(
            errno::EINVAL,
            "InvalidBucketName",
            format!("bucket name {name:?}: {why}"),
        ))
    };
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must begin and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("adjacent periods or period-hyphen are not allowed");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return bad("must not be formatted as an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
        return bad("reserved prefix or suffix");
    }
    Ok(())
}

/// An object key split into path segments. `dir` = the key ends in `/` (a directory
/// marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath<'a> {
    /// Segments from the bucket root; never empty.
    pub segments: Vec<&'a str>,
    /// The key ends with `/`.
    pub dir: bool,
}

/// Splits an object key into path segments, refusing keys that cannot be a path: empty
/// key, empty segment (`a//b`, leading `/`), `.` or `..` segments, a segment over 255
/// bytes, NUL, or a key over 1024 bytes (KeyTooLongError).
pub fn parse_key(key: &str) -> Result<KeyPath<'_>, MetaError> {
    let bad = |why: &str| Err(einval(format!("key {key:?} cannot be a path: {why}")));
    if key.len() > KEY_MAX {
        return Err(fail(
            errno::ENAMETOOLONG,
            "KeyTooLongError",
            format!("key is {} bytes, longer than {KEY_MAX}", key.len()),
        ));
    }
    if key.is_empty() {
        return bad("empty key");
    }
    if key.contains('\0') {
        return bad("NUL byte");
    }
    let (body, dir) = match key.strip_suffix('/') {
        Some(b) => (b, true),
        None => (key, false),
    };
    if body.is_empty() {
        return bad("empty segment");
    }
    let mut segments = Vec::new();
    for seg in body.split('/') {
        if seg.is_empty() {
            return bad("empty segment");
        }
        if seg == "." || seg == ".." {
            return bad("'.' or '..' segment");
        }
        if seg.len() > NAME_MAX {
            return Err(fail(
                errno::ENAMETOOLONG,
                "KeyTooLongError",
                format!("key {key:?} has a segment longer than {NAME_MAX} bytes"),
            ));
        }
        segments.push(seg);
    }
    Ok(KeyPath { segments, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<impl Sized, MetaError>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => e.failure().map(|f| f.code.clone()).unwrap_or_default(),
        }
    }

    #[test]
    fn keys_that_cannot_be_paths_are_refused() {
        let long = "x".repeat(256);
        let cases: &[(&str, &str)] = &[
            ("a", "ok"),
            ("a/b/c.txt", "ok"),
            ("dir/", "ok"),
            ("", "InvalidArgument"),
            ("/", "InvalidArgument"),
            ("/a", "InvalidArgument"),
            ("a//b", "InvalidArgument"),
            ("a//", "InvalidArgument"),
            ("./a", "InvalidArgument"),
            ("a/../b", "InvalidArgument"),
            ("a/..", "InvalidArgument"),
            ("a\0b", "InvalidArgument"),
            (&long, "KeyTooLongError"),
        ];
        for (key, want) in cases {
            assert_eq!(code(parse_key(key)), *want, "key {key:?}");
        }
        assert_eq!(code(parse_key(&"a/".repeat(600))), "KeyTooLongError");
        let p = parse_key("a/b/").unwrap();
        assert_eq!(p.segments, vec!["a", "b"]);
        assert!(p.dir);
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket", "a.b.c", "123"] {
            assert_eq!(code(check_bucket_name(ok)), "ok", "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
        ] {
            assert_eq!(code(check_bucket_name(bad)), "InvalidBucketName", "{bad}");
        }
    }

    #[test]
    fn entry_names() {
        assert_eq!(code(check_entry_name("a")), "ok");
        assert_eq!(code(check_entry_name("")), "InvalidArgument");
        assert_eq!(code(check_entry_name("..")), "InvalidArgument");
        assert_eq!(code(check_entry_name("a/b")), "InvalidArgument");
        assert_eq!(code(check_entry_name(&"n".repeat(256))), "NameTooLong");
    }
}
