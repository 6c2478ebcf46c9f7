//! `?limit=&after=` for the lists that answer a JSON array (pipelines, templates, plugins, a
//! run's artifacts): items in key order, `after` starts past that key, and when more remain
//! the `Link` header gives the next page (`rel="next"`), as GitHub's API does.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::AppError;

/// Default page size of these lists.
const DEFAULT_LIMIT: usize = 100;
/// Largest page.
const MAX_LIMIT: usize = 1000;

/// One page of `items` (sorted by `key`) for `query`, and the headers that go with it;
/// `path` is the list's URL path, for the next page's link.
pub(super) fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    query: &BTreeMap<String, String>,
    path: &str,
) -> Result<(HeaderMap, Vec<T>), AppError> {
    let limit = number(query, "limit", DEFAULT_LIMIT as u64, 1..=MAX_LIMIT as u64)? as usize;
    items.sort_by(|a, b| key(a).cmp(key(b)));
    if let Some(after) = query.get("after") {
        items.retain(|item| key(item) > after.as_str());
    }
    let more = items.len() > limit;
    items.truncate(limit);
    let mut headers = HeaderMap::new();
    if more && let Some(last) = items.last() {
        let next = format!("<{path}?limit={limit}&after={}>; rel=\"next\"", url_escape(key(last)));
        if let Ok(value) = HeaderValue::from_str(&next) {
            headers.insert(header::LINK, value);
        }
    }
    Ok((headers, items))
}

/// The query parameter `name` as a number in `range`, `default` when absent; a 400 naming
/// the parameter and the range otherwise. Every list's `limit` and cursor go through here.
pub(super) fn number(
    query: &BTreeMap<String, String>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, AppError> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    text.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "`{name}` must be a number from {} to {}, got `{text}`",
                range.start(),
                range.end()
            ),
        )
    })
}

/// Percent-encodes everything but unreserved characters, for a query value.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_follow_the_key_and_link_to_the_next() {
        let items = vec!["c", "a", "d b", "b"];
        let (headers, first) = page(items.clone(), |s| s, &query(&[("limit", "2")]), "/api/x").unwrap();
        assert_eq!(first, ["a", "b"]);
        assert_eq!(headers[header::LINK], "</api/x?limit=2&after=b>; rel=\"next\"");
        let (headers, rest) = page(
            items.clone(),
            |s| s,
            &query(&[("limit", "2"), ("after", "b")]),
            "/api/x",
        )
        .unwrap();
        assert_eq!(rest, ["c", "d b"]);
        assert!(headers.get(header::LINK).is_none(), "the last page links nowhere");
        assert!(page(items, |s| s, &query(&[("limit", "0")]), "/api/x").is_err());
    }
}
