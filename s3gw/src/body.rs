//! The request body as the handlers see it: decoded (aws-chunked or plain), counted,
//! hashed on the fly and verified at its end — x-amz-content-sha256, the declared length,
//! `x-amz-checksum-*` from a header or the trailer. Data is handed out piece by piece, so
//! a 10 GiB PUT never sits in memory; a verification failure surfaces as the last read, so
//! a caller that commits only after reading `None` stores nothing on a mismatch.

use crate::auth::Payload;
use crate::auth::chunked::{ChunkError, ChunkedDecoder, Step};
use crate::checksum::{Algo, Hasher};
use crate::error::{Code, S3Error, S3Result};
use axum::body::{Body, BodyDataStream};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// A verified, decoded request body.
pub struct RequestBody {
    stream: BodyDataStream,
    decoder: Option<ChunkedDecoder>,
    sha256: Option<(Sha256, String)>,
    checksum: Option<(Algo, Hasher, Option<String>)>,
    from_trailer: bool,
    expected_len: Option<u64>,
    seen: u64,
    done: bool,
    computed: Option<(Algo, String)>,
}

fn chunk_error(e: ChunkError) -> S3Error {
    match e {
        ChunkError::BadSignature
        | ChunkError::MissingSignature
        | ChunkError::BadTrailerSignature => {
            S3Error::new(Code::SignatureDoesNotMatch, e.to_string())
        }
        ChunkError::Torn => S3Error::new(Code::IncompleteBody, e.to_string()),
        _ => S3Error::new(Code::InvalidRequest, format!("aws-chunked body: {e}")),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl RequestBody {
    /// Wraps `body` for a request authenticated with `payload`.
    pub fn new(body: Body, headers: &HeaderMap, payload: &Payload) -> S3Result<Self> {
        Self::with_checksums(body, headers, payload, true)
    }

    /// As [`RequestBody::new`]; `checksums` false ignores `x-amz-checksum-*` headers that
    /// describe something else than this body (CompleteMultipartUpload names the object's).
    pub fn with_checksums(
        body: Body,
        headers: &HeaderMap,
        payload: &Payload,
        checksums: bool,
    ) -> S3Result<Self> {
        let (decoder, sha256) = match payload {
            Payload::Unsigned => (None, None),
            Payload::Sha256(h) => (None, Some((Sha256::new(), h.clone()))),
            Payload::Chunked { signer, trailer } => {
                (Some(ChunkedDecoder::new(signer.clone(), *trailer)), None)
            }
        };
        let chunked = decoder.is_some();
        let expected_len = if chunked {
            match header(headers, "x-amz-decoded-content-length") {
                Some(v) => Some(v.parse().map_err(|_| {
                    S3Error::new(Code::InvalidArgument, "bad x-amz-decoded-content-length")
                })?),
                None => None,
            }
        } else {
            match header(headers, "content-length") {
                Some(v) => Some(
                    v.parse()
                        .map_err(|_| S3Error::new(Code::InvalidArgument, "bad Content-Length"))?,
                ),
                None => None,
            }
        };
        // A checksum value in a header, or one announced for the trailer.
        let mut checksum = None;
        let mut from_trailer = false;
        for a in Algo::ALL.into_iter().filter(|_| checksums) {
            if let Some(v) = header(headers, a.header()) {
                checksum = Some((a, a.hasher(), Some(v.trim().to_string())));
                break;
            }
        }
        if checksum.is_none()
            && let Some(t) = header(headers, "x-amz-trailer")
        {
            let a = Algo::parse(t).ok_or_else(|| {
                S3Error::new(
                    Code::InvalidRequest,
                    format!("unsupported x-amz-trailer {t:?}"),
                )
            })?;
            checksum = Some((a, a.hasher(), None));
            from_trailer = true;
        }
        if checksum.is_none()
            && checksums
            && let Some(a) = header(headers, "x-amz-sdk-checksum-algorithm").and_then(Algo::parse)
        {
            checksum = Some((a, a.hasher(), None));
        }
        Ok(RequestBody {
            stream: body.into_data_stream(),
            decoder,
            sha256,
            checksum,
            from_trailer,
            expected_len,
            seen: 0,
            done: false,
            computed: None,
        })
    }

    /// The declared decoded length, when the client sent one.
    pub fn expected_len(&self) -> Option<u64> {
        self.expected_len
    }

    /// The checksum computed over the body (after `None` was read), to store.
    pub fn checksum(&self) -> Option<(Algo, String)> {
        self.computed.clone()
    }

    fn account(&mut self, data: &Bytes) -> S3Result<()> {
        self.seen += data.len() as u64;
        if let Some(n) = self.expected_len
            && self.seen > n
        {
            return Err(S3Error::new(
                Code::InvalidRequest,
                "body longer than declared",
            ));
        }
        if let Some((h, _)) = &mut self.sha256 {
            h.update(data);
        }
        if let Some((_, h, _)) = &mut self.checksum {
            h.update(data);
        }
        Ok(())
    }

    fn verify_end(&mut self) -> S3Result<()> {
        if let Some(n) = self.expected_len
            && self.seen != n
        {
            return Err(S3Error::new(
                Code::IncompleteBody,
                format!(
                    "You did not provide the number of bytes specified ({} of {n})",
                    self.seen
                ),
            ));
        }
        if let Some((h, want)) = self.sha256.take() {
            let got = hex::encode(h.finalize());
            if got != *want {
                return Err(S3Error::new(
                    Code::XAmzContentSHA256Mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        if let Some((algo, h, want)) = self.checksum.take() {
            let want = if self.from_trailer {
                let name = algo.header();
                self.decoder
                    .as_ref()
                    .and_then(|d| d.trailers().iter().find(|(k, _)| k == name))
                    .map(|(_, v)| v.clone())
            } else {
                want
            };
            let got = h.finish();
            if let Some(w) = want {
                if w != got {
                    return Err(S3Error::new(
                        Code::BadDigest,
                        format!(
                            "The {} you specified did not match the calculated checksum.",
                            algo.name()
                        ),
                    ));
                }
            } else if self.from_trailer {
                return Err(S3Error::new(
                    Code::InvalidRequest,
                    "announced trailer missing",
                ));
            }
            self.computed = Some((algo, got));
        }
        Ok(())
    }

    /// The next piece of decoded data; `None` once the body ended and verified.
    pub async fn next(&mut self) -> S3Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(d) = &mut self.decoder {
                match d.step().map_err(chunk_error)? {
                    Step::Data(b) => {
                        self.account(&b)?;
                        return Ok(Some(b));
                    }
                    Step::Done => {
                        self.done = true;
                        self.verify_end()?;
                        return Ok(None);
                    }
                    Step::NeedMore => {}
                }
            }
            match self.stream.next().await {
                Some(Ok(b)) => match &mut self.decoder {
                    Some(d) => d.push(&b),
                    None => {
                        if b.is_empty() {
                            continue;
                        }
                        self.account(&b)?;
                        return Ok(Some(b));
                    }
                },
                Some(Err(e)) => {
                    return Err(S3Error::new(
                        Code::IncompleteBody,
                        format!("reading body: {e}"),
                    ));
                }
                None => {
                    if let Some(d) = &mut self.decoder {
                        d.finish().map_err(chunk_error)?;
                    }
                    self.done = true;
                    self.verify_end()?;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads a small body whole (XML requests), refusing more than `limit` bytes.
    pub async fn collect(mut self, limit: usize) -> S3Result<Bytes> {
        let mut buf = BytesMut::new();
        while let Some(b) = self.next().await? {
            if buf.len() + b.len() > limit {
                return Err(S3Error::new(Code::InvalidRequest, "request body too large"));
            }
            buf.extend_from_slice(&b);
        }
        Ok(buf.freeze())
    }
}
