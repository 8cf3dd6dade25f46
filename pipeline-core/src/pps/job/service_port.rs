//! Where a service is reached (`service.internal_port`, `service.external_port`): always
//! `127.0.0.1:<external_port>` on the engine's host.
//!
//! When the user code's own socket is that address (a local process listening on the
//! external port) nothing is in between: the port is only checked to be free before the
//! code starts, so a port already taken fails the job naming it instead of leaving a
//! service that never answers. Otherwise (another internal port, or a worker with an
//! address of its own such as a container on the `pipeline-workers` network) the engine
//! listens on `127.0.0.1:<external_port>` for the job's lifetime and relays every
//! connection to `<worker address>:<internal_port>`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::task::JoinHandle;

use crate::spec::Service;

/// A service's host port, held while its job runs (the relay stops when dropped).
#[derive(Debug)]
pub(crate) struct ServicePort {
    /// Where clients reach the service.
    #[cfg_attr(not(test), allow(dead_code))]
    pub listen: SocketAddr,
    /// The relay's accept loop, when there is one.
    relay: Option<JoinHandle<()>>,
}

impl Drop for ServicePort {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            r.abort();
        }
    }
}

/// Where a pipeline's service is reached on the engine's host: `127.0.0.1:<external_port>`
/// (its internal port when `external_port` is 0).
pub fn listen_address(service: &Service) -> SocketAddr {
    let external = if service.external_port > 0 {
        service.external_port
    } else {
        service.internal_port
    };
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        u16::try_from(external).unwrap_or(0),
    )
}

/// Opens the host port of `service` whose code runs on a worker at `worker`: checks it is
/// free, and relays it to the worker when the code's own socket is elsewhere. The error is
/// the job's failure reason.
pub(crate) async fn open(service: &Service, worker: IpAddr) -> Result<ServicePort, String> {
    let internal = u16::try_from(service.internal_port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            format!(
                "service.internal_port: expected the port the service's code listens on (1-65535), found {}",
                service.internal_port
            )
        })?;
    let listen = listen_address(service);
    let target = SocketAddr::new(worker, internal);
    let taken = |e: std::io::Error| {
        format!(
            "service.external_port: cannot listen on {listen}: {e} (is another program or service using port {}?)",
            listen.port()
        )
    };
    if target == listen {
        // The user code binds it itself: free now, or the job fails here, naming it.
        drop(std::net::TcpListener::bind(listen).map_err(taken)?);
        return Ok(ServicePort {
            listen,
            relay: None,
        });
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(taken)?;
    let relay = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                match tokio::net::TcpStream::connect(target).await {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(e) => {
                        tracing::debug!(%target, error = %e, "service relay: worker not reachable");
                    }
                }
            });
        }
    });
    Ok(ServicePort {
        listen,
        relay: Some(relay),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(internal: i32, external: i32) -> Service {
        Service {
            internal_port: internal,
            external_port: external,
            ip: None,
            service_type: None,
        }
    }

    #[tokio::test]
    async fn a_taken_port_fails_naming_it() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = i32::from(held.local_addr().unwrap().port());
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for s in [service(port, port), service(1, port)] {
            let e = open(&s, local).await.unwrap_err();
            assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
            assert!(e.starts_with("service.external_port"), "{e}");
        }
    }

    #[tokio::test]
    async fn internal_port_zero_is_refused() {
        let e = open(&service(0, 0), IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .unwrap_err();
        assert!(e.starts_with("service.internal_port"), "{e}");
    }

    #[tokio::test]
    async fn another_internal_port_is_relayed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let code = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let internal = i32::from(code.local_addr().unwrap().port());
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let external = i32::from(free.local_addr().unwrap().port());
        drop(free);
        let port = open(
            &service(internal, external),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await
        .unwrap();
        let echo = tokio::spawn(async move {
            let (mut s, _) = code.accept().await.unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let mut c = tokio::net::TcpStream::connect(port.listen).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        echo.await.unwrap();
    }
}
