//! A TCP round-robin proxy on loopback in front of several server instances: each new
//! connection goes to the next instance that accepts it (an instance that is down, e.g.
//! killed by the fault injector, is skipped). Connections are kept alive by the clients, so
//! the spread is per connection, not per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub async fn run(listen: &str, upstreams: Vec<String>) -> anyhow::Result<()> {
    if upstreams.is_empty() {
        anyhow::bail!("proxy: give at least one --upstream host:port");
    }
    for u in std::iter::once(listen).chain(upstreams.iter().map(String::as_str)) {
        let ip = u.rsplit_once(':').map(|(h, _)| h).unwrap_or(u);
        if !(ip.starts_with("127.") || ip == "localhost" || ip == "[::1]") {
            anyhow::bail!(
                "proxy: {u} is not a loopback address; the load test stays on this machine"
            );
        }
    }
    let listener = TcpListener::bind(listen).await?;
    println!(
        "proxy listening on {} -> {}",
        listener.local_addr()?,
        upstreams.join(", ")
    );
    let upstreams = Arc::new(upstreams);
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (client, _) = listener.accept().await?;
        let _ = client.set_nodelay(true);
        let upstreams = upstreams.clone();
        let next = next.clone();
        tokio::spawn(async move {
            let start = next.fetch_add(1, Ordering::Relaxed);
            for i in 0..upstreams.len() {
                let target = &upstreams[(start + i) % upstreams.len()];
                let connect =
                    tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await;
                if let Ok(Ok(server)) = connect {
                    let _ = server.set_nodelay(true);
                    let (mut c, mut s) = (client, server);
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    return;
                }
            }
        });
    }
}
