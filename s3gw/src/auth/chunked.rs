//! The aws-chunked body decoder (`Content-Encoding: aws-chunked`): signed chunks
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) and unsigned ones
//! (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), with the checksum trailer.
//!
//! Wire form, per chunk: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n`; the last chunk
//! has size 0; then either `\r\n` or trailer lines `name:value\r\n` ending with an empty
//! line (`x-amz-trailer-signature` last in the signed form).
//!
//! Data is handed out as it arrives (memory stays bounded whatever the chunk size) while
//! the chunk's sha256 runs alongside; a bad chunk signature is an error at the chunk's
//! end. Callers commit nothing before the decoder reports [`Step::Done`], so a tampered
//! chunk stores nothing. Parsing separates "need more bytes" from "corrupt" (torn input
//! is an error only when the stream ends).

use super::sigv4;
use bytes::{Buf, Bytes, BytesMut};
use sha2::{Digest, Sha256};

/// What signs the chunks of a signed aws-chunked body.
#[derive(Clone)]
pub struct ChunkSigner {
    /// The request's signing key.
    pub key: [u8; 32],
    /// `x-amz-date` of the request.
    pub amz_date: String,
    /// Credential scope (`date/region/s3/aws4_request`).
    pub scope: String,
    /// The request's own signature: the first chunk chains from it.
    pub seed: String,
}

/// Why an aws-chunked body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("malformed chunk header")]
    BadHeader,
    #[error("chunk signature does not match")]
    BadSignature,
    #[error("chunk signature missing")]
    MissingSignature,
    #[error("chunk data not followed by CRLF")]
    BadTerminator,
    #[error("malformed trailer")]
    BadTrailer,
    #[error("more than {MAX_TRAILERS} trailer lines")]
    TooManyTrailers,
    #[error("trailer signature does not match")]
    BadTrailerSignature,
    #[error("body ended inside a chunk (torn upload)")]
    Torn,
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Decoded payload bytes.
    Data(Bytes),
    /// Push more input.
    NeedMore,
    /// The final chunk and the trailers were read and verified.
    Done,
}

enum State {
    Header,
    Data { remaining: u64, sig: Option<String> },
    DataEnd { sig: Option<String> },
    Trailer,
    Done,
}

const MAX_LINE: usize = 8192;

/// Trailer lines accepted (clients send a checksum and its signature): without a bound an
/// endless trailer section would grow memory line by line.
pub const MAX_TRAILERS: usize = 16;

/// The incremental decoder.
pub struct ChunkedDecoder {
    buf: BytesMut,
    state: State,
    signer: Option<ChunkSigner>,
    prev_sig: String,
    hash: Sha256,
    trailer_expected: bool,
    trailers: Vec<(String, String)>,
}

impl ChunkedDecoder {
    /// A decoder; `signer` for signed chunks, `trailer` when `x-amz-trailer` was sent.
    pub fn new(signer: Option<ChunkSigner>, trailer: bool) -> Self {
        let prev_sig = signer.as_ref().map(|s| s.seed.clone()).unwrap_or_default();
        ChunkedDecoder {
            buf: BytesMut::new(),
            state: State::Header,
            signer,
            prev_sig,
            hash: Sha256::new(),
            trailer_expected: trailer,
            trailers: Vec::new(),
        }
    }

    /// Adds input.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The trailers read (lowercase names), valid after [`Step::Done`].
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Called when the input ended: an error unless the body was complete.
    pub fn finish(&mut self) -> Result<(), ChunkError> {
        match self.state {
            State::Done => Ok(()),
            // Some clients end the trailer section without the final empty line.
            State::Trailer if self.buf.is_empty() => {
                self.check_trailer_signature()?;
                self.state = State::Done;
                Ok(())
            }
            _ => Err(ChunkError::Torn),
        }
    }

