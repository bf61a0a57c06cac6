//! Upgraded connections (websockets): bytes copied both ways until either side closes or
//! both stay silent for the idle timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Copies `from` into `to` until end of stream, recording activity.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    activity: Arc<AtomicU64>,
    start: Instant,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}

/// Waits for both sides to finish upgrading, then tunnels until done. Runs as its own task.
pub(crate) async fn run(client: OnUpgrade, upstream: OnUpgrade, idle: Duration) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
    let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
    let start = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let both = async {
        let up = pump(client_read, upstream_write, activity.clone(), start);
        let down = pump(upstream_read, client_write, activity.clone(), start);
        // One side closing ends that direction; the tunnel ends when either errors or
        // both have closed.
        let _ = tokio::try_join!(up, down);
    };
    let watchdog = async {
        loop {
            let last = Duration::from_millis(activity.load(Ordering::Relaxed));
            let quiet_until = start + last + idle;
            if Instant::now() >= quiet_until {
                return;
            }
            tokio::time::sleep_until(quiet_until).await;
        }
    };
    tokio::select! {
        _ = both => {}
        _ = watchdog => tracing::debug!(?idle, "tunnel closed: idle"),
    }
}
