//! Errors across gRPC. A namespace failure travels as a tonic `Status` whose metadata
//! carries the errno (`kdss-errno`, for ksfs) and a stable code string (`kdss-code`,
//! for the S3 gateway: NoSuchKey, BucketNotEmpty, InvalidPart, ...), so each door maps
//! the same failure to its own vocabulary without parsing messages.

use tonic::{Code, Status};

/// Metadata key for the errno.
pub const ERRNO_KEY: &str = "kdss-errno";
/// Metadata key for the code string.
pub const CODE_KEY: &str = "kdss-code";
/// Metadata key naming the current leader's gRPC address when a follower cannot forward.
pub const LEADER_KEY: &str = "kdss-leader";

/// Linux errno values used on the wire (fixed, so they do not depend on the build host).
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const E2BIG: i32 = 7;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const ERANGE: i32 = 34;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOSYS: i32 = 38;
    pub const ENOTEMPTY: i32 = 39;
    pub const ENODATA: i32 = 61;
    pub const ENOTSUP: i32 = 95;
    pub const ESTALE: i32 = 116;
}

/// Builds a Status carrying errno and code. `code` is a stable identifier such as "NoSuchKey".
pub fn status(grpc: Code, errno: i32, code: &str, message: impl Into<String>) -> Status {
    let mut s = Status::new(grpc, message);
    if let Ok(v) = errno.to_string().parse() {
        s.metadata_mut().insert(ERRNO_KEY, v);
    }
    if let Ok(v) = code.parse() {
        s.metadata_mut().insert(CODE_KEY, v);
    }
    s
}

/// The errno a Status carries, or one derived from its gRPC code.
pub fn errno_of(s: &Status) -> i32 {
    if let Some(e) = s
        .metadata()
        .get(ERRNO_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        return e;
    }
    match s.code() {
        Code::NotFound => errno::ENOENT,
        Code::AlreadyExists => errno::EEXIST,
        Code::PermissionDenied | Code::Unauthenticated => errno::EACCES,
        Code::InvalidArgument => errno::EINVAL,
        Code::ResourceExhausted => errno::ENOSPC,
        Code::Unimplemented => errno::ENOSYS,
        _ => errno::EIO,
    }
}

/// The code string a Status carries, if any.
pub fn code_of(s: &Status) -> Option<&str> {
    s.metadata().get(CODE_KEY).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_and_code_survive_the_status() {
        let s = status(
            Code::FailedPrecondition,
            errno::ENOTEMPTY,
            "BucketNotEmpty",
            "not empty",
        );
        assert_eq!(errno_of(&s), errno::ENOTEMPTY);
        assert_eq!(code_of(&s), Some("BucketNotEmpty"));
        assert_eq!(errno_of(&Status::not_found("x")), errno::ENOENT);
    }
}