    fn take_line(&mut self) -> Result<Option<String>, ChunkError> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = self.buf.split_to(i + 1);
                let mut l = &line[..i];
                if l.last() == Some(&b'\r') {
                    l = &l[..l.len() - 1];
                }
                String::from_utf8(l.to_vec())
                    .map(Some)
                    .map_err(|_| ChunkError::BadHeader)
            }
            None if self.buf.len() > MAX_LINE => Err(ChunkError::BadHeader),
            None => Ok(None),
        }
    }

    fn verify_chunk(&mut self, sig: Option<String>) -> Result<(), ChunkError> {
        let hash = std::mem::take(&mut self.hash);
        let Some(s) = &self.signer else { return Ok(()) };
        let sig = sig.ok_or(ChunkError::MissingSignature)?;
        let sts = sigv4::chunk_string_to_sign(
            &s.amz_date,
            &s.scope,
            &self.prev_sig,
            &hex::encode(hash.finalize()),
        );
        let want = sigv4::signature(&s.key, &sts);
        if !sigv4::constant_time_eq(&want, &sig) {
            return Err(ChunkError::BadSignature);
        }
        self.prev_sig = sig;
        Ok(())
    }

    fn check_trailer_signature(&mut self) -> Result<(), ChunkError> {
        let Some(s) = &self.signer else { return Ok(()) };
        if !self.trailer_expected {
            return Ok(());
        }
        let sig = self
            .trailers
            .iter()
            .find(|(k, _)| k == "x-amz-trailer-signature")
            .map(|(_, v)| v.clone())
            .ok_or(ChunkError::BadTrailerSignature)?;
        let mut canon = String::new();
        for (k, v) in self
            .trailers
            .iter()
            .filter(|(k, _)| k != "x-amz-trailer-signature")
        {
            canon.push_str(&format!("{k}:{v}\n"));
        }
        let sts = sigv4::trailer_string_to_sign(&s.amz_date, &s.scope, &self.prev_sig, &canon);
        if !sigv4::constant_time_eq(&sigv4::signature(&s.key, &sts), &sig) {
            return Err(ChunkError::BadTrailerSignature);
        }
        Ok(())
    }

    /// Decodes as far as the buffered input allows.
    pub fn step(&mut self) -> Result<Step, ChunkError> {
        loop {
            match &mut self.state {
                State::Done => return Ok(Step::Done),
                State::Header => {
                    let Some(line) = self.take_line()? else {
                        return Ok(Step::NeedMore);
                    };
                    let (size, ext) = line.split_once(';').unwrap_or((&line, ""));
                    let size =
                        u64::from_str_radix(size.trim(), 16).map_err(|_| ChunkError::BadHeader)?;
                    let sig = ext
                        .split(';')
                        .find_map(|e| e.trim().strip_prefix("chunk-signature="))
                        .map(str::to_string);
                    if size == 0 {
                        self.verify_chunk(sig)?;
                        self.state = State::Trailer;
                    } else {
                        self.state = State::Data {
                            remaining: size,
                            sig,
                        };
                    }
                }
                State::Data { remaining, sig } => {
                    if self.buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = (*remaining).min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(n).freeze();
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        let sig = sig.take();
                        self.state = State::DataEnd { sig };
                    }
                    if self.signer.is_some() {
                        self.hash.update(&data);
                    }
                    return Ok(Step::Data(data));
                }
                State::DataEnd { sig } => {
                    if self.buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(ChunkError::BadTerminator);
                    }
                    self.buf.advance(2);
                    let sig = sig.take();
                    self.verify_chunk(sig)?;
                    self.state = State::Header;
                }
                State::Trailer => {
                    let Some(line) = self.take_line()? else {
                        return Ok(Step::NeedMore);
                    };
                    if line.is_empty() {
                        self.check_trailer_signature()?;
                        self.state = State::Done;
                        continue;
                    }
                    let (k, v) = line.split_once(':').ok_or(ChunkError::BadTrailer)?;
                    if self.trailers.len() >= MAX_TRAILERS {
                        return Err(ChunkError::TooManyTrailers);
                    }
                    self.trailers
                        .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
        }
    }
}

/// Encodes `data` as a signed aws-chunked body (tests, the bench, hand-signed requests).
pub fn encode_signed(
    signer: &ChunkSigner,
    data: &[u8],
    chunk: usize,
    trailer: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 256);
    let mut prev = signer.seed.clone();
    let mut sign = |piece: &[u8], out: &mut Vec<u8>| {
        let sts = sigv4::chunk_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &prev,
            &sigv4::sha256_hex(piece),
        );
        let sig = sigv4::signature(&signer.key, &sts);
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        prev = sig;
    };
    for piece in data.chunks(chunk.max(1)) {
        sign(piece, &mut out);
        out.extend_from_slice(b"\r\n");
    }
    sign(&[], &mut out);
    match trailer {
        None => out.extend_from_slice(b"\r\n"),
        Some((k, v)) => {
            let canon = format!("{k}:{v}\n");
            let sts = sigv4::trailer_string_to_sign(&signer.amz_date, &signer.scope, &prev, &canon);
            let sig = sigv4::signature(&signer.key, &sts);
            out.extend_from_slice(
                format!("{k}:{v}\r\nx-amz-trailer-signature:{sig}\r\n\r\n").as_bytes(),
            );
        }
    }
    out
}

