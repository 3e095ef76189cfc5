//! `sov serve [--listen ADDR:PORT]`: verify and load the models, then serve the HTTP API.
//!
//! Before anything is loaded, the policy set is validated (an invalid file stops the start,
//! naming its line) and its hash noted in the record if it changed since the last start. While
//! serving, the directory's outbox (changes made by `sov principal`/`sov token` in another
//! process) is moved into the record every quarter of a second.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sov_audit::AuditLog;
use sov_audit_core::entry::{Kind, Outcome};
use sov_kernel::Kernel;
use sov_keys::OwnerPublicKeys;
use sov_policy::{Directory, Guard};
use sov_server::{Access, AppState};

use super::load;
use super::model::open_store;
use crate::cli::ServeArgs;
use crate::home::{Config, Home, replace_private, write_new_private};
use crate::{identity, record};

pub fn run(home: &Home, args: &ServeArgs) -> Result<ExitCode> {
    let config = home.config()?;
    let store = open_store(home)?;
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let names: Vec<String> = if config.server.models.is_empty() {
        store
            .list()
            .context("failed to list the model store")?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        config.server.models.clone()
    };
    if names.is_empty() {
        bail!("there is no model to serve: import one with `sov model import FILE.gguf`");
    }
    // Refuse an invalid policy set before taking the port or loading anything.
    let policies = identity::load_policies(home).context("sov serve did not start")?;
    let directory = Arc::new(identity::open_directory(home)?);
    let limits = config.limits.limits()?;
    let listen = args.listen.unwrap_or(config.server.listen);
    check_declaration(home, &config, listen)?;
    // Take the port before loading anything: a port in use fails at once, not after a long load.
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("failed to listen on {listen}"))?;
    listener
        .set_nonblocking(true)
        .context("failed to configure the listening socket")?;
    // The seal goes on while the process has one thread: after the listener, before the audit
    // writer, the engine and the async runtime start theirs.
    let bound = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let mut sealed = apply_seal(home, &config, args, bound)?;
    let log = record::open(home, &config)?;
    match attest(home, &log, &sealed, args.require_seal) {
        Ok(index) => sealed.attestation = index,
        Err(e) => {
            let _ = log.close();
            return Err(e);
        }
    }
    let guard = (|| {
        directory
            .policy_loaded(
                &policies.hash_hex(),
                policies.files(),
                "policy.load",
                &record::local_principal(),
            )
            .context("failed to note the policy set")?;
        directory
            .drain_outbox(&log)
            .context("failed to move the directory's changes into the audit record")?;
        let node = record::node(home, &config)?;
        let guard = Guard::new(directory.clone(), policies, Some(home.policies_dir()));
        Ok::<_, anyhow::Error>((guard, node))
    })();
    let result = guard.and_then(|(guard, node)| {
        serve(
            &config,
            &store,
            &owner,
            &names,
            listener,
            &log,
            (guard, node, Access::new(limits)),
            sealed,
        )
    });
    // Changes made while the server stopped are recorded before the record closes.
    let drained = directory
        .drain_outbox(&log)
        .context("failed to move the directory's changes into the audit record");
    // Whatever happened, the record ends with a signed checkpoint covering every entry.
    let closed = log.close().context("failed to close the audit record");
    result?;
    drained?;
    closed?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn serve(
    config: &Config,
    store: &sov_models::ModelStore,
    owner: &OwnerPublicKeys,
    names: &[String],
    listener: std::net::TcpListener,
    log: &AuditLog,
    (guard, node, access): (Guard, String, Access),
    sealed: Sealed,
) -> Result<()> {
    let listen = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let mut models = BTreeMap::new();
    for name in names {
        let loaded = load::load(config, store, owner, name, log)?;
        models.insert(name.clone(), loaded.model);
    }
    let server_config = config
        .server
        .server_config(format!("owner:{}", owner.key_id))?;
    let directory = guard.directory().clone();
    let policy_set = guard.policies().hash_hex();
    let kernel = Kernel::new(models, guard, log.clone(), node);
    let state = AppState::new(kernel, server_config, access);
    state.set_seal(sov_server::SealView {
        report: sealed.report,
        report_json: sealed.json,
        config_path: sealed.config_path,
        attestation: sealed.attestation,
    });
    let model_list = names.join(",");
    record::append(
        log,
        Kind::ServerStart,
        &format!("http://{listen}/v1"),
        Outcome::Ok,
        "",
        None,
        vec![("models", model_list.clone()), ("policy_set", policy_set)],
    )?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).context("failed to listen")?;
        let local = listener
            .local_addr()
            .context("failed to read the listening address")?;
        let outbox = tokio::spawn(drain_outbox(directory, log.clone()));
        // The one line a user or a script waits for; printed only once the port is open.
        let shutdown = shutdown_signal()?;
        println!(
            "Sovereign is serving {} at http://{local}/v1",
            names.join(", ")
        );
        let served = sov_server::serve(listener, state, shutdown)
            .await
            .context("the HTTP server failed");
        outbox.abort();
        let (outcome, reason) = match &served {
            Ok(()) => (Outcome::Ok, String::new()),
            Err(err) => (Outcome::Error, record::reason(err)),
        };
        record::append(
            log,
            Kind::ServerStop,
            &format!("http://{local}/v1"),
            outcome,
            &reason,
            None,
            vec![("models", model_list)],
        )?;
        served?;
        // stdout may be gone by now (a closed pipe); the stop is already recorded.
        let _ = writeln!(std::io::stdout(), "Sovereign stopped.");
        Ok::<_, anyhow::Error>(())
    })
}

