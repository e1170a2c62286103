//! The scheduler `errand serve` runs: it fires the stored schedules, each fire a normal session built by the
//! [`SessionBuilder`], exactly once however many daemons share the store.
//!
//! Exactly once comes from the store: a fire is a row keyed by (schedule, fire time), claimed in one
//! transaction with a lease the claiming daemon renews while the fire runs. Another daemon computing the same
//! fire finds the row and leaves it; a fire whose daemon died is taken over once its lease lapses, and
//! continued from its session's state (finished, waiting in the inbox, or cut off mid-run). A schedule runs
//! one fire at a time.
//!
//! Fires missed while no daemon ran (sleep, downtime) are caught up by the schedule's policy: `skip` notes
//! them in the history, `once` runs the latest of them, `all` runs each in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use errand_agent::{Session, SessionBuilder, SessionRequest, TrustQuestions};
use errand_store::{
    CatchUp, Claimed, FireClaim, FireEnd, FireRecord, FireStatus, ScheduleRecord, SessionStatus, Store,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cron::{Cron, parse_tz, read_store_time, store_time};
use crate::live::Running;

/// How late a fire may start and still count as on time; a fire later than this was missed (the machine
/// slept, or no daemon ran) and is caught up by the schedule's policy.
pub const ON_TIME: chrono::Duration = chrono::Duration::minutes(2);

/// How long a fire's claim holds without renewal [default; `ERRAND_FIRE_LEASE` sets another, in seconds].
const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How many times a failing fire is tried.
pub const TRIES: u32 = 3;

/// How long a question of a fire waits in the inbox when the schedule does not say.
pub const DEFAULT_FIRE_WAIT: Duration = Duration::from_secs(60 * 60);

/// What a schedule does besides its task and timing, stored with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleSettings {
    /// Folders granted read-write, the primary first.
    pub folders: Vec<PathBuf>,
    /// Folders granted read-only.
    pub read_only: Vec<PathBuf>,
    /// Where the task's deliverable lands (the task is told).
    pub output: Option<PathBuf>,
    /// USD per fire.
    pub max_cost: Option<f64>,
    /// Seconds a fire's question waits in the inbox before it is denied [default: an hour].
    pub wait_secs: Option<u64>,
    /// Each fire's plan goes to the inbox for approval instead of running straight away.
    pub plan: bool,
    /// A desktop notification (`notify-send`) when a fire ends.
    pub notify: bool,
    /// A URL that gets each ended fire as JSON (`POST`), when the network rules allow its host.
    pub webhook: Option<String>,
}

impl ScheduleSettings {
    /// The settings stored with `schedule`; defaults for anything unreadable.
    pub fn of(schedule: &ScheduleRecord) -> Self {
        serde_json::from_value(schedule.settings.clone()).unwrap_or_default()
    }

    /// The session a fire of `task` runs.
    pub fn request(&self) -> SessionRequest {
        SessionRequest {
            folders: self.folders.clone(),
            read_only: self.read_only.clone(),
            max_cost: self.max_cost,
            // The person approved the task when scheduling it; with `plan`, each fire's plan waits for them.
            no_plan: !self.plan,
            wait: Some(self.wait_secs.map_or(DEFAULT_FIRE_WAIT, Duration::from_secs)),
            ..SessionRequest::default()
        }
    }

    /// What the model is asked: the task, and where its deliverable goes.
    pub fn prompt(&self, task: &str) -> String {
        match &self.output {
            Some(output) => format!(
                "{task}\n\n(This is a scheduled task: nobody is watching. Put the deliverable in {}.)",
                output.display()
            ),
            None => format!("{task}\n\n(This is a scheduled task: nobody is watching.)"),
        }
    }
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum When {
    /// By a cron expression in a time zone.
    Cron(Cron, chrono_tz::Tz),
    /// Once, at an instant.
    At(DateTime<Utc>),
}

impl When {
    /// The timing of `schedule`; an error names what cannot be read.
    pub fn of(schedule: &ScheduleRecord) -> Result<Self, String> {
        match (&schedule.cron, &schedule.at) {
            (Some(cron), _) => {
                let cron = Cron::parse(cron).map_err(|error| error.to_string())?;
                Ok(When::Cron(cron, parse_tz(&schedule.tz)?))
            }
            (None, Some(at)) => read_store_time(at).map(When::At).ok_or_else(|| format!("{at:?} is not a time")),
            (None, None) => Err("it has neither a cron expression nor a time".into()),
        }
    }

