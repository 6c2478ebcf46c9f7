//! Outbound `wasi:http`: every request is checked against the plugin's allow-list (names
//! resolved first, so a listed name pointing at a private address is refused too), then sent
//! to exactly the addresses checked (`http_send.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::policy::AllowList;
use crate::runtime::log::{Level, StepLog, Stream};

type ResponseFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// What a [`Resolver`] calls: a host name and port in, its addresses out.
pub type ResolveFn = dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync;

/// Looks up host names for `wasi:http` (the system's resolver unless a test gives another).
#[derive(Clone)]
pub struct Resolver(pub Arc<ResolveFn>);

impl Default for Resolver {
    fn default() -> Self {
        Resolver(Arc::new(|host, port| {
            Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
        }))
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// The `WasiHttpHooks` of one step: its allow-list and its log, where denials are reported.
pub struct HttpPolicy {
    allow: AllowList,
    log: StepLog,
    resolver: Resolver,
}

impl HttpPolicy {
    /// A policy that allows exactly `allow`, looking names up with `resolver`.
    pub fn new(allow: AllowList, log: StepLog, resolver: Resolver) -> Self {
        HttpPolicy { allow, log, resolver }
    }
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: ResponseFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, ResponseFuture), Error>> + Send> {
        _ = fut;
        let allow = self.allow.clone();
        let log = self.log.clone();
        let resolver = self.resolver.clone();
        Box::new(async move {
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().to_string();
            let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
            let deny = |denied: crate::policy::Denied| {
                let _ = log.line(Level::Error, Stream::Log, &format!("http request denied: {denied}"));
                Err(Error::HttpRequestDenied)
            };
            // Check the name before resolving it: an unlisted name is never looked up, so a
            // plugin cannot use DNS queries to smuggle data out.
            if let Err(denied) = allow.check(&host, port, &[]) {
                return deny(denied);
            }
            let (addrs, resolved): (Vec<SocketAddr>, Vec<IpAddr>) =
                match host.trim_matches(['[', ']']).parse::<IpAddr>() {
                    Ok(ip) => (vec![SocketAddr::new(ip, port)], Vec::new()),
                    Err(_) => match (resolver.0)(host.clone(), port).await {
                        Ok(addrs) if !addrs.is_empty() => {
                            let ips = addrs.iter().map(SocketAddr::ip).collect();
                            (addrs, ips)
                        }
                        _ => return Err(Error::DestinationNotFound),
                    },
                };
            if let Err(denied) = allow.check(&host, port, &resolved) {
                return deny(denied);
            }
            super::http_send::send(request, options, &host, &addrs).await
        })
    }
}
