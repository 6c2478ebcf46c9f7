//! Outbound `wasi:http`: every request is checked against the plugin's allow-list (names
//! resolved first, so a listed name pointing at a private address is refused too).

use std::net::IpAddr;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::policy::AllowList;
use crate::runtime::log::{Level, StepLog, Stream};

type ResponseFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// The `WasiHttpHooks` of one step: its allow-list and its log, where denials are reported.
pub struct HttpPolicy {
    allow: AllowList,
    log: StepLog,
}

impl HttpPolicy {
    /// A policy that allows exactly `allow`.
    pub fn new(allow: AllowList, log: StepLog) -> Self {
        HttpPolicy { allow, log }
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
            let resolved: Vec<IpAddr> = if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
                Vec::new()
            } else {
                match tokio::net::lookup_host((host.as_str(), port)).await {
                    Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                    Err(_) => return Err(Error::DestinationNotFound),
                }
            };
            if let Err(denied) = allow.check(&host, port, &resolved) {
                return deny(denied);
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as ResponseFuture))
        })
    }
}
