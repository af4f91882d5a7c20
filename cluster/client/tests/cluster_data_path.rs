//! The client data path against a real local cluster (master + storage nodes as processes,
//! loopback gRPC, file-backed devices) through `kdss_testkit::Cluster`:
//! - random write / overwrite / truncate / read sequences agree with an in-memory model;
//! - with m storage nodes killed every file reads byte-exact, and new writes replace the
//!   dead targets; with m+1 killed the read is the clear Unrecoverable error;
//! - a shard corrupted on its device file is detected and read around;
//! - streams and the AsyncRead / AsyncWrite adapters round-trip objects.

use std::time::Duration;

use bytes::Bytes;
use kdss_client::{Client, ClientConfig, ClientError, FileReader, WrittenData};
use kdss_proto::master as pb;
use kdss_testkit::{Cluster, ClusterOpts};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn client_for(c: &Cluster, chunk_size: usize) -> ClientConfig {
    let (ak, sk) = c.admin_keys();
    ClientConfig {
        masters: c.masters(),
        access_key: ak,
        secret_key: sk,
        chunk_size,
        rpc_timeout: Duration::from_secs(20),
        shard_deadline: Duration::from_secs(2),
        ..ClientConfig::default()
    }
}

async fn root_ino(client: &Client, bucket: &str) -> u64 {
    let req = pb::BucketRequest {
        name: bucket.into(),
    };
    let b = client.master().get_bucket(req).await.expect("GetBucket");
    b.bucket.expect("bucket info").root_ino
}

async fn create(client: &Client, bucket: &str, parent: u64, name: &str) -> u64 {
    let req = pb::CreateRequest {
        bucket: bucket.into(),
        parent,
        name: name.into(),
        kind: pb::FileKind::Regular as i32,
        mode: 0o644,
        exclusive: true,
        ..Default::default()
    };
    let r = client.master().create(req).await.expect("Create");
    r.attr.expect("attr").ino
}

fn bytes_of(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Write { off: u64, len: usize, seed: u64 },
    Truncate { size: u64 },
    Flush,
    Read { off: u64, len: u64 },
}

/// Operations on a file of up to about 4 * `scale` bytes.
fn op(scale: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..scale * 3, 1..(scale * 3 / 2) as usize, any::<u64>())
            .prop_map(|(off, len, seed)| Op::Write { off, len, seed }),
        1 => (0..scale * 7 / 2).prop_map(|size| Op::Truncate { size }),
        2 => Just(Op::Flush),
        3 => (0..scale * 4, 1..scale * 2).prop_map(|(off, len)| Op::Read { off, len }),
    ]
}

/// Random write / overwrite / truncate / read sequences agree byte for byte with a Vec model
/// (reads after close-to-open: flush, then a fresh reader). Small chunks: many stripes,
/// reads and overwrites that cross stripe boundaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_match_an_in_memory_model() {
    model_sequences(100_000, 64 << 10, 0).await;
}

/// The same around the inline threshold: small files kept in metadata, grown past the
/// threshold into stripes over an inline base, truncated back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_inline_and_mixed_match_the_model() {
    model_sequences(9_000, 32 << 10, 16 << 10).await;
}

