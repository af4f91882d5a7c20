//! The one way KDSS clients build a gRPC channel: connect lazily, fail fast on a dead
//! address, keep the connection alive, and open flow-control windows wide enough for
//! megabyte shards.

use std::time::Duration;

use tonic::transport::Channel;

/// Builds a lazily connecting channel to `addr` (`host:port` or a URL); nothing is dialled
/// until the first call, so building one for a dead node costs nothing. TLS as the process
/// installed it (`kdss_common::tls`).
pub fn lazy_channel(addr: &str, connect_timeout: Duration) -> Result<Channel, String> {
    let ep = kdss_common::tls::endpoint(addr)?;
    Ok(ep
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .connect_lazy())
}
