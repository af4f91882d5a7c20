//! Objects by key: committing what a [`StreamWriter`](crate::StreamWriter) wrote (a whole
//! object or one multipart part), opening an object for reading, its info, deleting it. The
//! S3 gateway, kdss-cli and the tests share these so that a PutObject from any door carries
//! the same size, ETag and inline data.

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

    /// A PutPart that records these bytes as part `part_number` of `upload_id`; the caller
    /// adds verified checksums before [`Client::put_part`]. (A part's writer runs
    /// [`without_inline`](crate::StreamWriter::without_inline), so only an empty part has
    /// no extents.)
    pub fn part_request(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
    ) -> pb::PutPartRequest {
        pb::PutPartRequest {
            bucket: bucket.into(),
            key: key.into(),
            upload_id: upload_id.into(),
            part_number,
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
        let r = self.master.put_object(req).await?;
        r.info
            .ok_or_else(|| ClientError::Internal("PutObject answered without object info".into()))
    }

    /// Records one multipart part whose stripes a finished writer made durable.
    pub async fn put_part(&self, req: pb::PutPartRequest) -> Result<pb::PartInfo, ClientError> {
        let r = self.master.put_part(req).await?;
        r.part
            .ok_or_else(|| ClientError::Internal("PutPart answered without part info".into()))
    }

    /// An object's info (size, ETag, metadata) without its extents: HEAD and conditions.
    pub async fn stat_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<pb::ObjectInfo, ClientError> {
        let h = self
            .master
            .head_object(pb::HeadObjectRequest {
                bucket: bucket.into(),
                key: key.into(),
                with_extents: false,
            })
            .await?;
        h.info
            .ok_or_else(|| ClientError::Internal("HeadObject answered without object info".into()))
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
        let h = self.master.head_object(req).await?;
        let info = h.info.ok_or_else(|| {
            ClientError::Internal("HeadObject answered without object info".into())
        })?;
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
        let r = self.master.delete_object(req).await?;
        Ok(r.existed)
    }
}
