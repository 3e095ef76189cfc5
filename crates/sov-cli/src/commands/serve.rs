//! `sov serve [--listen ADDR:PORT]`: verify and load the models, then serve the HTTP API.
//!
//! Before anything is loaded, the policy set is validated (an invalid file stops the start,
//! naming its line) and its hash noted in the record if it changed since the last start. While
//! serving, the directory's outbox (changes made by `sov principal`/`sov token` in another
//! process) is moved into the record every quarter of a second.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sov_audit::AuditLog;
use sov_audit_core::entry::{Kind, Outcome};
use sov_kernel::{Gate, Kernel, Parts};
use sov_keys::OwnerPublicKeys;
use sov_policy::{Directory, Guard};
use sov_seal::start;
use sov_server::{Access, AppState};

use super::model::open_store;
use super::{library, load};
use crate::cli::ServeArgs;
use crate::home::{Config, Home};
use crate::{identity, record};

pub fn run(home: &Home, args: &ServeArgs) -> Result<ExitCode> {
    let config = home.config()?;
    let store = open_store(home)?;
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let names = load::served(&config, &store)?;
    // Refuse an invalid policy set before taking the port or loading anything.
    let policies = identity::load_policies(home).context("sov serve did not start")?;
    let directory = Arc::new(identity::open_directory(home)?);
    let limits = config.limits.limits()?;
    let sessions = config.limits.sessions()?;
    let listen = args.listen.unwrap_or(config.server.listen);
    let plan = seal_plan(home, &config, args, listen)?;
    // Take the port before loading anything: a port in use fails at once, not after a long load.
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("failed to listen on {listen}"))?;
    listener
        .set_nonblocking(true)
        .context("failed to configure the listening socket")?;
    // The keys are read-only under the seal: the log key is made now if it is the first use.
    if !home.keys_dir().join(sov_keys::LOG_KEY_FILE).is_file() {
        sov_keys::LogKey::init_or_load(&home.keys_dir())
            .context("failed to create the audit log's key")?;
    }
    // The declared tool servers start before the seal, each through the seal's launcher in a
    // sandbox of its own (once sealed, this process may not execute the launcher).
    let tool_servers = match super::tools::start_mcp(home, &config) {
        Ok(started) => started,
        Err(e) => {
            refuse_start(
                home,
                &config,
                &format!("mcp:{}", e.server),
                &e.reason,
                Kind::ToolServer,
            )?;
            bail!("sov serve did not start: {e} (see [[tools.mcp]] in sov.toml)");
        }
    };
    // The seal goes on while the process has one thread: after the listener, before the audit
    // writer, the engine and the async runtime start theirs.
    let stored = plan.confine(&listener)?.probe().store()?;
    let log = record::open(home, &config)?;
    let attested = match attest(&log, stored) {
        Ok(attested) => attested,
        Err(e) => {
            let _ = log.close();
            return Err(e);
        }
    };
    let (report, report_json, attestation) = attested.into_parts();
    let seal = sov_server::SealView {
        report,
        report_json,
        config_path: home.config_path(),
        attestation,
    };
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
        let guard = Guard::new(directory.clone(), policies, Some(home.policies_dir()))
            .with_session_limits(sessions);
        Ok::<_, anyhow::Error>((guard, node))
    })();
    let result = guard.and_then(|(guard, node)| {
        serve(
            home,
            &config,
            &store,
            &owner,
            &names,
            listener,
            &log,
            (guard, node, Access::new(limits)),
            seal,
            tool_servers,
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
    home: &Home,
    config: &Config,
    store: &sov_models::ModelStore,
    owner: &OwnerPublicKeys,
    names: &[String],
    listener: std::net::TcpListener,
    log: &AuditLog,
    (guard, node, access): (Guard, String, Access),
    seal: sov_server::SealView,
    tool_servers: Vec<sov_mcp::Started>,
) -> Result<()> {
    let listen = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let gate = Gate::new(config.seal.clone(), Arc::new(log.clone()), "system");
    let mcp_tools = runtime.block_on(super::tools::connect_mcp(home, tool_servers, log, &gate))?;
    let (loaded, mut library) =
        library::load_served(home, config, store, owner, names, log, &runtime)?;
    for tool in mcp_tools {
        if let Err(e) = library.tools.add(tool) {
            bail!("sov serve did not start: [[tools.mcp]]: {e}");
        }
    }
    let specialists: Vec<String> = library.specialists.keys().cloned().collect();
    let models = loaded.into_iter().map(|(n, l)| (n, l.model)).collect();
    let server_config = config
        .server
        .server_config(format!("owner:{}", owner.key_id))?;
    let directory = guard.directory().clone();
    let policy_set = guard.policies().hash_hex();
    let kernel = Kernel::new(Parts {
        models,
        guard,
        log: log.clone(),
        node,
        gate,
        library,
    });
    let state = AppState::new(kernel, server_config, access);
    state.set_seal(seal);
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

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).context("failed to listen")?;
        let local = listener
            .local_addr()
            .context("failed to read the listening address")?;
        let outbox = tokio::spawn(drain_outbox(directory, log.clone()));
        // The one line a user or a script waits for; printed only once the port is open.
        let shutdown = shutdown_signal()?;
        let specialists = if specialists.is_empty() {
            String::new()
        } else {
            format!(" and specialists {}", specialists.join(", "))
        };
        // The console's line first: the ready line is the last one printed (a script that
        // waits for it may stop reading there).
        if sov_server::console::built() {
            println!("The console: http://{local}/console/");
        } else {
            println!(
                "The console is not built into this sov (bash scripts/run builds it); the API is served as usual."
            );
        }
        println!(
            "Sovereign is serving {}{specialists} at http://{local}/v1",
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

/// The seal's plan for this start (`sov_seal::start`): the home's record and directory are
/// written, the rest only read. A start the declaration does not allow is refused, and the
/// refusal recorded.
fn seal_plan(
    home: &Home,
    config: &Config,
    args: &ServeArgs,
    listen: std::net::SocketAddr,
) -> Result<sov_seal::Plan> {
    let state = home
        .identity_path()
        .parent()
        .map_or_else(|| home.root().join("state"), Path::to_owned);
    let seal_home = start::Home {
        root: home.root().to_owned(),
        config: home.config_path(),
        writes: vec![home.audit_dir(), state],
        files: start::Files::in_home(home.root()),
    };
    let refused = match sov_seal::Plan::for_declaration(&config.seal, seal_home, listen) {
        Ok(plan) => {
            return Ok(plan
                .unavailable(args.seal_unavailable.iter().copied())
                .require_whole(args.require_seal));
        }
        Err(refused) => refused,
    };
    refuse_start(
        home,
        config,
        &format!("http://{listen}/v1"),
        &refused.reason,
        Kind::ServerStart,
    )?;
    bail!("sov serve did not start: {refused} (see [seal] in sov.toml)");
}

/// Records a start refused before the record is open (an entry of `kind` on `resource`).
fn refuse_start(
    home: &Home,
    config: &Config,
    resource: &str,
    reason: &str,
    kind: Kind,
) -> Result<()> {
    let log = record::open(home, config)?;
    let recorded = record::append(&log, kind, resource, Outcome::Denied, reason, None, vec![]);
    log.close().context("failed to close the audit record")?;
    recorded?;
    Ok(())
}

/// Records the seal attestation, says how the seal stands, and with `--require-seal` refuses
/// (recorded) a start where it is not whole.
fn attest(log: &AuditLog, stored: start::Stored) -> Result<start::Attested> {
    let attested = stored.attest(log, "system")?;
    let report = attested.report();
    println!("Seal: {} (report: `sov seal status`)", report.summary());
    if let Err(not_whole) = attested.require_whole() {
        let reason = format!("--require-seal: {not_whole}");
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
    if let Some(gaps) = attested.gaps() {
        eprintln!("warning: {gaps}");
    }
    Ok(attested)
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