async fn model_sequences(scale: u64, chunk: usize, inline_threshold: usize) {
    let cluster = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let bucket = cluster.bucket();
    let client = Client::connect(ClientConfig {
        inline_threshold,
        ..client_for(&cluster, chunk)
    })
    .await
    .expect("connect");
    let root = root_ino(&client, &bucket).await;
    if inline_threshold > 0 {
        // A file within the threshold is stored without stripes; one past it gets stripes.
        for (len, stripes) in [(inline_threshold, false), (inline_threshold + 1, true)] {
            let ino = create(&client, &bucket, root, &format!("inline-{len}")).await;
            let mut w = client.file_writer(&bucket, ino);
            w.write_at(0, &bytes_of(7, len)).await.expect("write");
            assert_eq!(w.flush().await.expect("flush").size, len as u64);
            let r = client.open_reader(&bucket, ino).await.expect("open");
            assert_eq!(!r.extents().is_empty(), stripes, "{len} bytes");
            let got = r.read_at(0, len as u64).await.expect("read");
            assert!(
                got[..] == bytes_of(7, len)[..],
                "{len} bytes read back differ"
            );
        }
    }
    let rt = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: if inline_threshold > 0 { 12 } else { 6 },
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU32::new(0);
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(scale), 1..14), |ops| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (client, bucket) = (client.clone(), bucket.clone());
            rt.block_on(async move {
                let ino = create(&client, &bucket, root, &format!("model-{case}")).await;
                let mut model: Vec<u8> = Vec::new();
                let mut w = client.file_writer(&bucket, ino);
                for op in ops.iter().chain(std::iter::once(&Op::Read {
                    off: 0,
                    len: 1 << 20,
                })) {
                    match op {
                        Op::Write { off, len, seed } => {
                            let data = bytes_of(*seed, *len);
                            let end = *off as usize + len;
                            if model.len() < end {
                                model.resize(end, 0);
                            }
                            model[*off as usize..end].copy_from_slice(&data);
                            w.write_at(*off, &data).await.expect("write_at");
                        }
                        Op::Truncate { size } => {
                            w.discard_from(*size).await.expect("discard");
                            w.flush().await.expect("flush before truncate");
                            client
                                .truncate(&bucket, ino, *size)
                                .await
                                .expect("truncate");
                            model.resize(*size as usize, 0);
                        }
                        Op::Flush => {
                            let a = w.flush().await.expect("flush");
                            prop_assert_eq!(a.size, model.len() as u64);
                        }
                        Op::Read { off, len } => {
                            w.flush().await.expect("flush before read");
                            let r = client.open_reader(&bucket, ino).await.expect("open");
                            prop_assert_eq!(r.size(), model.len() as u64);
                            let got = r.read_at(*off, *len).await.expect("read_at");
                            let s = (*off as usize).min(model.len());
                            let e = (*off + *len).min(model.len() as u64) as usize;
                            prop_assert!(got[..] == model[s..e.max(s)], "read {off}+{len} differs");
                        }
                    }
                }
                Ok(())
            })
        })
    });
    result.expect("model-based sequences");
}

/// Writes one file per size through the FileWriter; returns (ino, content).
async fn write_files(client: &Client, bucket: &str, root: u64, tag: &str) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, size) in [1usize, 4095, (1 << 20) + 3, 5 << 20]
        .into_iter()
        .enumerate()
    {
        let ino = create(client, bucket, root, &format!("{tag}-{i}")).await;
        let data = bytes_of(i as u64 + 100, size);
        let mut w = client.file_writer(bucket, ino);
        for (j, piece) in data.chunks(300_000).enumerate() {
            w.write_at((j * 300_000) as u64, piece)
                .await
                .expect("write");
        }
        let a = w.flush().await.expect("flush");
        assert_eq!(a.size, size as u64);
        out.push((ino, data));
    }
    out
}

async fn read_all(client: &Client, bucket: &str, ino: u64) -> Result<Bytes, ClientError> {
    let r = client.open_reader(bucket, ino).await?;
    r.read_at(0, r.size()).await
}

/// Kill m = 2 of 7 storage nodes (one shard of each stripe per node): every file still
/// reads byte-exact, a new write goes around the dead targets; a third killed node makes
/// reads fail with Unrecoverable, never with wrong bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_m_dead_nodes_and_reports_m_plus_one() {
    // 7 nodes: one shard of each stripe per node. 2 disks each, so that 5 live nodes still
    // offer the 7 distinct disks a new stripe needs.
    let opts = ClusterOpts {
        nodes: 7,
        disks_per_node: 2,
        ..ClusterOpts::default()
    };
    let mut cluster = Cluster::start(opts).await.expect("cluster");
    let bucket = cluster.bucket();
    let cfg = client_for(&cluster, 1 << 20);
    let client = Client::connect(cfg.clone()).await.expect("connect");
    let root = root_ino(&client, &bucket).await;
    let files = write_files(&client, &bucket, root, "before").await;

    cluster.kill_node(0);
    cluster.kill_node(3);
    // A fresh client: nothing cached, every read goes to the nodes.
    let fresh = Client::connect(cfg.clone()).await.expect("connect");
    for (ino, data) in &files {
        let got = read_all(&fresh, &bucket, *ino)
            .await
            .expect("degraded read");
        assert!(
            got[..] == data[..],
            "file {ino} differs after losing 2 nodes"
        );
    }
    // Writes while nodes are dead: failed targets are replaced through the master.
    let after = write_files(&fresh, &bucket, root, "after").await;
    let again = Client::connect(cfg.clone()).await.expect("connect");
    for (ino, data) in &after {
        let got = read_all(&again, &bucket, *ino)
            .await
            .expect("read of a file written degraded");
        assert!(
            got[..] == data[..],
            "file {ino} written with dead nodes differs"
        );
    }

    cluster.kill_node(5);
    let last = Client::connect(cfg).await.expect("connect");
    let (ino, _) = &files[3];
    match read_all(&last, &bucket, *ino).await {
        Err(ClientError::Unrecoverable {
            available, needed, ..
        }) => {
            assert!(available < needed, "{available} < {needed}");
        }
        other => panic!("expected Unrecoverable with 3 of 7 nodes dead, got {other:?}"),
    }
}

