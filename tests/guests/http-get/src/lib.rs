//! GETs `config.url` through wasi:http's outgoing-handler. On a host that denies
//! outgoing HTTP the step fails with the error code's name, e.g. `HttpRequestDenied`.
use powernode_sdk::wit::wasi::http::outgoing_handler;
use powernode_sdk::wit::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingRequest, Scheme,
};
use powernode_sdk::wit::wasi::io::streams::StreamError;
use powernode_sdk::{Context, Error, Info, Output, Step};
use serde::Deserialize;

/// Bodies beyond this many bytes are cut off.
const MAX_BODY: usize = 1 << 20;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
}

struct HttpGet;

impl Step for HttpGet {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "http_get",
            env!("CARGO_PKG_VERSION"),
            "GETs a URL with wasi:http (test: outgoing HTTP policy)",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let (scheme, authority, path) = split_url(&ctx.config.url)?;

        let request = OutgoingRequest::new(Fields::new());
        request
            .set_method(&Method::Get)
            .map_err(|()| Error::failed("invalid method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| Error::failed("invalid scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| Error::failed(format!("invalid authority `{authority}`")))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| Error::failed(format!("invalid path `{path}`")))?;

        let future = outgoing_handler::handle(request, None).map_err(code)?;
        let response = loop {
            match future.get() {
                Some(result) => break result,
                None => future.subscribe().block(),
            }
        };
        let response = response
            .map_err(|()| Error::failed("response already taken"))?
            .map_err(code)?;

        let status = response.status();
        let body = read_body(&response)?;
        Ok(Output::new(format!("{status}\n{body}"))
            .with("status", status)
            .with("body", body))
    }
}

powernode_sdk::step!(HttpGet);

/// The error code's variant name (and payload), e.g. `HttpRequestDenied`.
fn code(e: ErrorCode) -> Error {
    Error::Failed(format!("{e:?}"))
}

/// Splits `scheme://authority/path?query`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::config(format!("`url` has no scheme: `{url}`")))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(Error::config(format!("`url` has no host: `{url}`")));
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok((scheme, authority, path))
}

fn read_body(response: &IncomingResponse) -> Result<String, Error> {
    let body = response
        .consume()
        .map_err(|()| Error::failed("response body already taken"))?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| Error::failed("body stream already taken"))?;
        while bytes.len() < MAX_BODY {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(Error::failed(format!("reading the body: {}", e.to_debug_string())));
                }
            }
        }
    }
    drop(IncomingBody::finish(body));
    bytes.truncate(MAX_BODY);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