    /// The first fire after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            When::Cron(cron, tz) => cron.next_after(after, *tz),
            When::At(at) => (*at > after).then_some(*at),
        }
    }

    /// Every fire after `after` up to and including `until`.
    pub fn fires_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        match self {
            When::Cron(cron, tz) => cron.fires_between(after, until, *tz),
            When::At(at) => {
                if *at > after && *at <= until {
                    vec![*at]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

/// What one look at a schedule decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The fire to run now, if any.
    pub run: Option<DateTime<Utc>>,
    /// Fires that will not run, with how they are recorded and why.
    pub unrun: Vec<(DateTime<Utc>, FireStatus, String)>,
    /// Every fire up to here has been dealt with.
    pub checked_until: DateTime<Utc>,
}

/// Decides what to do with the fires of `when` due after `checked_until` up to `now`, by `catch_up`.
pub fn decide(when: &When, catch_up: CatchUp, checked_until: DateTime<Utc>, now: DateTime<Utc>) -> Decision {
    let due = when.fires_between(checked_until, now);
    let Some(&latest) = due.last() else {
        return Decision { run: None, unrun: Vec::new(), checked_until: now };
    };
    let missed_reason = |fire: DateTime<Utc>| {
        format!("missed: no errand serve ran at {} (caught up by --catch-up {})", store_time(fire), catch_up.as_str())
    };
    let on_time = now - latest <= ON_TIME;
    match catch_up {
        CatchUp::All => Decision { run: Some(due[0]), unrun: Vec::new(), checked_until: due[0] },
        CatchUp::Once => Decision {
            run: Some(latest),
            unrun: due[..due.len() - 1]
                .iter()
                .map(|&fire| (fire, FireStatus::Skipped, format!("{}; only the latest runs", missed_reason(fire))))
                .collect(),
            checked_until: now,
        },
        CatchUp::Skip => {
            let (run, missed) = if on_time { (Some(latest), &due[..due.len() - 1]) } else { (None, &due[..]) };
            Decision {
                run,
                unrun: missed.iter().map(|&fire| (fire, FireStatus::Missed, missed_reason(fire))).collect(),
                checked_until: now,
            }
        }
    }
}

/// The time the scheduler goes by: the system's, or for tests an injected one (`ERRAND_CLOCK`).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `(clock time at the anchor, the anchor in real Unix milliseconds, speed)`.
    injected: Option<(DateTime<Utc>, i64, f64)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { injected: None }
    }

    /// `ERRAND_CLOCK=START@ANCHOR_MS*SPEED` (for tests of the scheduler: every process given the same value
    /// agrees on the time): the clock reads `START` at the real Unix time `ANCHOR_MS` and runs `SPEED` times
    /// as fast. Unset, the system clock.
    pub fn from_env() -> Result<Self, String> {
        let Ok(text) = std::env::var("ERRAND_CLOCK") else { return Ok(Self::system()) };
        let bad =
            || format!("ERRAND_CLOCK={text:?} is not START@ANCHOR_MS*SPEED (2027-01-04T07:59:00Z@1790000000000*60)");
        let (start, rest) = text.split_once('@').ok_or_else(bad)?;
        let (anchor, speed) = rest.split_once('*').ok_or_else(bad)?;
        let start = read_store_time(start).ok_or_else(bad)?;
        let anchor: i64 = anchor.parse().map_err(|_| bad())?;
        let speed: f64 = speed.parse().map_err(|_| bad())?;
        if speed <= 0.0 {
            return Err(bad());
        }
        Ok(Clock { injected: Some((start, anchor, speed)) })
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        let real = Utc::now();
        match self.injected {
            None => real,
            Some((start, anchor, speed)) => {
                let elapsed = (real.timestamp_millis() - anchor) as f64 * speed;
                start + chrono::Duration::milliseconds(elapsed as i64)
            }
        }
    }

    /// How much clock time passes in `real` time.
    pub fn span(&self, real: Duration) -> chrono::Duration {
        let speed = self.injected.map_or(1.0, |(_, _, speed)| speed);
        chrono::Duration::milliseconds((real.as_millis() as f64 * speed) as i64)
    }

    /// How much real time `span` of clock time takes.
    pub fn real(&self, span: chrono::Duration) -> Duration {
        let speed = self.injected.map_or(1.0, |(_, _, speed)| speed);
        Duration::from_millis((span.num_milliseconds().max(0) as f64 / speed) as u64)
    }
}

