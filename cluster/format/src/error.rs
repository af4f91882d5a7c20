//! Why bytes read from a device were not accepted.

/// A decoding failure. Every variant means "these bytes are not trustworthy"; none of them
/// ever comes with data attached.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the structure needs (a torn or cut-off write).
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },
    /// The magic number does not match: unformatted, foreign, or not the start of a record.
    #[error("bad magic for {what}")]
    BadMagic { what: &'static str },
    /// The structure's own checksum does not match its bytes.
    #[error("checksum mismatch in {what}")]
    BadChecksum { what: &'static str },
    /// The record data does not match the crc32c its header carries.
    #[error("record data checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    DataChecksum { stored: u32, computed: u32 },
    /// One checksum block of a layout-2 record does not match its table entry.
    #[error(
        "record data checksum mismatch in block {block} (stored {stored:#010x}, computed {computed:#010x})"
    )]
    BlockChecksum {
        block: u64,
        stored: u32,
        computed: u32,
    },
    /// A format version this build does not read.
    #[error("unsupported format version {0}")]
    Version(u32),
    /// A field holds a value that cannot be valid (unknown kind, impossible size...).
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}
