//! `errand schedule`: recurring and one-shot tasks that `errand serve` fires — add, list, show, remove,
//! pause, resume, and run one now.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use chrono::Utc;
use errand_server::cron::{Cron, local_tz, parse_at, parse_tz, store_time};
use errand_server::scheduler::{
    ScheduleSettings, Scheduler, When, describe_fire, describe_schedule, next_fires, webhook_host,
};
use errand_store::{CatchUp, NewSchedule, ScheduleRecord};
use serde_json::json;

use crate::commands::{Failure, builder, open_store, usage_error};
use crate::{EXIT_DONE, EXIT_ERROR, ScheduleAddArgs, ScheduleCommand};

/// `errand schedule …`.
pub(crate) async fn schedule(command: ScheduleCommand) -> Result<u8, Failure> {
    match command {
        ScheduleCommand::Add(args) => add(*args).await,
        ScheduleCommand::List { json } => list(json),
        ScheduleCommand::Show { id, json } => show(&id, json),
        ScheduleCommand::Rm { id } => remove(&id),
        ScheduleCommand::Pause { id } => set_paused(&id, true).await,
        ScheduleCommand::Resume { id } => set_paused(&id, false).await,
        ScheduleCommand::Run { id } => run_now(&id).await,
    }
}

/// A folder as the schedule keeps it: absolute and existing, since fires run from elsewhere.
fn absolute_folder(folder: &Path, flag: &str) -> Result<PathBuf, Failure> {
    std::fs::canonicalize(folder)
        .map_err(|error| usage_error(anyhow!("{flag} {}: {error}; give a folder that exists", folder.display())))
}

