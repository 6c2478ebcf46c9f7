//! Webhook intake, the service behind `POST /webhooks/{source}`: detect the forge, verify the
//! signature over the raw bytes, normalize, drop our own bot's events, match pipelines, and
//! store the delivery with its enqueued runs durably before answering. A redelivery gets
//! the first answer back and starts nothing. A GitHub "Re-run" matches no trigger: it
//! enqueues again the earlier runs it names ([`crate::rerun`]). No HTTP types beyond the
//! header map.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::config::SourceConfig;
use crate::pipeline::EventFacts;
use crate::provider::{BotLogin, ForgeKind};
use crate::registry::Active;
use crate::secret::Secret;
use crate::store::StoreError;
use crate::store::deliveries::Deliveries;
use crate::store::inbox::{Accepted, Answer, EnqueuedRun, NewDelivery};
use crate::store::runs::RunStore;
use crate::webhook::{self, Event, EventKind, Outcome, Provider, SignatureError};

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// No `[[sources]]` entry has this id.
    #[error("unknown source `{0}`: no [[sources]] entry has this id")]
    UnknownSource(String),
    /// No forge's event header.
    #[error("not a webhook delivery: {0}")]
    NotAWebhook(String),
    /// The headers say another forge than the source is configured for.
    #[error("source `{source_id}` is configured as {expected}, but this delivery comes from {got}")]
    WrongForge {
        /// The source id.
        source_id: String,
        /// The configured kind.
        expected: &'static str,
        /// The detected forge.
        got: &'static str,
    },
    /// Missing or wrong signature.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The body is not the JSON the forge sends.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The delivery could not be stored.
    #[error("storing the delivery failed: {0}")]
    Store(StoreError),
    /// The runs a rerun names could not be read.
    #[error("reading the runs to run again failed: {0}")]
    Runs(StoreError),
}

/// The answer to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

struct Source {
    kind: ForgeKind,
    secret: Option<Secret>,
    bot_login: Option<BotLogin>,
}

/// Sources, pipelines and the durable delivery store.
pub struct Intake {
    sources: BTreeMap<String, Source>,
    pipelines: Active,
    deliveries: Arc<dyn Deliveries>,
    stored: Arc<Notify>,
    /// Where earlier runs are found for a rerun; without it, reruns are ignored.
    runs: Option<Arc<dyn RunStore>>,
}

impl Intake {
    /// Intake for `sources`, starting runs of the `pipelines` current at each delivery,
    /// storing into `deliveries`.
    /// A source's events are dropped when sent by its `bot_login`; without one (`powernode
    /// serve` fills it in from the forge when it can), nothing is dropped as our own.
    pub fn new(sources: &[SourceConfig], pipelines: Active, deliveries: Arc<dyn Deliveries>) -> Self {
        let sources = sources
            .iter()
            .map(|s| {
                let bot_login = s.bot_login.as_deref().and_then(BotLogin::new);
                let source = Source { kind: s.kind, secret: s.webhook_secret.clone(), bot_login };
                if source.secret.is_none() {
                    tracing::warn!(source = %s.id, "no webhook_secret: deliveries to this source are not authenticated");
                }
                (s.id.clone(), source)
            })
            .collect();
        Intake {
            sources,
            pipelines,
            deliveries,
            stored: Arc::new(Notify::new()),
            runs: None,
        }
    }

    /// The intake, finding in `runs` the earlier runs a GitHub "Re-run" names.
    pub fn with_runs(mut self, runs: Arc<dyn RunStore>) -> Self {
        self.runs = Some(runs);
        self
    }

    /// Notified after each new delivery is stored, so the scheduler queues its runs.
    pub fn stored(&self) -> Arc<Notify> {
        self.stored.clone()
    }

    /// Whether a `[[sources]]` entry has this id.
    pub fn has_source(&self, id: &str) -> bool {
        self.sources.contains_key(id)
    }

    /// Where deliveries are stored.
    pub fn deliveries(&self) -> &Arc<dyn Deliveries> {
        &self.deliveries
    }

