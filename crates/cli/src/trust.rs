//! Folder trust at the command line: `errand trust` and `errand untrust`. (Sessions settle trust in
//! `errand_agent::SessionBuilder`, asking through [`crate::prompt::ask_trust`] at a terminal.)

#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use errand_agent::trust::{FolderConfig, TrustState, TrustStore};
use serde_json::json;

use errand_config::Paths;

use crate::commands::{Failure, usage_error};
use crate::{EXIT_DONE, EXIT_ERROR};

/// `errand trust FOLDER`: shows what the folder carries and records trust after confirmation.
pub(crate) fn trust(folder: Option<PathBuf>, list: bool, yes: bool, json: bool) -> Result<u8, Failure> {
    let paths = Paths::discover().map_err(usage_error)?;
    let store = TrustStore::new(paths.trust_file());
    if list {
        return list_trusted(&store, json);
    }
    let Some(folder) = folder else {
        return Err(usage_error(anyhow::anyhow!(
            "say which folder to trust: errand trust FOLDER (or errand trust --list to see the trusted ones)"
        )));
    };
    let config = FolderConfig::read(&folder).map_err(usage_error)?;
    let state = store.state(&config).map_err(usage_error)?;
    if json {
        let mut value = config.to_json();
        value["folder"] = json!(config.folder);
        value["state"] = json!(state.as_str());
        value["needs_trust"] = json!(config.needs_trust());
        if yes {
            store.trust(&config).map_err(usage_error)?;
            value["state"] = json!(TrustState::Trusted.as_str());
        }
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize the folder's configuration")?)?;
        return Ok(EXIT_DONE);
    }
    outln!("{} ({})", config.folder.display(), state.as_str())?;
    let widening = config.widening();
    if widening.is_empty() {
        outln!("  nothing in it runs a program or widens errand's permissions")?;
    }
    for line in &widening {
        outln!("  {line}")?;
    }
    for rule in &config.permissions.ask {
        outln!("  ask rule {rule} (applies whether trusted or not)")?;
    }
    for rule in &config.permissions.deny {
        outln!("  deny rule {rule} (applies whether trusted or not)")?;
    }
    for warning in &config.warnings {
        outln!("  warning: {warning}")?;
    }
    if state == TrustState::Trusted {
        outln!("already trusted as it is")?;
        return Ok(EXIT_DONE);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(usage_error(anyhow::anyhow!(
                "errand trust needs a yes: run it at a terminal, or pass --yes once you have read the above"
            )));
        }
        match crate::prompt::read_choice("Trust this folder as it is now? [y]es, [n]o: ") {
            Some('y') => {}
            _ => {
                outln!("not trusted")?;
                return Ok(EXIT_ERROR);
            }
        }
    }
    store.trust(&config).map_err(usage_error)?;
    outln!("trusted {}; a change to its .mcp.json or .errand/settings.toml takes trust back", config.folder.display())?;
    Ok(EXIT_DONE)
}

/// `errand trust --list`: the trusted folders and whether each still matches what was trusted.
fn list_trusted(store: &TrustStore, json: bool) -> Result<u8, Failure> {
    let records = store.records().map_err(usage_error)?;
    let rows: Vec<(errand_agent::trust::TrustRecord, &str)> = records
        .into_iter()
        .map(|record| {
            let state = match FolderConfig::read(&record.folder) {
                Ok(config) if config.fingerprint == record.files => "trusted",
                Ok(_) => "changed",
                Err(_) => "missing",
            };
            (record, state)
        })
        .collect();
    if json {
        let value: Vec<_> = rows
            .iter()
            .map(|(record, state)| {
                json!({"folder": record.folder, "state": state, "matches": *state == "trusted", "trusted_at": record.trusted_at})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize the trusted folders")?)?;
        return Ok(EXIT_DONE);
    }
    if rows.is_empty() {
        eprintln!("no folder is trusted yet; errand trust FOLDER shows what a folder carries and trusts it");
        return Ok(EXIT_DONE);
    }
    for (record, state) in &rows {
        outln!("{state:<8} {}  (since {})", record.folder.display(), record.trusted_at)?;
    }
    Ok(EXIT_DONE)
}

/// `errand untrust FOLDER`.
pub(crate) fn untrust(folder: PathBuf) -> Result<u8, Failure> {
    let store = TrustStore::new(Paths::discover().map_err(usage_error)?.trust_file());
    if store.untrust(&folder).map_err(usage_error)? {
        outln!("{} is no longer trusted", folder.display())?;
        Ok(EXIT_DONE)
    } else {
        eprintln!("{} was not trusted (errand trust --list shows the trusted folders)", folder.display());
        Ok(EXIT_ERROR)
    }
}
