//! A minimal SigV4-signing HTTP/1.1 client over one keep-alive TCP connection: enough for
//! the benchmark (no HTTP client library in the measured path) and for tests that must
//! send exactly the bytes they mean (aws-chunked bodies, trailers, tampered signatures).

use crate::auth::sigv4;
use std::time::SystemTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Keys and region to sign with.
#[derive(Clone, Debug)]
pub struct Signer {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// A response: status, headers (lowercase names) and the body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The `<Code>` of an S3 error body.
    pub fn error_code(&self) -> String {
        let b = String::from_utf8_lossy(&self.body);
        b.split_once("<Code>")
            .and_then(|(_, r)| r.split_once("</Code>"))
            .map(|(c, _)| c.to_string())
            .unwrap_or_default()
    }
}

pub use crate::dates::amz_date;

impl Signer {
    /// Signs a request; returns the headers to send (host, x-amz-*, authorization) and the
    /// signature (the seed of aws-chunked bodies). `extra` headers are signed too.
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        path_and_query: &str,
        payload_hash: &str,
        extra: &[(String, String)],
        now: SystemTime,
    ) -> Signed {
        let date = amz_date(now);
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host.into()),
            ("x-amz-content-sha256".into(), payload_hash.into()),
            ("x-amz-date".into(), date.clone()),
        ];
        for (k, v) in extra {
            headers.push((k.to_ascii_lowercase(), v.clone()));
        }
        headers.sort();
        let signed = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canon: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), sigv4::canonical_header_value(v)))
            .collect();
        let cq = sigv4::canonical_query(&sigv4::query_pairs(query), None);
        let cr = sigv4::canonical_request(method, path, &cq, &canon, &signed, payload_hash);
        let scope = format!("{}/{}/s3/aws4_request", &date[..8], self.region);
        let key = sigv4::signing_key(&self.secret_key, &date[..8], &self.region, "s3");
        let sig = sigv4::signature(&key, &sigv4::string_to_sign(&date, &scope, &cr));
        headers.push((
            "authorization".into(),
            format!(
                "{} Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
                sigv4::ALGORITHM,
                self.access_key
            ),
        ));
        Signed {
            headers,
            signature: sig,
            key,
            amz_date: date,
            scope,
        }
    }
}

/// A signed request: headers to send, and what aws-chunked bodies chain from.
pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub signature: String,
    pub key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
}

impl Signed {
    /// The chunk signer of an aws-chunked body sent with this request.
    pub fn chunk_signer(&self) -> crate::auth::chunked::ChunkSigner {
        crate::auth::chunked::ChunkSigner {
            key: self.key,
            amz_date: self.amz_date.clone(),
            scope: self.scope.clone(),
            seed: self.signature.clone(),
        }
    }
}

/// One keep-alive connection.
pub struct Conn {
    io: BufReader<TcpStream>,
    /// `host:port` as sent in `Host`.
    pub host: String,
}

impl Conn {
    /// Connects to `host:port`.
    pub async fn connect(host: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(host).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            io: BufReader::with_capacity(256 << 10, s),
            host: host.to_string(),
        })
    }

    /// Sends one request with `headers` and `body`; reads the response. With `keep_body`
    /// false the body is read and counted but not kept (`body` stays empty).
    pub async fn send(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: &[u8],
        keep_body: bool,
    ) -> std::io::Result<(RawResponse, u64)> {
        let mut head = format!("{method} {path_and_query} HTTP/1.1\r\n");
        let mut has_len = false;
        for (k, v) in headers {
            has_len |= k.eq_ignore_ascii_case("content-length");
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let w = self.io.get_mut();
        w.write_all(head.as_bytes()).await?;
        w.write_all(body).await?;
        w.flush().await?;
        self.read_response(method == "HEAD", keep_body).await
    }

    async fn read_response(
        &mut self,
        head: bool,
        keep: bool,
    ) -> std::io::Result<(RawResponse, u64)> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut line = String::new();
        loop {
            line.clear();
            if self.io.read_line(&mut line).await? == 0 {
                return Err(bad("connection closed before the response"));
            }
            let status: u16 = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad status line"))?;
            let mut headers = Vec::new();
            loop {
                line.clear();
                self.io.read_line(&mut line).await?;
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            if status == 100 {
                continue;
            }
            let mut resp = RawResponse {
                status,
                headers,
                body: Vec::new(),
            };
            let chunked = resp
                .header("transfer-encoding")
                .is_some_and(|t| t.contains("chunked"));
            let mut n = 0u64;
            if head || status == 204 || status == 304 {
            } else if chunked {
                loop {
                    line.clear();
                    self.io.read_line(&mut line).await?;
                    let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                        .map_err(|_| bad("bad chunk size"))?;
                    if size == 0 {
                        line.clear();
                        self.io.read_line(&mut line).await?;
                        break;
                    }
                    n += self.read_exact_n(size, keep, &mut resp.body).await?;
                    let mut crlf = [0u8; 2];
                    self.io.read_exact(&mut crlf).await?;
                }
            } else {
                let len: u64 = resp
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                n = self.read_exact_n(len, keep, &mut resp.body).await?;
            }
            return Ok((resp, n));
        }
    }

    async fn read_exact_n(
        &mut self,
        mut len: u64,
        keep: bool,
        out: &mut Vec<u8>,
    ) -> std::io::Result<u64> {
        let total = len;
        let mut buf = vec![0u8; 256 << 10];
        while len > 0 {
            let want = (len as usize).min(buf.len());
            let got = self.io.read(&mut buf[..want]).await?;
            if got == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "short body",
                ));
            }
            if keep {
                out.extend_from_slice(&buf[..got]);
            }
            len -= got as u64;
        }
        Ok(total)
    }
}