async fn add(args: ScheduleAddArgs) -> Result<u8, Failure> {
    if args.task.trim().is_empty() {
        return Err(usage_error(anyhow!("the task is empty; say what errand should do at each fire")));
    }
    let tz = match &args.tz {
        Some(name) => parse_tz(name).map_err(|error| usage_error(anyhow!("--tz: {error}")))?,
        None => local_tz(),
    };
    // The scheduler's clock: the system's, or the one injected for tests (ERRAND_CLOCK).
    let now = errand_server::scheduler::Clock::from_env().map_err(|error| usage_error(anyhow!(error)))?.now();
    let (cron, at) = match (&args.cron, &args.at) {
        (Some(cron), None) => {
            let parsed = Cron::parse(cron).map_err(usage_error)?;
            if parsed.next_after(now, tz).is_none() {
                return Err(usage_error(anyhow!(
                    "--cron {cron:?} never fires (no such date); check the day and month"
                )));
            }
            (Some(parsed.as_str().to_string()), None)
        }
        (None, Some(at)) => {
            let instant = parse_at(at, tz).map_err(|error| usage_error(anyhow!("--at: {error}")))?;
            if instant <= now {
                return Err(usage_error(anyhow!(
                    "--at {at} is in the past ({}); give a later time",
                    store_time(instant)
                )));
            }
            (None, Some(store_time(instant)))
        }
        _ => {
            return Err(usage_error(anyhow!(
                "say when: --cron \"0 8 * * 1-5\" (recurring) or --at 2027-01-04T09:00 (once)"
            )));
        }
    };
    let mut folders = Vec::new();
    for folder in &args.folders {
        folders.push(absolute_folder(folder, "--folder")?);
    }
    if folders.is_empty() {
        folders.push(absolute_folder(
            &std::env::current_dir().context("find the current directory")?,
            "the current folder",
        )?);
    }
    let mut read_only = Vec::new();
    for folder in &args.read_only {
        read_only.push(absolute_folder(folder, "--read-only")?);
    }
    let output = match &args.output {
        None => None,
        Some(output) => {
            // Relative to the first folder, where the task works; it must land in a folder it may write.
            let output = if output.is_absolute() { output.clone() } else { folders[0].join(output) };
            if !folders.iter().any(|folder| output.starts_with(folder)) {
                return Err(usage_error(anyhow!(
                    "--output {} is outside the folders the task may write ({}); put it in one of them",
                    output.display(),
                    folders.iter().map(|folder| folder.display().to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
            Some(output)
        }
    };
    let settings = ScheduleSettings {
        folders,
        read_only,
        output,
        max_cost: args.max_cost,
        wait_secs: args.wait.map(|wait| wait.as_secs()),
        plan: args.plan,
        notify: args.notify,
        webhook: args.webhook.clone(),
    };
    let catch_up = CatchUp::parse(&args.catch_up).unwrap_or(CatchUp::Skip);
    let builder = builder()?;
    if let Some(url) = &args.webhook {
        let host = webhook_host(url).map_err(|error| usage_error(anyhow!("--webhook: {error}")))?;
        let policy = builder.network_policy().map_err(crate::commands::agent_failure)?;
        if !policy.allows_host(&host) {
            return Err(usage_error(anyhow!(
                "--webhook {url}: errand reaches a host only where your network rules allow it; add allow_net = \
                 [\"{host}\"] to {} first",
                builder.paths().config_file.display()
            )));
        }
    }
    if args.max_cost.is_some() {
        // Every fire would fail on a budget nothing can measure: say so now, not at 8 tomorrow.
        let resolved =
            builder.provider(&errand_config::ProviderFlags::default()).map_err(crate::commands::agent_failure)?;
        if builder.config().prices(&resolved.settings).price(&resolved.model).is_none() {
            return Err(usage_error(anyhow!(
                "--max-cost needs a model with a known price, and errand has none for {} at {}; add \
                 [prices.\"{}\"] to {} or drop --max-cost",
                resolved.model,
                resolved.settings.base_url,
                resolved.model,
                builder.paths().config_file.display()
            )));
        }
    }
    if args.notify && !on_path("notify-send") {
        eprintln!(
            "note: notify-send is not installed here, so --notify will show nothing (on Debian: apt-get install libnotify-bin)"
        );
    }
    let store = open_store(&builder)?;
    let new = NewSchedule {
        task: args.task.clone(),
        cron,
        at,
        tz: tz.name().to_string(),
        catch_up,
        settings: serde_json::to_value(&settings).context("serialize the schedule's settings")?,
        checked_until: store_time(now),
    };
    let schedule = store.add_schedule(&new).map_err(|error| Failure::from(anyhow!(error)))?;
    let next = next_fires(&schedule, 1);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&describe_schedule(&schedule, 3))?)?;
    } else {
        outln!("{}", schedule.id)?;
        eprintln!(
            "scheduled {}: {} · next fire {}",
            schedule.id,
            timing(&schedule),
            next.first().map_or_else(|| "none".to_string(), |time| local(*time, tz))
        );
    }
    let paths = builder.paths().clone();
    if crate::detach::call_if_serving(&paths, "GET", "/api/schedules", None).await.is_none() {
        eprintln!(
            "note: no errand serve runs for this errand home, and only it fires schedules: `errand service install` \
             runs one as a service (or keep `errand serve` running)"
        );
    }
    Ok(EXIT_DONE)
}

/// Whether `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|folder| folder.join(program).is_file()))
}

/// A time in the schedule's zone, for people.
fn local(time: chrono::DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    time.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z").to_string()
}

fn timing(schedule: &ScheduleRecord) -> String {
    match (&schedule.cron, &schedule.at) {
        (Some(cron), _) => format!("{cron} ({})", schedule.tz),
        (None, Some(at)) => {
            let tz = parse_tz(&schedule.tz).unwrap_or(chrono_tz::Tz::UTC);
            errand_server::cron::read_store_time(at)
                .map_or_else(|| at.clone(), |time| format!("once at {}", local(time, tz)))
        }
        (None, None) => "never".to_string(),
    }
}

fn list(json: bool) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let schedules = store.schedules().map_err(|error| Failure::from(anyhow!(error)))?;
    if json {
        let listed: Vec<_> = schedules.iter().map(|schedule| describe_schedule(schedule, 3)).collect();
        outln!("{}", serde_json::to_string_pretty(&listed)?)?;
        return Ok(EXIT_DONE);
    }
    if schedules.is_empty() {
        outln!("no schedules (errand schedule add --cron \"0 8 * * 1-5\" --folder DIR \"task\" makes one)")?;
        return Ok(EXIT_DONE);
    }
    for schedule in &schedules {
        let tz = parse_tz(&schedule.tz).unwrap_or(chrono_tz::Tz::UTC);
        let next = match (schedule.paused, next_fires(schedule, 1).first()) {
            (true, _) => "paused".to_string(),
            (false, Some(time)) => format!("next {}", local(*time, tz)),
            (false, None) => "no more fires".to_string(),
        };
        let task: String = schedule.task.lines().next().unwrap_or_default().chars().take(50).collect();
        outln!("{}  {:<28} {:<32} {task}", schedule.id, timing(schedule), next)?;
    }
    Ok(EXIT_DONE)
}