/// Flip a byte of a data shard inside a storage node's device file: the node's checksum
/// check refuses it and the client reads around it from parity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_shard_on_disk_is_read_around() {
    let cluster = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let bucket = cluster.bucket();
    let cfg = client_for(&cluster, 1 << 20);
    let client = Client::connect(cfg.clone()).await.expect("connect");
    let root = root_ino(&client, &bucket).await;
    let ino = create(&client, &bucket, root, "corrupt-me").await;
    let data = bytes_of(42, 1 << 20);
    let mut w = client.file_writer(&bucket, ino);
    w.write_at(0, &data).await.expect("write");
    w.flush().await.expect("flush");

    // Data shard 0 holds the first ceil(1 MiB / 5) bytes of the file: find them on a device.
    let needle = &data[4096..4096 + 64];
    let mut hit = None;
    for node in &cluster.layout.nodes {
        for disk in &node.disks {
            let img = std::fs::read(disk).expect("read device file");
            if let Some(pos) = img.windows(needle.len()).position(|w| w == needle) {
                hit = Some((disk.clone(), pos));
            }
        }
    }
    let (disk, pos) = hit.expect("shard 0 bytes found on some device");
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&disk)
            .unwrap();
        f.seek(SeekFrom::Start(pos as u64)).unwrap();
        let mut b = [0u8; 1];
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(pos as u64)).unwrap();
        f.write_all(&[b[0] ^ 0xff]).unwrap();
        f.sync_all().unwrap();
    }
    let fresh = Client::connect(cfg).await.expect("connect");
    let got = read_all(&fresh, &bucket, ino)
        .await
        .expect("read around the corrupt shard");
    assert!(got[..] == data[..], "corrupt shard leaked into the data");
}

/// The S3 path: a StreamWriter's extents committed with PutObject read back through
/// HeadObject(with_extents) and `stream()`, with the MD5 of the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_writer_and_stream_reader_round_trip() {
    use futures::StreamExt;
    let cluster = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let bucket = cluster.bucket();
    let client = Client::connect(client_for(&cluster, 256 << 10))
        .await
        .expect("connect");
    let data = Bytes::from(bytes_of(7, (3 << 20) + 17));
    let mut sw = client.stream_writer(&bucket);
    for piece in data.chunks(100_000) {
        sw.write(Bytes::copy_from_slice(piece))
            .await
            .expect("write");
    }
    let wd = sw.finish().await.expect("finish");
    assert_eq!(wd.size, data.len() as u64);
    use md5::Digest;
    assert_eq!(wd.md5, <[u8; 16]>::from(md5::Md5::digest(&data)));
    let r = put_and_open(&client, &bucket, "dir/obj.bin", &wd).await;
    let mut got = Vec::new();
    let mut st = Box::pin(r.stream(1000, wd.size));
    while let Some(b) = st.next().await {
        got.extend_from_slice(&b.expect("stream"));
    }
    assert!(got[..] == data[1000..], "streamed bytes differ");

    // The same through the AsyncWrite / AsyncRead adapters and tokio::io::copy, large
    // (several stripes) and small (inline).
    use tokio::io::AsyncReadExt;
    for (key, len) in [("dir/adapted.bin", data.len()), ("dir/tiny.txt", 100)] {
        let mut w = client.stream_writer(&bucket).into_async_write();
        tokio::io::copy(&mut &data[..len], &mut w)
            .await
            .expect("copy in");
        let wd = w.finish().await.expect("finish");
        assert_eq!(
            (wd.size, wd.inline_data.is_some()),
            (len as u64, len < 1000),
            "{key}"
        );
        assert_eq!(
            wd.etag(),
            format!("\"{}\"", hex::encode(md5::Md5::digest(&data[..len])))
        );
        let r = put_and_open(&client, &bucket, key, &wd).await;
        let mut got = Vec::new();
        r.into_async_read(7, len as u64)
            .read_to_end(&mut got)
            .await
            .expect("copy out");
        assert!(
            got[..] == data[7..len],
            "{key}: bytes through the adapters differ"
        );
    }
}

