//! `sov serve [--listen ADDR:PORT]`: verify and load the models, then serve the HTTP API.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_keys::OwnerPublicKeys;
use sov_server::{AppState, ServedModel, ServerConfig};

use super::load;
use super::model::open_store;
use crate::cli::ServeArgs;
use crate::home::Home;

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
    // Take the port before loading anything: a port in use fails at once, not after a long load.
    let listen = args.listen.unwrap_or(config.server.listen);
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("failed to listen on {listen}"))?;
    listener
        .set_nonblocking(true)
        .context("failed to configure the listening socket")?;
    let mut models = BTreeMap::new();
    for name in &names {
        let loaded = load::load(&config, &store, &owner, name)?;
        let created = time_of(&loaded.manifest.imported_at);
        models.insert(
            loaded.name.clone(),
            ServedModel {
                engine: loaded.engine,
                created,
            },
        );
    }
    let server_config = ServerConfig {
        max_body_bytes: config.server.max_body_bytes,
        owner: format!("owner:{}", owner.key_id),
    };
    let state = AppState::new(models, server_config);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).context("failed to listen")?;
        let local = listener
            .local_addr()
            .context("failed to read the listening address")?;
        // The one line a user or a script waits for; printed only once the port is open.
        println!(
            "Sovereign is serving {} at http://{local}/v1",
            names.join(", ")
        );
        sov_server::serve(listener, state, shutdown_signal())
            .await
            .context("the HTTP server failed")?;
        println!("Sovereign stopped.");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Unix seconds of an RFC 3339 UTC time; 0 if it does not parse (the field is informative only).
fn time_of(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_or(0, time::OffsetDateTime::unix_timestamp)
}