/// The seal as applied at start: its report, the report's bytes as stored, and where the
/// declaration lives (to show the changes waiting for the next start).
struct Sealed {
    report: sov_seal::Report,
    json: Vec<u8>,
    config_path: std::path::PathBuf,
    /// The index of the seal.attestation entry (once recorded).
    attestation: u64,
}

/// Refuses (and records the refusal of) a start the declaration does not allow: a listen
/// address outside `[seal] listen`, a declared read-only root that does not exist, or a part
/// of the home that resolves outside it (a symbolic link the seal would deny at first use).
fn check_declaration(home: &Home, config: &Config, listen: std::net::SocketAddr) -> Result<()> {
    let seal = &config.seal;
    let missing_root = seal
        .read_only
        .iter()
        .find(|p| !p.exists())
        .map(|p| format!("the declared read-only root {} does not exist", p.display()));
    let undeclared_listen =
        (!seal.listen.is_empty() && !seal.listen.contains(&listen)).then(|| {
            let declared: Vec<String> = seal.listen.iter().map(ToString::to_string).collect();
            format!("{listen} is not a declared listen address ([seal] listen = {declared:?})")
        });
    let problem = missing_root
        .or(undeclared_listen)
        .or_else(|| outside_home(home, &seal.read_only));
    let Some(problem) = problem else {
        return Ok(());
    };
    let log = record::open(home, config)?;
    let recorded = record::append(
        &log,
        Kind::ServerStart,
        &format!("http://{listen}/v1"),
        Outcome::Denied,
        &problem,
        None,
        vec![],
    );
    log.close().context("failed to close the audit record")?;
    recorded?;
    bail!("sov serve did not start: {problem} (see [seal] in sov.toml)");
}

/// A file or folder of the home (two levels deep: `models/blobs`, `state/identity.db`, ...)
/// that resolves outside the home and outside every declared read-only root: under the seal
/// the server could not use it, so the start is refused now, with the reason.
fn outside_home(home: &Home, read_only: &[std::path::PathBuf]) -> Option<String> {
    let root = std::fs::canonicalize(home.root()).ok()?;
    let allowed: Vec<std::path::PathBuf> = read_only
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() && !entry.file_type().is_ok_and(|t| t.is_symlink()) {
            paths.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
        paths.push(path);
    }
    paths.into_iter().find_map(|path| {
        let real = std::fs::canonicalize(&path).ok()?;
        if real.starts_with(&root) || allowed.iter().any(|a| real.starts_with(a)) {
            return None;
        }
        Some(format!(
            "{} resolves to {}, outside the home: the seal would deny the server access to it (move it into the home, or declare a read-only root in [seal] read_only if the server only reads it)",
            path.display(),
            real.display()
        ))
    })
}