/// Fires schedules: one per daemon.
pub struct Scheduler {
    store: Arc<Store>,
    builder: SessionBuilder,
    running: Arc<Running>,
    clock: Clock,
    /// This daemon's name in the fires it holds.
    owner: String,
    lease: Duration,
    /// The longest the scheduler sleeps between looks.
    tick: Duration,
    /// Each schedule's timing and next fire, by id, for the version of it they were computed for.
    known: std::sync::Mutex<std::collections::HashMap<String, Known>>,
    /// What the last full look found, to skip reading while nothing can have changed.
    quiet: std::sync::Mutex<Option<Quiet>>,
    /// This daemon wrote to the store since the last look (its own writes do not change the data version).
    wrote: std::sync::atomic::AtomicBool,
}

/// The store's data version at the last full look, when the next fire is due then, and when the next look
/// must read whatever happens (that fire, or a lease that may lapse).
struct Quiet {
    version: i64,
    next_due: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

/// What a schedule's next fire depends on: cron, one-shot time, time zone, and how far it has been dealt with.
type TimingKey = (Option<String>, Option<String>, String, String);

/// A schedule's timing and next fire, with the version of the schedule they were computed for.
type Known = (TimingKey, When, Option<DateTime<Utc>>);

impl Scheduler {
    /// A scheduler for `store`, building fires with `builder` and running them among `running`.
    pub(crate) fn new(store: Arc<Store>, builder: SessionBuilder, running: Arc<Running>) -> Result<Self, String> {
        let seconds = |name: &str, default: Duration| -> Result<Duration, String> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| *seconds > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{name}={text:?} is not a number of seconds")),
            }
        };
        Ok(Scheduler {
            store,
            builder,
            running,
            clock: Clock::from_env()?,
            owner: format!("{} {:08x}", std::process::id(), fastrand::u32(..)),
            lease: seconds("ERRAND_FIRE_LEASE", DEFAULT_LEASE)?,
            tick: seconds("ERRAND_SCHEDULER_TICK", Duration::from_secs(1))?,
            known: Default::default(),
            quiet: Default::default(),
            wrote: Default::default(),
        })
    }

    /// A scheduler outside `errand serve`, for `errand schedule run` when no server runs.
    pub fn standalone(store: Arc<Store>, builder: SessionBuilder) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self::new(store, builder, Arc::<Running>::default())?))
    }

    /// Fires `schedule` now, by hand, and waits for the fire to end; `started` is told the fire's session id
    /// as soon as it has one. Returns the fire as recorded.
    pub async fn run_now(
        self: Arc<Self>,
        schedule: ScheduleRecord,
        started: impl FnOnce(&str) + Send + 'static,
    ) -> Result<FireRecord, String> {
        let fire_time = store_time(self.clock.now());
        let claimed = self.claim(&schedule.id, &fire_time, true).await?;
        if claimed == Claimed::No {
            return Err(format!("a fire of {} at {fire_time} already runs; try again in a second", schedule.id));
        }
        let id = schedule.id.clone();
        let (session_sender, session) = tokio::sync::oneshot::channel();
        let fire = tokio::spawn(self.clone().fire(schedule, fire_time.clone(), claimed, Some(session_sender)));
        // Dropped unsent when the fire ends before it has a session.
        if let Ok(session) = session.await {
            started(&session);
        }
        fire.await.map_err(|error| format!("the fire stopped: {error}"))?;
        let fires = self.store.fires(&id, 50).map_err(|error| error.to_string())?;
        fires.into_iter().find(|fire| fire.fire_time == fire_time).ok_or_else(|| {
            format!("the fire of {id} at {fire_time} left no record: was the schedule removed while it ran?")
        })
    }

    /// Tells the scheduler a schedule changed through this process's own store handle (the desk paused or
    /// resumed one), which the store's data version does not show: its next look reads them all.
    pub(crate) fn changed(&self) {
        self.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Fires `schedule` now in the background, as the desk's "run now" does; the fire's time, or an error
    /// when a fire of it at this second already runs.
    pub(crate) async fn start_now(self: Arc<Self>, schedule: ScheduleRecord) -> Result<String, String> {
        let fire_time = store_time(self.clock.now());
        let id = schedule.id.clone();
        if self.claim_and_start(schedule, fire_time.clone(), true).await {
            Ok(fire_time)
        } else {
            Err(format!("a fire of {id} at {fire_time} already runs; try again in a second"))
        }
    }

    /// Looks at the schedules until `stop`, firing what is due and taking over fires whose daemon died.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let next = match self.clone().look().await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, "the scheduler could not look at the schedules");
                    None
                }
            };
            // Sleep until the next fire is due, but look again at least every tick: schedules change.
            let now = self.clock.now();
            let sleep = next.map_or(self.tick, |next| self.clock.real(next - now).min(self.tick));
            tokio::select! {
                () = tokio::time::sleep(sleep.max(Duration::from_millis(5))) => {}
                () = stop.cancelled() => {}
            }
        }
    }

    /// One look: claims and starts what is due. Returns when the next fire is due. Reads the schedules only
    /// when something may have changed: another process wrote to the store, this daemon did, a fire came due,
    /// or a fire's lease may have lapsed.
    async fn look(self: Arc<Self>) -> Result<Option<DateTime<Utc>>, String> {
        let store = self.store.clone();
        let version = tokio::task::spawn_blocking(move || store.data_version())
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        let now = self.clock.now();
        {
            let quiet = self.quiet.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(quiet) = quiet.as_ref()
                && quiet.version == version
                && !self.wrote.swap(false, std::sync::atomic::Ordering::SeqCst)
                && quiet.until.is_none_or(|until| now < until)
            {
                return Ok(quiet.next_due);
            }
        }
        let store = self.store.clone();
        let (schedules, running) = tokio::task::spawn_blocking(move || {
            Ok::<_, errand_store::StoreError>((store.schedules()?, store.running_fires()?))
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
        let now = self.clock.now();
        let mut next_due: Option<DateTime<Utc>> = None;
        // Fires whose daemon is gone: their lease lapsed.
        for fire in running
            .iter()
            .filter(|fire| fire.lease_until.as_deref().and_then(read_store_time).is_some_and(|lease| lease < now))
        {
            if let Some(schedule) = schedules.iter().find(|schedule| schedule.id == fire.schedule_id) {
                self.clone().claim_and_start(schedule.clone(), fire.fire_time.clone(), false).await;
            }
        }
        for schedule in schedules.iter().filter(|schedule| !schedule.paused) {
            // Its timing and next fire, computed once for each version of the schedule.
            let key = (schedule.cron.clone(), schedule.at.clone(), schedule.tz.clone(), schedule.checked_until.clone());
            let (when, next) = {
                let mut known = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match known.get(&schedule.id) {
                    Some(entry) if entry.0 == key => (entry.1.clone(), entry.2),
                    _ => {
                        let when = match When::of(schedule) {
                            Ok(when) => when,
                            Err(error) => {
                                tracing::warn!(schedule = %schedule.id, %error, "a schedule cannot be read");
                                continue;
                            }
                        };
                        let Some(checked_until) = read_store_time(&schedule.checked_until) else { continue };
                        let next = when.next_after(checked_until);
                        known.insert(schedule.id.clone(), (key, when.clone(), next));
                        (when, next)
                    }
                }
            };
            if let Some(next) = next {
                next_due = Some(next_due.map_or(next, |earlier| earlier.min(next)));
            }
            // Nothing due yet, or one fire at a time: a schedule whose fire still runs waits for it.
            if next.is_none_or(|next| next > now) || running.iter().any(|fire| fire.schedule_id == schedule.id) {
                continue;
            }
            let Some(checked_until) = read_store_time(&schedule.checked_until) else { continue };
            let decision = decide(&when, schedule.catch_up, checked_until, now);
            if decision.run.is_none() && decision.unrun.is_empty() {
                continue;
            }
            let store = self.store.clone();
            let (id, unrun, until) = (schedule.id.clone(), decision.unrun.clone(), store_time(decision.checked_until));
            let now_text = store_time(now);
            let recorded = tokio::task::spawn_blocking(move || -> Result<(), errand_store::StoreError> {
                for (fire, status, reason) in unrun {
                    store.record_unrun_fire(&id, &store_time(fire), status, Some(&reason), &now_text)?;
                }
                store.advance_checked_until(&id, &until)?;
                Ok(())
            })
            .await;
            self.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Err(error) =
                recorded.map_err(|error| error.to_string()).and_then(|done| done.map_err(|error| error.to_string()))
            {
                tracing::warn!(schedule = %schedule.id, %error, "cannot record a schedule's fires");
                continue;
            }
            if let Some(fire) = decision.run {
                self.clone().claim_and_start(schedule.clone(), store_time(fire), false).await;
            }
        }
        // Until the next fire is due or a lease may lapse, with nobody writing, the next look need not read.
        let lapse = running.iter().filter_map(|fire| fire.lease_until.as_deref().and_then(read_store_time)).min();
        let until = [next_due, lapse].into_iter().flatten().min();
        *self.quiet.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Quiet { version, next_due, until });
        // Forget what was computed for schedules removed since.
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| schedules.iter().any(|schedule| &schedule.id == id));
        Ok(next_due)
    }

    /// Claims the fire and, if this daemon gets it, runs it in the background; says whether it did.
    async fn claim_and_start(self: Arc<Self>, schedule: ScheduleRecord, fire_time: String, manual: bool) -> bool {
        match self.claim(&schedule.id, &fire_time, manual).await {
            Ok(Claimed::No) => false,
            Ok(claimed) => {
                tokio::spawn(self.fire(schedule, fire_time, claimed, None));
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot claim a fire");
                false
            }
        }
    }

    /// Claims the fire of `schedule_id` at `fire_time` for this daemon, under a fresh lease.
    async fn claim(&self, schedule_id: &str, fire_time: &str, manual: bool) -> Result<Claimed, String> {
        let claim = FireClaim {
            schedule_id: schedule_id.to_string(),
            fire_time: fire_time.to_string(),
            owner: self.owner.clone(),
            lease_until: store_time(self.clock.now() + self.clock.span(self.lease)),
            now: store_time(self.clock.now()),
            manual,
        };
        let store = self.store.clone();
        let claimed = tokio::task::spawn_blocking(move || store.claim_fire(&claim)).await;
        self.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
        claimed.map_err(|error| error.to_string())?.map_err(|error| error.to_string())
    }

    /// Runs a claimed fire to its end, renewing its lease meanwhile; tries a failing one [`TRIES`] times.
    async fn fire(
        self: Arc<Self>,
        schedule: ScheduleRecord,
        fire_time: String,
        claimed: Claimed,
        session_sender: Option<tokio::sync::oneshot::Sender<String>>,
    ) {
        let settings = ScheduleSettings::of(&schedule);
        // Not the scheduler's stop: the server's shutdown stops a fire's session as it stops every other one
        // (one waiting in the inbox is left waiting), and the fire's lease then lapses for the next daemon.
        let cancel = CancellationToken::new();
        let lost = CancellationToken::new();
        let renewer = {
            let (this, schedule_id, fire_time, cancel, lost) =
                (self.clone(), schedule.id.clone(), fire_time.clone(), cancel.clone(), lost.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(this.lease / 3) => {}
                        () = cancel.cancelled() => return,
                    }
                    let until = store_time(this.clock.now() + this.clock.span(this.lease));
                    let (store, id, time, owner) =
                        (this.store.clone(), schedule_id.clone(), fire_time.clone(), this.owner.clone());
                    let renewed =
                        tokio::task::spawn_blocking(move || store.renew_fire_lease(&id, &time, &owner, &until)).await;
                    if !matches!(renewed, Ok(Ok(true))) {
                        // Another daemon holds it now: stop, so it does not run twice.
                        tracing::warn!(schedule = %schedule_id, fire = %fire_time, "lost a fire's lease; stopping it");
                        lost.cancel();
                        cancel.cancel();
                        return;
                    }
                }
            })
        };
        let ended = self.fire_attempts(&schedule, &settings, &fire_time, claimed, &cancel, session_sender).await;
        cancel.cancel();
        let _ = renewer.await;
        // Stopped with the daemon, or taken over: the fire is left to whoever holds it next.
        let Some((status, session_id, reason)) = ended else { return };
        if lost.is_cancelled() {
            return;
        }
        let store = self.store.clone();
        let cost = session_id.as_deref().and_then(|id| store.usage_totals(id).ok()).and_then(|totals| totals.cost_usd);
        let output = settings.output.as_ref().filter(|path| path.exists()).map(|path| path.display().to_string());
        let end = FireEnd {
            schedule_id: schedule.id.clone(),
            fire_time,
            owner: self.owner.clone(),
            status,
            session_id,
            cost_usd: cost,
            output,
            reason,
            now: store_time(self.clock.now()),
        };
        let report = json!({
            "schedule": end.schedule_id,
            "task": schedule.task,
            "fire_time": end.fire_time,
            "status": end.status.as_str(),
            "session": end.session_id,
            "cost_usd": end.cost_usd,
            "output": end.output,
            "reason": end.reason,
        });
        let finished = tokio::task::spawn_blocking(move || store.finish_fire(&end)).await;
        self.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(error) = finished.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
            tracing::warn!(%error, "cannot record how a fire ended");
        }
        self.notify(&settings, &report).await;
    }

    /// Tells the person a fire ended, as the schedule asks: a desktop notification, a webhook.
    async fn notify(&self, settings: &ScheduleSettings, report: &serde_json::Value) {
        let word = |key: &str| report[key].as_str().unwrap_or_default().to_string();
        if settings.notify {
            let task: String = word("task").lines().next().unwrap_or_default().chars().take(80).collect();
            let detail = match (report["output"].as_str(), report["reason"].as_str()) {
                (_, Some(reason)) => reason.to_string(),
                (Some(output), None) => format!("wrote {output}"),
                (None, None) => format!("session {}", word("session")),
            };
            let shown = tokio::process::Command::new("notify-send")
                .args(["--app-name=errand", &format!("errand: {} — {task}", word("status")), &detail])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
            if let Err(error) = shown {
                tracing::warn!(%error, "cannot show a desktop notification (is notify-send installed?)");
            }
        }
        if let Some(url) = &settings.webhook
            && let Err(error) = self.post_webhook(url, report).await
        {
            tracing::warn!(%url, %error, "the schedule's webhook was not called");
        }
    }

    /// Posts `report` to `url`, if the network rules of your configuration allow its host.
    async fn post_webhook(&self, url: &str, report: &serde_json::Value) -> Result<(), String> {
        let host = webhook_host(url)?;
        let policy = self.builder.network_policy().map_err(|error| error.to_string())?;
        if !policy.allows_host(&host) {
            return Err(format!("no network rule of yours allows {host}"));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|error| error.to_string())?;
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(report.to_string())
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Err(format!("it answered {}", response.status()));
        }
        Ok(())
    }

    /// The fire's session, first, continued, or again after a failure; how it ended (`None`: stopped with
    /// the daemon or taken over, left running for whoever holds it next).
    async fn fire_attempts(
        &self,
        schedule: &ScheduleRecord,
        settings: &ScheduleSettings,
        fire_time: &str,
        claimed: Claimed,
        cancel: &CancellationToken,
        mut session_sender: Option<tokio::sync::oneshot::Sender<String>>,
    ) -> Option<(FireStatus, Option<String>, Option<String>)> {
        let mut session_id = match &claimed {
            Claimed::TakenOver { session_id, .. } => session_id.clone(),
            _ => None,
        };
        let mut failure: Option<String> = None;
        for attempt in 1..=TRIES {
            let (session, input) = match session_id.clone() {
                None => match self.create(schedule, settings, fire_time).await {
                    Ok(session) => {
                        let prompt = settings.prompt(&schedule.task);
                        (session, Some(prompt))
                    }
                    Err(error) => {
                        return Some((FireStatus::Failed, None, Some(format!("the fire could not start: {error}"))));
                    }
                },
                Some(id) => {
                    let record = match self.store.session(&id) {
                        Ok(record) => record,
                        // Its session is gone (removed by hand): the fire starts over rather than lapse forever.
                        Err(error) => {
                            tracing::warn!(session = %id, %error, "a fire's session cannot be read; starting it anew");
                            session_id = None;
                            continue;
                        }
                    };
                    match record.status {
                        SessionStatus::Done => return Some((FireStatus::Done, Some(id.clone()), None)),
                        // Another session of this server already continues it (taken over at startup).
                        _ if self.running.get(&id).is_some() => {
                            self.running.wait_until_ended(&id).await;
                            continue;
                        }
                        _ => {}
                    }
                    let input = match (&failure, record.status) {
                        (Some(reason), _) => Some(format!("The last try failed ({reason}). Go on with the task.")),
                        (None, SessionStatus::Waiting | SessionStatus::Running) => None,
                        (None, _) => Some("Go on with the scheduled task where it stopped.".to_string()),
                    };
                    match self.resume(&id).await {
                        Ok(session) => (session, input),
                        Err(error) => return Some((FireStatus::Failed, Some(id.clone()), Some(error))),
                    }
                }
            };
            let id = session.id().to_string();
            session_id = Some(id.clone());
            if let Some(sender) = session_sender.take() {
                let _ = sender.send(id.clone());
            }
            let outcome = self.running.run_here(session, input, cancel.clone()).await;
            if cancel.is_cancelled() {
                return None;
            }
            match outcome.status {
                SessionStatus::Done => return Some((FireStatus::Done, Some(id), None)),
                SessionStatus::Failed if attempt < TRIES => {
                    failure = outcome.reason.clone();
                    let backoff = Duration::from_secs(5 * 4u64.pow(attempt - 1)).min(self.lease);
                    tokio::select! {
                        () = tokio::time::sleep(self.clock.real(self.clock.span(backoff)).min(backoff)) => {}
                        () = cancel.cancelled() => return None,
                    }
                }
                status => {
                    let reason = outcome.reason.unwrap_or_else(|| status.as_str().to_string());
                    let reason = if status == SessionStatus::Failed {
                        format!("failed after {TRIES} tries: {reason}")
                    } else {
                        reason
                    };
                    return Some((FireStatus::Failed, Some(id), Some(reason)));
                }
            }
        }
        Some((FireStatus::Failed, session_id, failure))
    }

    async fn create(
        &self,
        schedule: &ScheduleRecord,
        settings: &ScheduleSettings,
        fire_time: &str,
    ) -> Result<Session, String> {
        let (builder, store, request) = (self.builder.clone(), self.store.clone(), settings.request());
        let task = settings.prompt(&schedule.task);
        let session = tokio::task::spawn_blocking(move || builder.create(store, &task, &request, TrustQuestions::Skip))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        let (store, schedule_id, time, owner, id) = (
            self.store.clone(),
            schedule.id.clone(),
            fire_time.to_string(),
            self.owner.clone(),
            session.id().to_string(),
        );
        let _ = tokio::task::spawn_blocking(move || store.set_fire_session(&schedule_id, &time, &owner, &id)).await;
        Ok(session)
    }

    async fn resume(&self, id: &str) -> Result<Session, String> {
        let (builder, store, id) = (self.builder.clone(), self.store.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            builder.resume(store, &id, &SessionRequest::default(), TrustQuestions::Skip)
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("the fire's session could not be continued: {error}"))
    }
}