fn show(id: &str, json: bool) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let schedule = store.schedule(id).map_err(usage_error)?;
    let history = store.fires(&schedule.id, 50).map_err(|error| Failure::from(anyhow!(error)))?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"schedule": describe_schedule(&schedule, 5), "history": history}))?
        )?;
        return Ok(EXIT_DONE);
    }
    let settings = ScheduleSettings::of(&schedule);
    let tz = parse_tz(&schedule.tz).unwrap_or(chrono_tz::Tz::UTC);
    outln!("schedule {}{}", schedule.id, if schedule.paused { " (paused)" } else { "" })?;
    outln!("task:     {}", schedule.task)?;
    outln!("when:     {} · catch-up {}", timing(&schedule), schedule.catch_up.as_str())?;
    let folders: Vec<String> = settings.folders.iter().map(|folder| folder.display().to_string()).collect();
    outln!("folders:  {}", folders.join(", "))?;
    if !settings.read_only.is_empty() {
        let read_only: Vec<String> = settings.read_only.iter().map(|folder| folder.display().to_string()).collect();
        outln!("read-only: {}", read_only.join(", "))?;
    }
    if let Some(output) = &settings.output {
        outln!("output:   {}", output.display())?;
    }
    if let Some(cost) = settings.max_cost {
        outln!("max cost: ${cost} per fire")?;
    }
    if settings.plan {
        outln!("plan:     each fire's plan waits in the inbox for approval")?;
    }
    if settings.notify {
        outln!("notify:   a desktop notification when a fire ends")?;
    }
    if let Some(url) = &settings.webhook {
        outln!("webhook:  {url}")?;
    }
    let next = next_fires(&schedule, 5);
    if !next.is_empty() {
        outln!("next fires:")?;
        for time in next {
            outln!("  {}", local(time, tz))?;
        }
    }
    if history.is_empty() {
        outln!("no fires yet")?;
    } else {
        outln!("history (newest first):")?;
        for fire in &history {
            outln!("  {}", describe_fire(fire))?;
        }
    }
    Ok(EXIT_DONE)
}

fn remove(id: &str) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let schedule = store.schedule(id).map_err(usage_error)?;
    store.remove_schedule(&schedule.id).map_err(|error| Failure::from(anyhow!(error)))?;
    eprintln!("removed schedule {} ({}) and its history", schedule.id, timing(&schedule));
    Ok(EXIT_DONE)
}

async fn set_paused(id: &str, paused: bool) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let schedule = store.schedule(id).map_err(usage_error)?;
    store.set_schedule_paused(&schedule.id, paused).map_err(|error| Failure::from(anyhow!(error)))?;
    if paused {
        eprintln!("paused {}: it fires no more until `errand schedule resume {}`", schedule.id, schedule.id);
    } else {
        let next = next_fires(&ScheduleRecord { paused: false, ..schedule.clone() }, 1);
        let tz = parse_tz(&schedule.tz).unwrap_or(chrono_tz::Tz::UTC);
        eprintln!(
            "resumed {} · next fire {} (fires missed while paused are caught up by --catch-up {})",
            schedule.id,
            next.first().map_or_else(|| "none".to_string(), |time| local(*time, tz)),
            schedule.catch_up.as_str()
        );
    }
    Ok(EXIT_DONE)
}

/// Fires the schedule now: in the running `errand serve` when there is one, else here, waiting for it.
async fn run_now(id: &str) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let schedule = store.schedule(id).map_err(usage_error)?;
    let paths = builder.paths().clone();
    let path = format!("/api/schedules/{}/run", schedule.id);
    if let Some(answer) = crate::detach::call_if_serving(&paths, "POST", &path, Some(&json!({}))).await {
        let (status, body) = answer.map_err(Failure::from)?;
        if status != 200 {
            return Err(Failure::from(anyhow!("errand serve did not fire it: {}", body.as_str().unwrap_or_default())));
        }
        eprintln!(
            "fired {} now in errand serve; `errand schedule show {}` shows the fire and its session",
            schedule.id, schedule.id
        );
        return Ok(EXIT_DONE);
    }
    if When::of(&schedule).is_err() {
        return Err(usage_error(anyhow!("schedule {} cannot be read; remove it and add it again", schedule.id)));
    }
    let scheduler = Scheduler::standalone(store.clone(), builder).map_err(|error| usage_error(anyhow!(error)))?;
    eprintln!("firing {} now, here (no errand serve runs) …", schedule.id);
    let fire = scheduler
        .run_now(schedule, |session| eprintln!("session {session} (errand attach {session} follows it elsewhere)"))
        .await
        .map_err(|error| Failure::from(anyhow!(error)))?;
    eprintln!("{}", describe_fire(&fire));
    Ok(if fire.status == errand_store::FireStatus::Done { EXIT_DONE } else { EXIT_ERROR })
}