/// Applies the seal (network namespace when offline, Landlock, seccomp), runs the probes, and
/// stores the report in `seal/report.json` (and under its SHA-256 in `seal/reports/`).
fn apply_seal(
    home: &Home,
    config: &Config,
    args: &crate::cli::ServeArgs,
    listen: std::net::SocketAddr,
) -> Result<Sealed> {
    use sov_seal::{Plan, Report, confine, probe};
    let declaration = &config.seal;
    // What the server writes: its record, its directory, its seal reports. Everything else in
    // the home (models, keys, policies, sov.toml) it only reads. The folders must exist before
    // the seal (a rule names an open folder), and the log key too (it is made on first use).
    let dir = home.root().join("seal");
    let archive = dir.join("reports");
    let state = home
        .identity_path()
        .parent()
        .map_or_else(|| home.root().join("state"), Path::to_owned);
    let read_write = vec![home.audit_dir(), state, dir.clone()];
    for folder in read_write.iter().chain([&archive]) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("failed to create {}", folder.display()))?;
    }
    if !home.keys_dir().join(sov_keys::LOG_KEY_FILE).is_file() {
        sov_keys::LogKey::init_or_load(&home.keys_dir())
            .context("failed to create the audit log's key")?;
    }
    let mut read_only = vec![home.root().to_owned()];
    read_only.extend(declaration.read_only.iter().cloned());
    let plan = Plan {
        offline: declaration.offline,
        read_write,
        read_only,
        connect_ports: declaration.outbound.iter().map(|d| d.port).collect(),
        unavailable: args.seal_unavailable.iter().copied().collect(),
    };
    let prepared = probe::prepare(&plan, Some(home.config_path()));
    let confinement = confine::apply(&plan, prepared.target());
    let probes = probe::run(prepared);
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .context("failed to write the start time")?;
    let report = Report::new(
        now,
        listen.to_string(),
        declaration,
        &plan,
        &confinement,
        probes,
    );
    let text = report.to_json().map_err(anyhow::Error::msg)?;
    let json = text.as_bytes().to_vec();
    let kept = archive.join(format!("{}.json", sov_seal::report::digest(&json)));
    if !kept.exists() {
        write_new_private(&kept, &text)?;
    }
    replace_private(&dir.join("report.json"), &text)?;
    Ok(Sealed {
        report,
        json,
        config_path: home.config_path(),
        attestation: 0,
    })
}

/// Records the report as the seal attestation (and notes the entry's index in
/// `seal/attestation`, for `sov seal status` to check the stored report against the record),
/// says how the seal stands, and with `--require-seal` refuses (recorded) a start where it is
/// not whole. Returns the attestation's index.
fn attest(home: &Home, log: &AuditLog, sealed: &Sealed, require: bool) -> Result<u64> {
    let report = &sealed.report;
    let appended = sov_seal::report::attest(log, "system", report, &sealed.json)
        .context("failed to record the seal attestation")?;
    replace_private(
        &super::seal::attestation_path(home),
        &format!("{}\n", appended.index),
    )?;
    println!("Seal: {} (report: `sov seal status`)", report.summary());
    if report.sealed {
        return Ok(appended.index);
    }
    let mut missing: Vec<String> = report
        .missing_layers()
        .iter()
        .map(|l| format!("{} is not in force ({})", l.layer, l.detail))
        .collect();
    missing.extend(
        report
            .failed_probes()
            .iter()
            .map(|p| format!("probe {} ({}): {}", p.name, p.tried, p.result)),
    );
    if !require {
        eprintln!("warning: the seal is not whole: {}", missing.join("; "));
        return Ok(appended.index);
    }
    let reason = format!(
        "--require-seal: the seal is not whole: {}",
        missing.join("; ")
    );
    record::append(
        log,
        Kind::ServerStart,
        &format!("http://{}/v1", report.listen),
        Outcome::Denied,
        &reason,
        None,
        vec![],
    )?;
    bail!("sov serve did not start: {reason}");
}

/// How often changes made by other processes move from the directory's outbox into the record.
const OUTBOX_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Moves the directory's outbox into the record every [`OUTBOX_INTERVAL`]; a failure is logged
/// and tried again (the entries stay queued, nothing is lost).
async fn drain_outbox(directory: Arc<Directory>, log: AuditLog) {
    let mut tick = tokio::time::interval(OUTBOX_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (d, l) = (directory.clone(), log.clone());
        match tokio::task::spawn_blocking(move || d.drain_outbox(&l)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "moving directory changes into the audit record failed; retrying")
            }
            Err(e) => tracing::error!(error = %e, "the outbox task failed; retrying"),
        }
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is called (not when the future is
/// first polled), so a signal that arrives right after the ready line still stops the server
/// cleanly instead of killing it with the default action.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("failed to handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("failed to handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    })
}
