//! Shared setup for the agent's tests: a [`Session`] built directly (no binary) against the testkit's scripted
//! model, with a temporary store and a temporary granted folder, its events collected as it runs.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use errand_agent::{Event, EventMsg, Outcome, Session, SessionOptions};
use errand_plugins::Plugin;
use errand_sandbox::{GrantMode, Grants};
use errand_store::Store;
use errand_testkit::{MockLlm, Script, Turn};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// A session over a temporary granted folder, talking to a scripted model.
pub struct TestSession {
    /// The scripted model; check it with `assert_clean` once the script is played.
    pub mock: MockLlm,
    /// The session's store.
    pub store: Arc<Store>,
    /// The session under test.
    pub session: Session,
    sender: UnboundedSender<Event>,
    events: UnboundedReceiver<Event>,
    folder: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl TestSession {
    /// A session (plan mode off, no approver, file tools in this process) whose model plays `turns`.
    pub async fn start(turns: Vec<Turn>) -> TestSession {
        Self::start_with(turns, |_| {}).await
    }

    /// As [`TestSession::start`], with the folder prepared by `prepare` before the session reads it.
    pub async fn start_with(turns: Vec<Turn>, prepare: impl FnOnce(&Path)) -> TestSession {
        Self::start_configured(turns, prepare, |_, _| {}).await
    }

    /// As [`TestSession::start_with`], with the options changed by `configure`, which gets the prepared folder.
    pub async fn start_configured(
        turns: Vec<Turn>,
        prepare: impl FnOnce(&Path),
        configure: impl FnOnce(&mut SessionOptions, &Path),
    ) -> TestSession {
        Self::start_with_script(Script::new(turns), prepare, configure).await
    }

    /// As [`TestSession::start_configured`], with a whole script (standing replies, latency).
    pub async fn start_with_script(
        script: Script,
        prepare: impl FnOnce(&Path),
        configure: impl FnOnce(&mut SessionOptions, &Path),
    ) -> TestSession {
        let mock = MockLlm::start(script).await.expect("the scripted model starts");
        let data = tempfile::tempdir().unwrap();
        let folder = tempfile::tempdir().unwrap();
        prepare(folder.path());
        let store = Arc::new(Store::open(&data.path().join("errand.db")).unwrap());
        let provider = errand_model::connect(&errand_model::ProviderSettings {
            base_url: mock.url(),
            api_key: Some("test".into()),
            ..errand_model::ProviderSettings::default()
        })
        .unwrap();
        let grants = Grants::new(vec![(folder.path().to_path_buf(), GrantMode::ReadWrite)]).unwrap();
        let mut options = options();
        configure(&mut options, folder.path());
        let mut session = Session::create(store.clone(), provider.into(), grants, options, "the task").unwrap();
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        session.subscribe(sender.clone());
        TestSession { mock, store, session, sender, events, folder, data }
    }

    /// The store's database file, for a second handle on it (another process's view).
    pub fn database(&self) -> PathBuf {
        self.data.path().join("errand.db")
    }

    /// Replaces the session with the same one reopened from the store, as `errand resume` does.
    pub fn resume(&mut self) {
        let provider = errand_model::connect(&errand_model::ProviderSettings {
            base_url: self.mock.url(),
            api_key: Some("test".into()),
            ..errand_model::ProviderSettings::default()
        })
        .unwrap();
        let id = self.session.id().to_string();
        let mut session = Session::resume(self.store.clone(), provider.into(), &id, options()).unwrap();
        session.subscribe(self.sender.clone());
        self.session = session;
    }

    /// The granted folder, as the session resolves paths in it.
    pub fn folder(&self) -> PathBuf {
        self.folder.path().canonicalize().unwrap()
    }

    /// Runs `task` to its end and returns the outcome with the events the run delivered.
    pub async fn run(&mut self, task: &str) -> (Outcome, Vec<EventMsg>) {
        self.run_until(task, &CancellationToken::new()).await
    }

    /// Runs `task` until it ends or `cancel` fires, and returns the outcome with the events delivered.
    pub async fn run_until(&mut self, task: &str, cancel: &CancellationToken) -> (Outcome, Vec<EventMsg>) {
        let outcome = self.session.run(task, cancel).await;
        let mut events = Vec::new();
        // Every event is sent before `run` returns.
        while let Ok(event) = self.events.try_recv() {
            events.push(event.msg);
        }
        (outcome, events)
    }

    /// Runs `task`, cancelling it through its token as soon as an event matches `stop`, and returns the outcome
    /// with every event delivered.
    pub async fn run_cancelling_at(
        &mut self,
        task: &str,
        stop: impl Fn(&EventMsg) -> bool,
    ) -> (Outcome, Vec<EventMsg>) {
        let cancel = CancellationToken::new();
        let run = self.session.run(task, &cancel);
        tokio::pin!(run);
        let mut events = Vec::new();
        loop {
            tokio::select! {
                outcome = &mut run => {
                    while let Ok(event) = self.events.try_recv() {
                        events.push(event.msg);
                    }
                    return (outcome, events);
                }
                Some(event) = self.events.recv() => {
                    if stop(&event.msg) {
                        cancel.cancel();
                    }
                    events.push(event.msg);
                }
            }
        }
    }
}

/// The options every test session runs with: plan mode off, no approver.
fn options() -> SessionOptions {
    SessionOptions { plan_mode: false, ..SessionOptions::new("anthropic", "claude-sonnet-4-5") }
}

/// The kinds of `events`, in order.
pub fn kinds(events: &[EventMsg]) -> Vec<&'static str> {
    events.iter().map(EventMsg::kind).collect()
}

/// Writes a plugin named `name` with `files` (paths inside the plugin) under `folder`, and loads it.
pub fn plugin(folder: &Path, name: &str, files: &[(&str, &str)]) -> Plugin {
    let root = errand_testkit::fixtures::write_plugin(folder, name, files);
    let plugin = errand_plugins::load_plugin(&root).unwrap();
    assert!(plugin.warnings.is_empty(), "{:?}", plugin.warnings);
    plugin
}
