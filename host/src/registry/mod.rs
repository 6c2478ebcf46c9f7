//! The pipelines the server matches deliveries against: the files of `pipelines_dir`, read at
//! start, and those added through the API, kept in the store so they survive a restart (and,
//! on a shared store, reach every node: the watch reads them again when they change).
//!
//! Deliveries read an immutable snapshot ([`Active`]) and never wait for a change: adding or
//! deleting a pipeline builds a new snapshot and swaps it in. A name belongs to one pipeline;
//! the API cannot replace or delete one that comes from a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

use crate::pipeline::{self, Pipeline, StepTypes};
use crate::store::{Store, StoreError};

/// Longest pipeline text the API accepts.
pub const MAX_PIPELINE_BYTES: usize = 256 << 10;

/// The current pipelines, shared with the webhook intake.
#[derive(Clone, Default)]
pub struct Active(Arc<RwLock<Arc<[Pipeline]>>>);

impl Active {
    /// The pipelines as they are now.
    pub fn get(&self) -> Arc<[Pipeline]> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, pipelines: Arc<[Pipeline]>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = pipelines;
    }
}

/// Where a pipeline comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", rename_all = "snake_case")]
pub enum Origin {
    /// A file of `pipelines_dir`.
    File {
        /// The file.
        path: PathBuf,
    },
    /// `PUT /api/pipelines/{name}`.
    Api,
}

/// One pipeline with its origin and the text it was read from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The validated pipeline.
    pub pipeline: Pipeline,
    /// Where it comes from.
    pub origin: Origin,
    /// Its YAML text.
    pub text: String,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The text is not a valid pipeline, or its `name:` is not the one in the URL.
    #[error("{0}")]
    Invalid(String),
    /// The name belongs to a pipeline file.
    #[error("pipeline `{name}` comes from `{}`: change or delete that file instead", path.display())]
    FromFile {
        /// The pipeline's name.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// No pipeline of that name was added through the API.
    #[error("no pipeline `{0}` was added through the API")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a [`Registry::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// A new pipeline.
    Created,
    /// An API pipeline of that name was replaced.
    Replaced,
}

/// A pipeline that was skipped: the file (or `api:{name}`), its text when it could be
/// read, and the problems, positioned as `powernode validate` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file's path, or `api:{name}`.
    pub label: String,
    /// The YAML, when it could be read.
    pub text: Option<String>,
    /// Why it was skipped.
    pub error: String,
}

/// Pipeline files and API pipelines by name, with the snapshot the intake reads.
pub struct Registry {
    /// The pipeline files' folder.
    dir: PathBuf,
    /// Swapped when the plugins directory changes ([`Registry::set_step_types`]).
    step_types: RwLock<StepTypes>,
    /// Names of the configured secrets; `None` accepts any name.
    secrets: Option<BTreeSet<String>>,
    store: Arc<dyn Store>,
    /// Readers take a snapshot and never wait for a store write.
    entries: RwLock<Arc<BTreeMap<String, Entry>>>,
    /// The files (and stored API pipelines) skipped as invalid at the last read, with why.
    rejected: RwLock<Arc<Vec<Rejected>>>,
    /// Held by a change from its check to its publication, store write included.
    writer: tokio::sync::Mutex<()>,
    /// The store's API pipelines as the last reload read them: the watch reloads when the
    /// store no longer says the same (another node, or this one's API, changed them).
    stored: std::sync::Mutex<Vec<(String, String)>>,
    active: Active,
}

impl Registry {
    /// Loads the pipeline files of `dir` and the pipelines stored through the API. An invalid
    /// one, or a second one of a name already taken, is reported on stderr and skipped, so
    /// one bad file does not keep the server from starting.
    pub async fn load(
        dir: &Path,
        step_types: StepTypes,
        secrets: Option<BTreeSet<String>>,
        store: Arc<dyn Store>,
    ) -> Result<Registry, StoreError> {
        let registry = Registry {
            dir: dir.to_path_buf(),
            step_types: RwLock::new(step_types),
            secrets,
            store,
            entries: RwLock::default(),
            rejected: RwLock::default(),
            writer: tokio::sync::Mutex::new(()),
            stored: std::sync::Mutex::default(),
            active: Active::default(),
        };
        let stored = registry.store.pipelines().await?;
        registry.reload(stored).await;
        Ok(registry)
    }

