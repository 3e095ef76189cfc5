//! `sov corpus search NAME "query" [--as PRINCIPAL] [-k N] [--json]`: a search through the
//! kernel, as `sov chat` is a chat through it: the principal's `read-corpus` decisions on the
//! corpus and on each of its documents are made (and recorded) before anything is ranked, and
//! the search is a `retrieval` entry naming the corpus manifest and the chunks returned.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use sov_kernel::infer::end_of;
use sov_kernel::{Door, End, Gate, Kernel, Library, Parts, SearchCall, Searchable};
use sov_keys::OwnerPublicKeys;
use sov_policy::Guard;

use super::{embedding_model, open_knowledge};
use crate::commands::{load, model::open_store};
use crate::home::Home;
use crate::{identity, record};

/// The route a search's entries carry.
pub const ROUTE: &str = "sov corpus search";

pub fn run(
    home: &Home,
    name: &str,
    query: &str,
    principal: &str,
    k: usize,
    json: bool,
) -> Result<ExitCode> {
    let config = home.config()?;
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let policies = identity::load_policies(home)?;
    let directory = Arc::new(identity::open_directory(home)?);
    let log = record::open(home, &config)?;
    let result = (|| {
        let guard = Guard::new(directory.clone(), policies, Some(home.policies_dir()));
        let caller = guard
            .local(principal, &record::local_principal())
            .with_context(|| format!("sov corpus search cannot act as `{principal}`"))?;
        let model = embedding_model(home, &config)?;
        let loaded = load::load(&config, &open_store(home)?, &owner, &model, &[], &log)?;
        let mut corpora: sov_kernel::Corpora = BTreeMap::new();
        // A corpus that does not exist is looked up by the kernel after the decision.
        if let Ok(corpus) = open_knowledge(home)?.open_corpus(name, &owner) {
            let served: Arc<dyn Searchable> = Arc::new(sov_kernel::knowledge::Served::new(corpus));
            corpora.insert(name.to_owned(), served);
        }
        let kernel = Kernel::new(Parts {
            models: BTreeMap::from([(model.clone(), loaded.model)]),
            guard,
            log: log.clone(),
            node: record::node(home, &config)?,
            gate: Gate::new(config.seal.clone(), Arc::new(log.clone()), "system"),
            library: Library {
                corpora,
                embedder: Some(model),
                ..Default::default()
            },
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the async runtime")?;
        runtime.block_on(async {
            let door = Door {
                route: ROUTE.to_owned(),
                peer: None,
                read: false,
            };
            let mut ex = kernel.begin(caller, door)?;
            ex.commit_input(query.as_bytes());
            let call = SearchCall {
                corpus: name.to_owned(),
                query: query.to_owned(),
                k,
            };
            match kernel.search(&mut ex, call).await {
                Ok(found) => {
                    let recorded = ex.finish(End::Answered, None).await?;
                    Ok((found, recorded.map(|r| r.appended.index)))
                }
                Err(e) => {
                    let _ = ex.finish(end_of(&e), None).await;
                    Err(anyhow!(e))
                }
            }
        })
    })();
    let drained = directory
        .drain_outbox(&log)
        .context("failed to move the directory's changes into the audit record");
    let closed = log.close().context("failed to close the audit record");
    let (found, entry) = result?;
    drained?;
    closed?;
    let mut out = std::io::stdout().lock();
    if json {
        let hits: Vec<_> = found
            .passages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                json!({"rank": i + 1, "corpus": p.corpus, "document": p.document, "heading": p.heading,
                       "chunk_sha256": p.chunk_sha256, "score": p.score, "similarity": p.similarity, "text": p.text})
            })
            .collect();
        let body = json!({"corpus": name, "query": query, "hits": hits, "readable": found.readable,
                          "withheld": found.withheld, "manifests": found.manifests, "audit_entry": entry});
        writeln!(out, "{body}")?;
        return Ok(ExitCode::SUCCESS);
    }
    if found.passages.is_empty() {
        writeln!(out, "No passage found that `{principal}` may read.")?;
    }
    for (i, p) in found.passages.iter().enumerate() {
        let heading = if p.heading.is_empty() {
            String::new()
        } else {
            format!(" > {}", p.heading)
        };
        writeln!(
            out,
            "[{}] {}{heading}  (score {:.4}, chunk {})",
            i + 1,
            p.document,
            p.score,
            &p.chunk_sha256[..12.min(p.chunk_sha256.len())]
        )?;
        let text: String = p.text.chars().take(300).collect();
        writeln!(
            out,
            "    {}{}",
            text.replace('\n', " "),
            if p.text.chars().count() > 300 {
                "..."
            } else {
                ""
            }
        )?;
    }
    if let Some(index) = entry {
        writeln!(out, "  audit entry: {index}")?;
    }
    Ok(ExitCode::SUCCESS)
}