/// Encodes `data` as an unsigned aws-chunked body with one trailer.
pub fn encode_unsigned(data: &[u8], chunk: usize, trailer: (&str, &str)) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 128);
    for piece in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0\r\n{}:{}\r\n\r\n", trailer.0, trailer.1).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> ChunkSigner {
        ChunkSigner {
            key: sigv4::signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524",
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        }
    }

    /// Decoded data and trailers.
    type Decoded = (Vec<u8>, Vec<(String, String)>);

    /// Feeds `body` in pieces of `piece` bytes; returns the decoded data or the error.
    fn decode(
        signer: Option<ChunkSigner>,
        trailer: bool,
        body: &[u8],
        piece: usize,
    ) -> Result<Decoded, ChunkError> {
        let mut d = ChunkedDecoder::new(signer, trailer);
        let mut out = Vec::new();
        for p in body.chunks(piece) {
            d.push(p);
            while let Step::Data(b) = d.step()? {
                out.extend_from_slice(&b);
            }
        }
        d.finish()?;
        Ok((out, d.trailers().to_vec()))
    }

    #[test]
    fn aws_doc_example_body_decodes_with_signatures_checked() {
        // 66560 bytes of 'a' in 64 KiB + 1 KiB chunks, as in the AWS documentation.
        let data = vec![b'a'; 66560];
        let body = encode_signed(&signer(), &data, 65536, None);
        // The documented signatures of the three chunks.
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"));
        assert!(text.contains("0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"));
        assert!(text.contains("b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"));
        for piece in [1, 7, 4096, 1 << 20] {
            let (out, _) = decode(Some(signer()), false, &body, piece).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn tampered_chunk_data_is_refused() {
        let data = vec![b'a'; 3000];
        let mut body = encode_signed(&signer(), &data, 1000, None);
        let i = body.iter().position(|&b| b == b'a').unwrap() + 10;
        body[i] = b'b';
        assert_eq!(
            decode(Some(signer()), false, &body, 512),
            Err(ChunkError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_is_refused() {
        let body = encode_signed(&signer(), b"hello", 5, None);
        let text =
            String::from_utf8(body)
                .unwrap()
                .replacen("chunk-signature=a", "chunk-signature=b", 1);
        let text = if text.contains("chunk-signature=b") {
            text
        } else {
            text.replacen("chunk-signature=", "chunk-signature=0", 1)
        };
        assert!(decode(Some(signer()), false, text.as_bytes(), 3).is_err());
    }

    #[test]
    fn torn_body_is_an_error_not_a_short_object() {
        let body = encode_signed(&signer(), &[b'x'; 5000], 1024, None);
        for cut in [0, 10, 1500, body.len() - 3] {
            let r = decode(Some(signer()), false, &body[..cut], 100);
            assert_eq!(r, Err(ChunkError::Torn), "cut at {cut}");
        }
    }

    #[test]
    fn unsigned_trailer_is_read() {
        let body = encode_unsigned(b"hello world", 4, ("x-amz-checksum-crc32", "DUoRhQ=="));
        let (out, tr) = decode(None, true, &body, 3).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(
            tr,
            vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
        );
    }

    #[test]
    fn signed_trailer_signature_is_checked() {
        let body = encode_signed(
            &signer(),
            b"hello world",
            4,
            Some(("x-amz-checksum-crc32", "DUoRhQ==")),
        );
        let (out, tr) = decode(Some(signer()), true, &body, 5).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(tr[0].1, "DUoRhQ==");
        let bad = String::from_utf8(body)
            .unwrap()
            .replace("DUoRhQ==", "AAAAAA==");
        assert_eq!(
            decode(Some(signer()), true, bad.as_bytes(), 5),
            Err(ChunkError::BadTrailerSignature)
        );
    }

    #[test]
    fn an_endless_trailer_section_is_refused() {
        let mut body = b"3\r\nabc\r\n0\r\n".to_vec();
        for i in 0..=MAX_TRAILERS {
            body.extend_from_slice(format!("x-amz-t{i}:v\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        assert_eq!(
            decode(None, true, &body, 64),
            Err(ChunkError::TooManyTrailers)
        );
    }

    #[test]
    fn garbage_header_is_corrupt() {
        assert_eq!(
            decode(None, false, b"zz\r\nabc", 10),
            Err(ChunkError::BadHeader)
        );
        assert_eq!(
            decode(None, false, b"3\r\nabcXY0\r\n\r\n", 10),
            Err(ChunkError::BadTerminator)
        );
    }
}