    /// Publishes the pipeline files, read again, with `stored` (the API's pipelines as the
    /// store has them now); the next delivery and run see the new set.
    async fn reload(&self, stored: Vec<(String, String)>) {
        let _writer = self.writer.lock().await;
        let (mut entries, mut rejected) = self.read_files();
        *self.stored.lock().unwrap_or_else(PoisonError::into_inner) = stored.clone();
        for (name, text) in stored {
            match self.check(&api_label(&name), &text) {
                Ok(pipeline) => add(
                    &mut entries,
                    Entry {
                        pipeline,
                        origin: Origin::Api,
                        text,
                    },
                ),
                Err(e) => {
                    eprintln!("skipping invalid pipeline added through the API:\n{e}");
                    rejected.push(Rejected {
                        label: api_label(&name),
                        text: Some(text),
                        error: e,
                    });
                }
            }
        }
        self.set_rejected(rejected);
        self.publish(entries);
    }

    /// The valid pipeline files of the folder, by name (the first file of a name wins), and
    /// the invalid ones.
    fn read_files(&self) -> (BTreeMap<String, Entry>, Vec<Rejected>) {
        let mut entries = BTreeMap::new();
        let mut rejected = Vec::new();
        if !self.dir.is_dir() {
            tracing::warn!(dir = %self.dir.display(), "no pipelines directory: only pipelines added through the API run");
        }
        for path in pipeline_files(&self.dir) {
            let label = path.display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    let error = format!("cannot read `{label}`: {e}");
                    eprintln!("skipping invalid pipeline:\n{error}");
                    rejected.push(Rejected {
                        label,
                        text: None,
                        error,
                    });
                    continue;
                }
            };
            match self.check(&label, &text) {
                Ok(pipeline) => {
                    tracing::info!(file = %path.display(), pipeline = %pipeline.name, "pipeline loaded");
                    let origin = Origin::File { path };
                    add(&mut entries, Entry { pipeline, origin, text });
                }
                Err(error) => {
                    eprintln!("skipping invalid pipeline:\n{error}");
                    rejected.push(Rejected {
                        label,
                        text: Some(text),
                        error,
                    });
                }
            }
        }
        (entries, rejected)
    }

    /// The pipelines skipped as invalid at the last read, with why: the dashboard shows them.
    pub fn rejected(&self) -> Arc<Vec<Rejected>> {
        self.rejected.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_rejected(&self, rejected: Vec<Rejected>) {
        *self.rejected.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rejected);
    }

    /// The step types pipelines are checked against from now on — after a plugin was added,
    /// replaced or removed — and the pipelines checked again against them (one naming the
    /// new type loads now). A pipeline whose plugin is gone is skipped as invalid, saying so.
    pub async fn set_step_types(&self, step_types: StepTypes) -> Result<(), StoreError> {
        *self.step_types.write().unwrap_or_else(PoisonError::into_inner) = step_types;
        self.reload(self.store.pipelines().await?).await;
        Ok(())
    }

    /// Reloads the pipelines whenever the folder's listing, sizes or times change, or the
    /// store's API pipelines do (another node changed them), checking every `every`; runs
    /// until the task is dropped.
    pub async fn watch(self: Arc<Self>, every: std::time::Duration) {
        let mut seen = fingerprint(&self.dir);
        loop {
            tokio::time::sleep(every).await;
            let stored = match self.store.pipelines().await {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the API's pipelines failed; trying again");
                    continue;
                }
            };
            let now = fingerprint(&self.dir);
            let same_stored = *self.stored.lock().unwrap_or_else(PoisonError::into_inner) == stored;
            if now != seen || !same_stored {
                seen = now;
                self.reload(stored).await;
                tracing::info!(dir = %self.dir.display(), "pipelines changed: reloaded");
            }
        }
    }

    /// The snapshot the intake reads, kept current by this registry.
    pub fn active(&self) -> Active {
        self.active.clone()
    }

    /// Every pipeline, by name.
    pub fn list(&self) -> Vec<Entry> {
        self.snapshot().values().cloned().collect()
    }

    /// One pipeline.
    pub fn get(&self, name: &str) -> Option<Entry> {
        self.snapshot().get(name).cloned()
    }

    /// Validates `text` as the pipeline `name` and stores it, durably, before it takes effect.
    pub async fn put(&self, name: &str, text: &str) -> Result<Put, RegistryError> {
        if text.len() > MAX_PIPELINE_BYTES {
            return Err(RegistryError::Invalid(format!(
                "the pipeline is {} bytes; at most {MAX_PIPELINE_BYTES} are accepted",
                text.len()
            )));
        }
        let pipeline = self.check(&api_label(name), text).map_err(RegistryError::Invalid)?;
        if pipeline.name != name {
            return Err(RegistryError::Invalid(format!(
                "the pipeline's `name:` is `{}` but the URL says `{name}`: they must be the same",
                pipeline.name
            )));
        }
        let _writer = self.writer.lock().await;
        let mut entries = BTreeMap::clone(&self.snapshot());
        let put = match entries.get(name).map(|e| &e.origin) {
            Some(Origin::File { path }) => {
                return Err(RegistryError::FromFile {
                    name: name.into(),
                    path: path.clone(),
                });
            }
            Some(Origin::Api) => Put::Replaced,
            None => Put::Created,
        };
        self.store.put_pipeline(name, text).await?;
        let entry = Entry {
            pipeline,
            origin: Origin::Api,
            text: text.into(),
        };
        entries.insert(name.into(), entry);
        self.publish(entries);
        Ok(put)
    }

    /// Deletes a pipeline added through the API, also one skipped at start because it no
    /// longer validates.
    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let _writer = self.writer.lock().await;
        let mut entries = BTreeMap::clone(&self.snapshot());
        if let Some(Entry {
            origin: Origin::File { path },
            ..
        }) = entries.get(name)
        {
            return Err(RegistryError::FromFile {
                name: name.into(),
                path: path.clone(),
            });
        }
        if !self.store.delete_pipeline(name).await? {
            return Err(RegistryError::NotFound(name.into()));
        }
        entries.remove(name);
        self.publish(entries);
        Ok(())
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn publish(&self, entries: BTreeMap<String, Entry>) {
        self.active.set(entries.values().map(|e| e.pipeline.clone()).collect());
        *self.entries.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(entries);
    }

    fn check(&self, label: &str, text: &str) -> Result<Pipeline, String> {
        let is_secret = |name: &str| self.secrets.as_ref().is_some_and(|s| s.contains(name));
        let is_secret: Option<&dyn Fn(&str) -> bool> = self.secrets.is_some().then_some(&is_secret);
        let step_types = self.step_types.read().unwrap_or_else(PoisonError::into_inner).clone();
        pipeline::check(label, text, &step_types, is_secret).map_err(|d| d.to_string())
    }
}

/// What the pipeline files look like now: path, size and modification time of each.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    pipeline_files(dir)
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, size, modified)
        })
        .collect()
}

/// The name diagnostics of an API pipeline carry in place of a file name.
fn api_label(name: &str) -> String {
    format!("api:{name}")
}

fn add(entries: &mut BTreeMap<String, Entry>, entry: Entry) {
    let name = entry.pipeline.name.clone();
    match entries.get(&name) {
        Some(first) => eprintln!(
            "skipping pipeline `{name}` from {}: the name is already taken by {}",
            describe(&entry.origin),
            describe(&first.origin)
        ),
        None => {
            entries.insert(name, entry);
        }
    }
}

fn describe(origin: &Origin) -> String {
    match origin {
        Origin::File { path } => format!("`{}`", path.display()),
        Origin::Api => "a pipeline added through the API".into(),
    }
}

/// The `*.yml` and `*.yaml` files of `dir`, sorted; none when it does not exist.
/// The pipeline files of `dir`, sorted; none when there is no such folder (the watch asks
/// every two seconds, so only [`Registry::read_files`] says so).
fn pipeline_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests;
