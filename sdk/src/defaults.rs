//! Defaults and builders for the run's trigger, repository and context, so a test sets only
//! the fields it cares about instead of all seventeen of a [`Trigger`].

use crate::{Context, Repository, Trigger};

impl Default for Trigger {
    /// A manual run, as `powernode run` without `--event` gives: every field empty.
    fn default() -> Self {
        Trigger {
            event: "manual".into(),
            action: None,
            git_ref: None,
            before: None,
            after: None,
            head_sha: None,
            head_branch: None,
            base_sha: None,
            base_branch: None,
            number: None,
            title: None,
            body: None,
            comment_body: None,
            comment_id: None,
            sender: None,
            is_pull_request: false,
            is_fork: false,
        }
    }
}

impl Trigger {
    /// A push of branch `branch` whose head is `sha`.
    pub fn push(branch: &str, sha: &str) -> Self {
        Trigger {
            event: "push".into(),
            git_ref: Some(format!("refs/heads/{branch}")),
            after: Some(sha.into()),
            head_sha: Some(sha.into()),
            head_branch: Some(branch.into()),
            ..Trigger::default()
        }
    }

    /// Pull request `number` (action `opened`) from `head_branch` into `base_branch`, not from a fork.
    pub fn pull_request(number: u64, head_branch: &str, base_branch: &str) -> Self {
        Trigger {
            event: "pull_request".into(),
            action: Some("opened".into()),
            head_branch: Some(head_branch.into()),
            base_branch: Some(base_branch.into()),
            number: Some(number),
            is_pull_request: true,
            ..Trigger::default()
        }
    }

    /// This trigger with `head_sha` set.
    pub fn with_head_sha(mut self, sha: &str) -> Self {
        self.head_sha = Some(sha.into());
        self
    }

    /// This trigger with `sender` set.
    pub fn with_sender(mut self, sender: &str) -> Self {
        self.sender = Some(sender.into());
        self
    }
}

impl Default for Repository {
    /// No repository, as a manual run without a forge has: every field empty.
    fn default() -> Self {
        Repository {
            provider: String::new(),
            full_name: String::new(),
            default_branch: String::new(),
            clone_url: String::new(),
        }
    }
}

impl Repository {
    /// Repository `full_name` (`owner/name`) on `provider` (`github`, `gitea`, `gitlab`),
    /// default branch `main`.
    pub fn new(provider: &str, full_name: &str) -> Self {
        Repository {
            provider: provider.into(),
            full_name: full_name.into(),
            default_branch: "main".into(),
            clone_url: String::new(),
        }
    }
}

impl<C> Context<C> {
    /// A manual run's context with this config.
    pub fn new(config: C) -> Self {
        Context {
            run_id: String::new(),
            pipeline: String::new(),
            step: String::new(),
            repository: Repository::default(),
            trigger: Trigger::default(),
            config,
        }
    }

    /// This context with `trigger`.
    pub fn with_trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// This context with `repository`.
    pub fn with_repository(mut self, repository: Repository) -> Self {
        self.repository = repository;
        self
    }
}
