//! Compiles proto/*.proto with the vendored protoc, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .bytes(".kdss.storage.v1.PutShardRequest.data")
        .bytes(".kdss.storage.v1.GetShardChunk.data")
        .compile_protos(&["proto/storage.proto", "proto/master.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