/// Commits written data as object `key` and opens it again from HeadObject.
async fn put_and_open(client: &Client, bucket: &str, key: &str, wd: &WrittenData) -> FileReader {
    let info = client
        .put_object(wd.put_request(bucket, key))
        .await
        .expect("PutObject");
    assert_eq!(info.etag, wd.etag(), "{key}: ETag of PutObject");
    let (info, reader) = client.open_object(bucket, key).await.expect("HeadObject");
    assert_eq!(info.size, wd.size, "{key}: size after PutObject");
    reader
}

/// A long stream never holds more than the write window (plus one chunk and one MD5 batch),
/// and what it wrote reads back: memory per upload is bounded whatever its length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_stays_within_the_write_window() {
    let cluster = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let bucket = cluster.bucket();
    let (chunk, window) = (1usize << 20, 8u64 << 20);
    let client = Client::connect(ClientConfig {
        write_window_bytes: window,
        ..client_for(&cluster, chunk)
    })
    .await
    .expect("connect");
    let piece = Bytes::from(bytes_of(3, 300_000));
    let total: u64 = 512 << 20;
    let bound = window + chunk as u64 + (4 << 20) + piece.len() as u64;
    let mut sw = client.stream_writer(&bucket);
    let (mut sent, mut peak) = (0u64, 0u64);
    while sent < total {
        sw.write(piece.clone()).await.expect("write");
        sent += piece.len() as u64;
        peak = peak.max(sw.buffered_bytes());
        assert!(
            sw.buffered_bytes() <= bound,
            "{} buffered after {sent} bytes (bound {bound})",
            sw.buffered_bytes()
        );
    }
    let wd = sw.finish().await.expect("finish");
    assert_eq!(wd.size, sent);
    assert!(
        peak >= window / 2,
        "the window was never used ({peak}): the test measures nothing"
    );
    let r = put_and_open(&client, &bucket, "long.bin", &wd).await;
    let tail = r.read_at(sent - 1000, 1000).await.expect("read tail");
    let at = ((sent - 1000) % piece.len() as u64) as usize;
    let want: Vec<u8> = piece.iter().cycle().skip(at).take(1000).copied().collect();
    assert!(tail[..] == want[..], "tail of the long stream differs");
    assert!(
        client
            .delete_object(&bucket, "long.bin")
            .await
            .expect("delete")
    );
    assert!(
        !client
            .delete_object(&bucket, "long.bin")
            .await
            .expect("delete again")
    );
    assert!(
        client.open_object(&bucket, "long.bin").await.is_err(),
        "a deleted object still opens"
    );
}

/// Thousands of tiny scattered dirty runs (what an mmap flush of a sparsely touched file
/// sends) flush without error and read back: the writer bounds the stripes it has in flight,
/// not only their bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tiny_scattered_writes_flush_and_read_back() {
    let cluster = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let bucket = cluster.bucket();
    let cfg = client_for(&cluster, 1 << 20);
    let cfg_window = cfg.write_window_bytes;
    let client = Client::connect(cfg).await.expect("connect");
    let root = root_ino(&client, &bucket).await;
    let ino = create(&client, &bucket, root, "sparse-touch").await;
    let (pages, page) = (3000u64, 4096u64);
    let mut model = vec![0u8; (pages * page) as usize];
    let mut w = client.file_writer(&bucket, ino);
    for p in 0..pages {
        let off = p * page + (p % 7) * 100;
        let bytes = p.to_le_bytes();
        model[off as usize..off as usize + 8].copy_from_slice(&bytes);
        w.write_at(off, &bytes).await.expect("write");
    }
    w.flush().await.expect("flush of 3000 tiny runs");
    let bound = (cfg_window / (1 << 20)).max(2) as usize;
    assert!(
        w.peak_stripes_in_flight() <= bound,
        "{} stripes in flight at once (bound {bound})",
        w.peak_stripes_in_flight()
    );
    let got = read_all(&client, &bucket, ino).await.expect("read");
    assert_eq!(
        got.len() as u64,
        (pages - 1) * page + ((pages - 1) % 7) * 100 + 8
    );
    assert!(got[..] == model[..got.len()], "content differs after flush");
}