/// The host of a webhook URL (http or https).
pub fn webhook_host(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("{url:?} is not a URL ({error})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http or https URL"));
    }
    parsed.host_str().map(str::to_string).ok_or_else(|| format!("{url:?} names no host"))
}

/// The next `count` fires of `schedule` after now (none for a paused one).
pub fn next_fires(schedule: &ScheduleRecord, count: usize) -> Vec<DateTime<Utc>> {
    let Ok(when) = When::of(schedule) else { return Vec::new() };
    if schedule.paused {
        return Vec::new();
    }
    let now = Clock::from_env().unwrap_or_else(|_| Clock::system()).now();
    let start = read_store_time(&schedule.checked_until).unwrap_or(now).max(now);
    let mut fires = Vec::new();
    let mut cursor = start;
    while fires.len() < count {
        let Some(next) = when.next_after(cursor) else { break };
        fires.push(next);
        cursor = next;
    }
    fires
}

/// A schedule as `--json` and the API show it: its record with its next `count` fires (RFC 3339 UTC).
pub fn describe_schedule(schedule: &ScheduleRecord, count: usize) -> serde_json::Value {
    let mut value = serde_json::to_value(schedule).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        let fires: Vec<String> = next_fires(schedule, count).into_iter().map(store_time).collect();
        object.insert("next_fires".into(), json!(fires));
    }
    value
}