    /// Handles one delivery to `/webhooks/{source_id}`.
    pub async fn receive(&self, source_id: &str, headers: &HeaderMap, body: &[u8]) -> Result<Reply, IntakeError> {
        let source = self
            .sources
            .get(source_id)
            .ok_or_else(|| IntakeError::UnknownSource(source_id.into()))?;
        let provider = webhook::detect(headers).ok_or_else(|| {
            IntakeError::NotAWebhook(
                "no X-GitHub-Event, X-Gitea-Event, X-Forgejo-Event or X-Gitlab-Event header".into(),
            )
        })?;
        if !serves(source.kind, provider) {
            return Err(IntakeError::WrongForge {
                source_id: source_id.into(),
                expected: source.kind.as_str(),
                got: provider.as_str(),
            });
        }
        webhook::verify(provider, headers, body, source.secret.as_ref().map(Secret::expose))?;
        let event =
            match webhook::normalize(provider, headers, body).map_err(|e| IntakeError::Malformed(e.to_string()))? {
                Outcome::Ignored { reason } => return Ok(ignored(reason)),
                Outcome::Event(event) => event,
            };
        if let Some(bot) = &source.bot_login
            && bot.is(&event.sender)
        {
            return Ok(ignored(format!("sent by our own bot account `{bot}`")));
        }
        // The signature is verified: from here on only the body that may be kept at rest is
        // used (old Gitea's in-body secret removed). The removal is deterministic, so a
        // redelivery still maps to the same stored body and id; and the id never digests the
        // secret, which would let a weak one be guessed offline from the stored body.
        let stored_body = webhook::body_to_store(provider, body).into_owned();
        let delivery_id = event.delivery_id.clone().unwrap_or_else(|| {
            // Without a delivery id, the body itself identifies a redelivery.
            format!("sha256:{}", hex::encode(Sha256::digest(&stored_body)))
        });
        let runs: Vec<EnqueuedRun> = if event.event == EventKind::Rerun {
            match self.reruns(source_id, &event).await? {
                Ok(runs) => runs,
                Err(reason) => return Ok(ignored(reason)),
            }
        } else {
            let facts = facts(&event);
            self.pipelines
                .get()
                .iter()
                .filter(|p| p.triggered_by(&facts))
                .map(|p| EnqueuedRun {
                    run_id: uuid::Uuid::now_v7().to_string(),
                    pipeline: p.name.clone(),
                })
                .collect()
        };
        let answer = Answer {
            status: 202,
            body: json!({
                "status": "accepted",
                "delivery": delivery_id,
                "event": event.event.as_str(),
                "runs": runs.iter().map(|r| json!({"id": r.run_id, "pipeline": r.pipeline})).collect::<Vec<_>>(),
            }),
        };
        let delivery = NewDelivery {
            source: source_id.into(),
            delivery_id,
            event_json: serde_json::to_vec(&event).expect("events serialize"),
            raw_body: stored_body,
            answer: answer.clone(),
            runs,
        };
        let answer = match self.deliveries.accept(delivery).await.map_err(IntakeError::Store)? {
            Accepted::New { .. } => {
                self.stored.notify_one();
                answer
            }
            Accepted::Duplicate { answer, .. } => answer,
        };
        Ok(Reply {
            status: answer.status,
            body: answer.body,
        })
    }
}

impl Intake {
    /// New runs of the pipelines of the earlier runs a rerun names (their triggers are
    /// copied when the feeder queues them), or why there is nothing to run again.
    async fn reruns(&self, source_id: &str, event: &Event) -> Result<Result<Vec<EnqueuedRun>, String>, IntakeError> {
        let (Some(runs), Some(request)) = (&self.runs, &event.rerun) else {
            return Ok(Err("reruns are not taken here (no run store)".into()));
        };
        let earlier = crate::rerun::earlier_runs(runs.as_ref(), source_id, event, &[])
            .await
            .map_err(IntakeError::Runs)?;
        if earlier.is_empty() {
            return Ok(Err(format!(
                "{} names no earlier run of source `{source_id}` to run again",
                crate::rerun::describe(request, event)
            )));
        }
        Ok(Ok(earlier
            .iter()
            .map(|old| EnqueuedRun {
                run_id: uuid::Uuid::now_v7().to_string(),
                pipeline: old.pipeline.clone(),
            })
            .collect()))
    }
}
fn ignored(reason: String) -> Reply {
    Reply {
        status: 202,
        body: json!({ "status": "ignored", "reason": reason }),
    }
}

/// Gitea and Forgejo share one API and Forgejo sends Gitea's headers too, so a source of
/// either kind takes deliveries from both.
fn serves(kind: ForgeKind, provider: Provider) -> bool {
    matches!(
        (kind, provider),
        (ForgeKind::Github, Provider::Github)
            | (ForgeKind::Gitlab, Provider::Gitlab)
            | (
                ForgeKind::Gitea | ForgeKind::Forgejo,
                Provider::Gitea | Provider::Forgejo
            )
    )
}

/// What trigger matching needs from an event: the pushed branch or tag for pushes and tags,
/// the base branch for pull requests and comments.
fn facts(e: &Event) -> EventFacts<'_> {
    let branch = match e.event {
        EventKind::Push => e.git_ref.as_deref().and_then(|r| r.strip_prefix("refs/heads/")),
        EventKind::Tag => e.git_ref.as_deref().and_then(|r| r.strip_prefix("refs/tags/")),
        _ => e.base_branch.as_deref(),
    };
    EventFacts {
        kind: e.event.as_str(),
        action: e.action.map(|a| a.as_str()),
        branch,
        changed_files: e.changed_files.as_deref(),
    }
}
