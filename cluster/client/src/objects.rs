//! Objects by key: committing what a [`StreamWriter`](crate::StreamWriter) wrote, opening
//! an object for reading and deleting it. The S3 gateway, kdss-cli and the tests share these
//! so that a PutObject from any door carries the same size, ETag and inline data.

use bytes::Bytes;
use kdss_proto::master as pb;

use crate::{Client, ClientError, FileReader, WrittenData};

impl WrittenData {
    /// The S3 ETag of these bytes when stored as one object: the quoted hex MD5.
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }

    /// A PutObject that commits these bytes at `bucket/key`; the caller adds metadata and
    /// conditions (if_match, if_none_match_star) before [`Client::put_object`].
    pub fn put_request(&self, bucket: &str, key: &str) -> pb::PutObjectRequest {
        pb::PutObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            extents: self.extents.clone(),
            size: self.size,
            etag: self.etag(),
            inline_data: self.inline_data.clone().unwrap_or_default().to_vec(),
            ..Default::default()
        }
    }
}

impl Client {
    /// Commits an object (invariant 1: the stripes behind `req.extents` are durable, since
    /// a finished StreamWriter made them so). Replaces what was at the key.
    pub async fn put_object(
        &self,
        req: pb::PutObjectRequest,
    ) -> Result<pb::ObjectInfo, ClientError> {
        let r = self
            .master
            .call(|mut c| {
                let req = req.clone();
                async move { c.put_object(req).await }
            })
            .await?;
        r.info
            .ok_or_else(|| ClientError::Invalid("PutObject answered without object info".into()))
    }

    /// An object's info and a reader over the version that was current at this call (a
    /// later overwrite does not change what the reader returns).
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(pb::ObjectInfo, FileReader), ClientError> {
        let req = pb::HeadObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            with_extents: true,
        };
        let h = self
            .master
            .call(|mut c| {
                let req = req.clone();
                async move { c.head_object(req).await }
            })
            .await?;
        let info = h.info.unwrap_or_default();
        let reader = self.reader_from_extents(
            bucket,
            info.size,
            h.extents,
            h.stripes,
            Bytes::from(h.inline_data),
        );
        Ok((info, reader))
    }

    /// Deletes the object at `bucket/key`; `Ok(false)` when there was none.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, ClientError> {
        let req = pb::DeleteObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
        };
        let r = self
            .master
            .call(|mut c| {
                let req = req.clone();
                async move { c.delete_object(req).await }
            })
            .await?;
        Ok(r.existed)
    }
}
