//! `[store]`: the embedded default, or one PostgreSQL database that several nodes share.

use std::path::PathBuf;

use serde::Deserialize;

use super::pg::PgConfig;
use crate::secret::Secret;

/// Which backend keeps the state the nodes of a deployment share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// sled and the webhook inbox under `data_dir`: one node.
    #[default]
    Embedded,
    /// A PostgreSQL database: any number of nodes.
    Postgres,
}

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (default) or `postgres`.
    pub kind: StoreKind,
    /// For `postgres`: `postgres://user:password@host:port/database`, usually
    /// `"${DATABASE_URL}"`.
    pub url: Option<Secret>,
    /// For `postgres`: connections in this node's pool.
    pub pool_size: u32,
    /// For `postgres`: longest one statement may run, in milliseconds.
    pub statement_timeout_ms: u64,
    /// `[store.artifacts]`: where artifact contents are kept.
    pub artifacts: ArtifactsConfig,
    /// For `postgres`: seconds a node's hold on a running run lasts without renewal (it
    /// renews it while the run goes on); a run of a node that died is taken over after this.
    pub lease_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            url: None,
            pool_size: 16,
            statement_timeout_ms: 30_000,
            artifacts: ArtifactsConfig::default(),
            lease_secs: 30,
        }
    }
}

impl StoreConfig {
    /// What is wrong with the section, if anything.
    pub fn check(&self) -> Result<(), String> {
        match (self.kind, &self.url) {
            (StoreKind::Postgres, None) => Err(
                "[store] kind = \"postgres\" needs `url = \"${DATABASE_URL}\"` (postgres://user:password@host/db)"
                    .into(),
            ),
            (StoreKind::Postgres, Some(url)) if !url.expose().starts_with("postgres") => {
                Err("[store] url must start with postgres:// or postgresql:// (the PostgreSQL connection URL)".into())
            }
            (StoreKind::Embedded, Some(_)) => {
                Err("[store] url is only for kind = \"postgres\"; add that line, or remove the url".into())
            }
            _ if self.pool_size == 0 => Err("[store] pool_size must be at least 1".into()),
            _ if self.lease_secs < 2 => Err("[store] lease_secs must be at least 2".into()),
            _ => self.artifacts.check(),
        }
    }

    /// The connection settings when the kind is `postgres`.
    pub fn postgres(&self) -> Option<PgConfig> {
        let url = self.url.as_ref().filter(|_| self.kind == StoreKind::Postgres)?;
        Some(PgConfig {
            url: url.expose().to_string(),
            pool_size: self.pool_size,
            statement_timeout_ms: self.statement_timeout_ms,
        })
    }
}

/// Where artifact contents are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactsKind {
    /// A folder: `data_dir/artifacts`, or `dir`.
    #[default]
    Local,
    /// A bucket of S3 or of an S3-compatible server (MinIO, Ceph, Garage, R2...).
    S3,
}

/// The `[store.artifacts]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactsConfig {
    /// `local` (default) or `s3`.
    pub kind: ArtifactsKind,
    /// For `local`: the folder; default `data_dir/artifacts`. Several nodes need one folder
    /// they all mount, or `s3`.
    pub dir: Option<PathBuf>,
    /// For `s3`: the bucket, which must exist.
    pub bucket: Option<String>,
    /// For `s3`: the bucket's region; default `us-east-1`.
    pub region: Option<String>,
    /// For `s3`: the server of an S3-compatible store, `https://host:port`; default AWS.
    pub endpoint: Option<String>,
    /// For `s3`: a folder within the bucket, so one bucket can serve several deployments.
    pub prefix: Option<String>,
    /// For `s3`: the access key id, usually `"${S3_ACCESS_KEY_ID}"`.
    pub access_key_id: Option<Secret>,
    /// For `s3`: the secret access key, usually `"${S3_SECRET_ACCESS_KEY}"`.
    pub secret_access_key: Option<Secret>,
    /// For `s3`: lets `endpoint` be `http://`, for a server on loopback or a network you
    /// trust; otherwise keys and artifacts would cross the network in clear.
    pub allow_http: bool,
}

/// The settings of an `s3` artifact store, checked.
#[derive(Clone)]
pub(crate) struct S3Settings {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub prefix: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub allow_http: bool,
}

impl ArtifactsConfig {
    /// What is wrong with the section, if anything.
    fn check(&self) -> Result<(), String> {
        match self.kind {
            ArtifactsKind::Local => {
                let s3_only = [
                    ("bucket", self.bucket.is_some()),
                    ("region", self.region.is_some()),
                    ("endpoint", self.endpoint.is_some()),
                    ("prefix", self.prefix.is_some()),
                    ("access_key_id", self.access_key_id.is_some()),
                    ("secret_access_key", self.secret_access_key.is_some()),
                    ("allow_http", self.allow_http),
                ];
                match s3_only.iter().find(|(_, set)| *set) {
                    Some((key, _)) => Err(format!(
                        "[store.artifacts] {key} is only for kind = \"s3\"; add that line, or remove {key}"
                    )),
                    None => Ok(()),
                }
            }
            ArtifactsKind::S3 if self.dir.is_some() => Err(
                "[store.artifacts] dir is only for kind = \"local\"; an s3 store keeps artifacts in `bucket`".into(),
            ),
            ArtifactsKind::S3 => self.s3().map(drop),
        }
    }

    /// The settings of kind `s3`, or what is wrong with them.
    pub(crate) fn s3(&self) -> Result<S3Settings, String> {
        let bucket = self
            .bucket
            .clone()
            .filter(|b| !b.trim().is_empty())
            .ok_or("[store.artifacts] kind = \"s3\" needs `bucket = \"...\"`, a bucket that exists")?;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(format!(
                "[store.artifacts] bucket `{bucket}` is not a bucket name: 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit"
            ));
        }
        let (Some(access_key_id), Some(secret_access_key)) = (&self.access_key_id, &self.secret_access_key) else {
            return Err("[store.artifacts] kind = \"s3\" needs `access_key_id = \"${S3_ACCESS_KEY_ID}\"` and `secret_access_key = \"${S3_SECRET_ACCESS_KEY}\"`".into());
        };
        if let Some(endpoint) = &self.endpoint {
            match endpoint.split_once("://") {
                Some(("https", rest)) | Some(("http", rest)) if !rest.is_empty() => {}
                _ => {
                    return Err(format!(
                        "[store.artifacts] endpoint `{endpoint}` must be a URL like https://s3.example.com:9000"
                    ));
                }
            }
            if endpoint.starts_with("http://") && !self.allow_http {
                return Err(format!(
                    "[store.artifacts] endpoint `{endpoint}` is plain http: keys and artifacts would cross the network in clear. Use https, or set allow_http = true for loopback or a network you trust"
                ));
            }
        }
        let prefix = self.prefix.clone().filter(|p| !p.is_empty());
        if let Some(prefix) = &prefix
            && (prefix.starts_with('/') || prefix.split('/').any(|part| part == ".." || part == "."))
        {
            return Err(format!(
                "[store.artifacts] prefix `{prefix}` must be a relative folder within the bucket, without `.` or `..`"
            ));
        }
        Ok(S3Settings {
            bucket,
            region: self.region.clone().unwrap_or_else(|| "us-east-1".into()),
            endpoint: self.endpoint.clone(),
            prefix,
            access_key_id: access_key_id.expose().to_string(),
            secret_access_key: secret_access_key.expose().to_string(),
            allow_http: self.allow_http,
        })
    }
}