/// The history line of a fire, for the terminal.
pub fn describe_fire(fire: &FireRecord) -> String {
    let mut line = format!("{}  {}", fire.fire_time, fire.status.as_str());
    if let Some(session) = &fire.session_id {
        line.push_str(&format!("  session {session}"));
    }
    if let Some(cost) = fire.cost_usd {
        line.push_str(&format!("  ${cost:.4}"));
    }
    if let Some(output) = &fire.output {
        line.push_str(&format!("  → {output}"));
    }
    if let Some(reason) = &fire.reason {
        line.push_str(&format!("  ({reason})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        read_store_time(text).unwrap()
    }

    #[test]
    fn missed_fires_are_caught_up_by_each_policy() {
        let daily = When::Cron(Cron::parse("0 8 * * *").unwrap(), chrono_tz::Tz::UTC);
        // Down from Monday 07:00 to Thursday 08:00:30: fires Mon, Tue, Wed missed, Thursday's on time.
        let (down, up) = (utc("2027-01-04T07:00:00Z"), utc("2027-01-07T08:00:30Z"));
        let times = |fires: &[(DateTime<Utc>, FireStatus, String)]| -> Vec<(String, FireStatus)> {
            fires.iter().map(|(time, status, _)| (store_time(*time), *status)).collect()
        };

        let skip = decide(&daily, CatchUp::Skip, down, up);
        assert_eq!(skip.run, Some(utc("2027-01-07T08:00:00Z")), "the on-time fire runs");
        assert_eq!(
            times(&skip.unrun),
            [
                ("2027-01-04T08:00:00Z".to_string(), FireStatus::Missed),
                ("2027-01-05T08:00:00Z".to_string(), FireStatus::Missed),
                ("2027-01-06T08:00:00Z".to_string(), FireStatus::Missed),
            ]
        );
        assert!(skip.unrun[0].2.contains("no errand serve ran at 2027-01-04T08:00:00Z"), "{}", skip.unrun[0].2);
        // Up at 09:00 instead: Thursday's fire is late too, and skip runs nothing.
        let late = decide(&daily, CatchUp::Skip, down, utc("2027-01-07T09:00:00Z"));
        assert_eq!((late.run, late.unrun.len()), (None, 4));

        let once = decide(&daily, CatchUp::Once, down, utc("2027-01-07T09:00:00Z"));
        assert_eq!(once.run, Some(utc("2027-01-07T08:00:00Z")), "the latest missed fire runs");
        assert_eq!(once.unrun.iter().map(|(_, status, _)| *status).collect::<Vec<_>>(), [FireStatus::Skipped; 3]);
        assert_eq!(once.checked_until, utc("2027-01-07T09:00:00Z"));

        let all = decide(&daily, CatchUp::All, down, utc("2027-01-07T09:00:00Z"));
        assert_eq!((all.run, all.unrun.len()), (Some(utc("2027-01-04T08:00:00Z")), 0), "the earliest first");
        assert_eq!(all.checked_until, utc("2027-01-04T08:00:00Z"), "the rest come in later looks, in order");

        let nothing = decide(&daily, CatchUp::All, up, utc("2027-01-07T08:30:00Z"));
        assert_eq!((nothing.run, nothing.checked_until), (None, utc("2027-01-07T08:30:00Z")));
    }

    #[test]
    fn a_one_shot_fires_once() {
        let at = When::At(utc("2027-01-04T09:00:00Z"));
        let before = decide(&at, CatchUp::Skip, utc("2027-01-04T08:00:00Z"), utc("2027-01-04T08:59:00Z"));
        assert_eq!(before.run, None);
        let due = decide(&at, CatchUp::Skip, before.checked_until, utc("2027-01-04T09:00:01Z"));
        assert_eq!(due.run, Some(utc("2027-01-04T09:00:00Z")));
        let after = decide(&at, CatchUp::Skip, due.checked_until, utc("2027-01-05T09:00:00Z"));
        assert_eq!((after.run, after.unrun.len()), (None, 0));
    }

    #[test]
    fn an_injected_clock_runs_from_its_anchor_at_its_speed() {
        let anchor = Utc::now().timestamp_millis();
        let clock = Clock { injected: Some((utc("2027-01-04T07:59:00Z"), anchor, 60.0)) };
        let now = clock.now();
        assert!(now >= utc("2027-01-04T07:59:00Z") && now < utc("2027-01-04T08:30:00Z"), "{now}");
        assert_eq!(clock.span(Duration::from_secs(1)), chrono::Duration::seconds(60));
        assert_eq!(clock.real(chrono::Duration::minutes(2)), Duration::from_secs(2));
    }
}
