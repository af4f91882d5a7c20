//! The flexible checksums of S3 (`x-amz-checksum-crc32 / crc32c / crc64nvme / sha1 /
//! sha256`): computed over the decoded body while it streams, compared with the header or
//! the aws-chunked trailer at the end, stored with the object and returned when asked.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::Digest;

static CRC64NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

/// A checksum algorithm S3 clients may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algo {
    /// All algorithms, in the order headers are checked.
    pub const ALL: [Algo; 5] = [
        Algo::Crc32,
        Algo::Crc32c,
        Algo::Crc64Nvme,
        Algo::Sha1,
        Algo::Sha256,
    ];

    /// The name S3 uses (`CRC32`, `CRC64NVME`, ...), also the key in stored metadata.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Crc32 => "CRC32",
            Algo::Crc32c => "CRC32C",
            Algo::Crc64Nvme => "CRC64NVME",
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
        }
    }

    /// The header carrying the value.
    pub fn header(self) -> &'static str {
        match self {
            Algo::Crc32 => "x-amz-checksum-crc32",
            Algo::Crc32c => "x-amz-checksum-crc32c",
            Algo::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algo::Sha1 => "x-amz-checksum-sha1",
            Algo::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Parses `CRC32C` or `x-amz-checksum-crc32c` (case-insensitive).
    pub fn parse(s: &str) -> Option<Algo> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("x-amz-checksum-").unwrap_or(&s);
        Algo::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// A fresh hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            Algo::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            Algo::Crc32c => Hasher::Crc32c(0),
            Algo::Crc64Nvme => Hasher::Crc64(CRC64NVME.digest()),
            Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    /// The base64 checksum of `data` (tests, multipart helpers).
    pub fn of(self, data: &[u8]) -> String {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }

    /// The reflected polynomial and width of a CRC algorithm (None for the SHAs, which
    /// cannot be combined: their multipart checksums are always COMPOSITE).
    fn crc_params(self) -> Option<(u64, u32)> {
        match self {
            Algo::Crc32 => Some((0xEDB8_8320, 32)),
            Algo::Crc32c => Some((0x82F6_3B78, 32)),
            Algo::Crc64Nvme => Some((0xAD93_D235_94C9_3659u64.reverse_bits(), 64)),
            Algo::Sha1 | Algo::Sha256 => None,
        }
    }

    /// Can a FULL_OBJECT checksum be derived from the parts' checksums?
    pub fn combinable(self) -> bool {
        self.crc_params().is_some()
    }

    /// The CRC of the concatenation of parts, from each part's base64 CRC and length
    /// (the FULL_OBJECT checksum of a multipart object). None for SHAs or bad input.
    pub fn combine(self, parts: &[(String, u64)]) -> Option<String> {
        let (poly, width) = self.crc_params()?;
        let bytes = (width / 8) as usize;
        let mut acc: Option<u64> = None;
        for (b64, len) in parts {
            let raw = B64.decode(b64).ok()?;
            if raw.len() != bytes {
                return None;
            }
            let crc = raw.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
            acc = Some(match acc {
                None => crc,
                Some(prev) => crc_combine(poly, width, prev, crc, *len),
            });
        }
        let v = acc?;
        Some(B64.encode(&v.to_be_bytes()[8 - bytes..]))
    }
}

/// `a * b mod P` for reflected polynomials of `width` bits (zlib's multmodp).
fn mult_mod(poly: u64, width: u32, a: u64, mut b: u64) -> u64 {
    let mut m = 1u64 << (width - 1);
    let mut p = 0u64;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        if m == 0 {
            break;
        }
        b = if b & 1 != 0 { (b >> 1) ^ poly } else { b >> 1 };
    }
    p
}

/// `x^(8 * len) mod P`: the shift that moves a CRC past `len` more bytes.
fn x8n_mod(poly: u64, width: u32, len: u64) -> u64 {
    let mut p = 1u64 << (width - 1); // x^0
    let mut sq = 1u64 << (width - 2); // x^1, squared per bit of 8 * len
    let mut n = len.saturating_mul(8);
    while n != 0 {
        if n & 1 != 0 {
            p = mult_mod(poly, width, sq, p);
        }
        n >>= 1;
        sq = mult_mod(poly, width, sq, sq);
    }
    p
}

/// CRC of `A || B` from CRC(A), CRC(B) and |B| (valid when init equals xorout, as for
/// CRC-32, CRC-32C and CRC-64/NVME).
fn crc_combine(poly: u64, width: u32, crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    mult_mod(poly, width, x8n_mod(poly, width, len_b), crc_a) ^ crc_b
}

/// A running checksum.
pub enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64(crc::Digest<'static, u64>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Hasher::Crc64(d) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The base64 value as S3 sends it (big-endian for CRCs).
    pub fn finish(self) -> String {
        match self {
            Hasher::Crc32(h) => B64.encode(h.finalize().to_be_bytes()),
            Hasher::Crc32c(c) => B64.encode(c.to_be_bytes()),
            Hasher::Crc64(d) => B64.encode(d.finalize().to_be_bytes()),
            Hasher::Sha1(h) => B64.encode(h.finalize()),
            Hasher::Sha256(h) => B64.encode(h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Values as the AWS SDKs compute them for "hello world".
        assert_eq!(Algo::Crc32.of(b"hello world"), "DUoRhQ==");
        assert_eq!(Algo::Crc32c.of(b"hello world"), "yZRlqg==");
        assert_eq!(
            Algo::Sha1.of(b"hello world"),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert_eq!(
            Algo::Sha256.of(b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        assert_eq!(Algo::Crc64Nvme.of(b"hello world"), "jSnVw/bqjr4=");
        assert_eq!(
            Algo::parse("x-amz-checksum-CRC64NVME"),
            Some(Algo::Crc64Nvme)
        );
        assert_eq!(Algo::parse("md5"), None);
    }

    #[test]
    fn crcs_of_parts_combine_to_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for algo in [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme] {
            for cuts in [&[1usize][..], &[0, 5], &[30_000, 60_000, 99_999], &[50_000]] {
                let mut parts = Vec::new();
                let mut at = 0;
                for &c in cuts.iter().chain([data.len()].iter()) {
                    parts.push((algo.of(&data[at..c]), (c - at) as u64));
                    at = c;
                }
                assert_eq!(
                    algo.combine(&parts).unwrap(),
                    algo.of(&data),
                    "{algo:?} {cuts:?}"
                );
            }
        }
        assert_eq!(Algo::Sha256.combine(&[]), None);
    }

    #[test]
    fn full_object_crc32_matches_s3_tests_vectors() {
        // s3-tests test_multipart_use_cksum_helper_crc32: three 5 MiB parts of A, B, C.
        let mib5 = 5 << 20;
        let parts = vec![
            ("JRTCyQ==".to_string(), mib5),
            ("QoZTGg==".to_string(), mib5),
            ("YAgjqw==".to_string(), mib5),
        ];
        assert_eq!(Algo::Crc32.combine(&parts).unwrap(), "WgDhBQ==");
        let parts64 = vec![
            ("L/E4WYn8v98=".to_string(), mib5),
            ("xW1l19VobYM=".to_string(), mib5),
            ("cK5MnNaWrW4=".to_string(), mib5),
        ];
        assert_eq!(Algo::Crc64Nvme.combine(&parts64).unwrap(), "i+6LR0y3eFo=");
    }
}
