//! `sov corpus add NAME PATH... [--clearance N] [--attr K=V]`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_audit_core::entry::{Kind, Outcome};
use sov_keys::OwnerKeys;
use sov_knowledge::{AddOptions, Change, EmbedderId, KnowledgeError};

use super::{EngineEmbedder, embedding_model, open_knowledge};
use crate::cli::CorpusAddArgs;
use crate::commands::{load, model::open_store};
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, args: &CorpusAddArgs) -> Result<ExitCode> {
    let config = home.config()?;
    let owner =
        OwnerKeys::load(&home.keys_dir()).context("failed to load the owner's signing key")?;
    let attributes = args
        .attrs
        .iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--attr `{a}` is not KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let options = AddOptions {
        clearance: args.clearance,
        attributes,
        max_file_bytes: config.knowledge.max_document_bytes,
    };
    // Open the record first: a change that could not be recorded must not happen.
    let log = record::open(home, &config)?;
    let result = (|| -> Result<Change> {
        let name = embedding_model(home, &config)?;
        let models = open_store(home)?;
        let loaded = load::load(&config, &models, &owner.public(), &name, &[], &log)?;
        let dims = loaded.engine.info().embedding_length;
        let embedder = EngineEmbedder {
            id: EmbedderId {
                name: name.clone(),
                sha256: loaded.manifest.sha256.clone(),
                dims,
            },
            engine: loaded.engine,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("failed to start the async runtime")?,
        };
        let store = open_knowledge(home)?;
        let mut corpus = match store.open_corpus(&args.name, &owner.public()) {
            Ok(c) => c,
            Err(KnowledgeError::NotFound { .. }) => {
                store.create(&args.name, &embedder.id, &owner)?
            }
            Err(e) => return Err(e.into()),
        };
        if args.paths.is_empty() {
            bail!("name at least one file or folder");
        }
        Ok(corpus.add(&args.paths, &options, &embedder, &owner)?)
    })();
    let mut attrs = vec![("change", "corpus.add".to_owned())];
    if let Some(c) = args.clearance {
        attrs.push(("clearance", c.to_string()));
    }
    if !args.attrs.is_empty() {
        attrs.push(("attributes", args.attrs.join(",")));
    }
    let entry = match &result {
        Ok(change) => {
            attrs.push(("added", change.added.join(",")));
            attrs.push(("replaced", change.replaced.join(",")));
            attrs.push(("relabelled", change.relabelled.join(",")));
            attrs.push(("unchanged", change.unchanged.len().to_string()));
            attrs.push(("chunks_added", change.chunks_added.to_string()));
            attrs.push(("manifest_sha256", change.manifest_sha256.clone()));
            record::append(
                &log,
                Kind::CorpusChange,
                &args.name,
                Outcome::Ok,
                "",
                None,
                attrs,
            )
        }
        Err(e) => record::append(
            &log,
            Kind::CorpusChange,
            &args.name,
            Outcome::Denied,
            &record::reason(e),
            None,
            attrs,
        ),
    };
    let closed = log.close().context("failed to close the audit record");
    let change =
        result.with_context(|| format!("nothing was added to the corpus `{}`", args.name))?;
    let entry = entry?;
    closed?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Corpus `{}`:", args.name)?;
    for (label, ids) in [
        ("added", &change.added),
        ("replaced", &change.replaced),
        ("relabelled", &change.relabelled),
    ] {
        for id in ids {
            writeln!(out, "  {label:<10} {id}")?;
        }
    }
    if !change.unchanged.is_empty() {
        writeln!(out, "  unchanged  {} documents", change.unchanged.len())?;
    }
    for s in &change.skipped {
        writeln!(out, "  skipped    {} ({})", s.path.display(), s.reason)?;
    }
    writeln!(out, "  chunks embedded: {}", change.chunks_added)?;
    writeln!(out, "  manifest sha256: {}", change.manifest_sha256)?;
    writeln!(out, "  audit entry: {}", entry.index)?;
    Ok(ExitCode::SUCCESS)
}
