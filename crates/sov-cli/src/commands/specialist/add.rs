//! `sov specialist add NAME --model BASE [--corpus C,...] [--description TEXT]
//! [--instructions FILE] [--tools T,...] [--adapter FILE.gguf] [--replace]`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_audit_core::entry::{Kind, Outcome};
use sov_keys::OwnerKeys;
use sov_models::ModelStore;
use sov_specialist::{Added, MAX_INSTRUCTIONS_BYTES, Spec, SpecialistStore};

use super::{corpus_exists, entry_attrs, installed_tools, open_store, or_none};
use crate::cli::SpecialistAddArgs;
use crate::commands::model;
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, args: &SpecialistAddArgs) -> Result<ExitCode> {
    let models = model::open_store(home)?;
    let store = open_store(home)?;
    let owner =
        OwnerKeys::load(&home.keys_dir()).context("failed to load the owner's signing key")?;
    // Open the record first: a change that could not be recorded must not happen.
    let log = record::open(home, &home.config()?)?;
    let result = add(home, &models, &store, &owner, args, &log);
    let entry = match &result {
        Ok(added) => {
            let m = &added.manifest;
            let mut attrs = entry_attrs(m);
            attrs.push(("change", "specialist.add".to_owned()));
            attrs.push(("replaced", added.replaced.is_some().to_string()));
            if let Some(old) = &added.replaced {
                attrs.push(("replaced_sha256", old.sha256()));
            }
            record::append(
                &log,
                Kind::SpecialistChange,
                &m.name,
                Outcome::Ok,
                "",
                sov_kernel::node::digest(&m.base.sha256),
                attrs,
            )
        }
        Err(err) => record::append(
            &log,
            Kind::SpecialistChange,
            &args.name,
            Outcome::Denied,
            &record::reason(err),
            None,
            vec![
                ("base", args.model.clone()),
                ("change", "specialist.add".to_owned()),
                ("corpora", args.corpora.join(",")),
            ],
        ),
    };
    let closed = log.close().context("failed to close the audit record");
    let added = result?;
    let entry = entry?;
    closed?;
    let mut out = std::io::stdout().lock();
    print(&mut out, &added, args.description.is_none())?;
    writeln!(out, "  audit entry: {}", entry.index)?;
    Ok(ExitCode::SUCCESS)
}

fn add(
    home: &Home,
    models: &ModelStore,
    store: &SpecialistStore,
    owner: &OwnerKeys,
    args: &SpecialistAddArgs,
    log: &sov_audit::AuditLog,
) -> Result<Added> {
    let name = &args.name;
    sov_specialist::validate_name(name)?;
    let model_names = models.list().context("failed to list the model store")?;
    if model_names.iter().any(|m| m.name == *name) {
        bail!(
            "failed to add specialist `{name}`: a model in the store has that name, and a request for `{name}` must name one thing"
        );
    }
    // The base's SHA-256 comes from its verified manifest: the bytes the owner approves now.
    let base = models
        .verify(&args.model, &owner.public())
        .with_context(|| format!("failed to use `{}` as the base model", args.model))?;
    for corpus in &args.corpora {
        sov_specialist::validate_corpus_name(corpus)?;
        if !corpus_exists(home, corpus) {
            bail!(
                "failed to find corpus `{corpus}` in this home (add it with `sov corpus add {corpus} PATH...`)"
            );
        }
    }
    let instructions = args
        .instructions
        .as_deref()
        .map(read_instructions)
        .transpose()?;
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| default_description(name, &args.corpora, &args.model));
    if let Some(adapter) = &args.adapter {
        check_adapter_fits(&base, adapter)?;
    }
    let spec = Spec {
        name: name.clone(),
        base: &base,
        corpora: args.corpora.clone(),
        description,
        instructions,
        tools: args.tools.clone(),
        installed_tools: installed_tools(home, log)?,
        tool_choice: if args.tool_choice == "required" {
            sov_specialist::ToolChoice::Required
        } else {
            sov_specialist::ToolChoice::Auto
        },
        adapter: args.adapter.clone(),
        replace: args.replace,
    };
    Ok(store.add(&spec, owner)?)
}

/// Checks that `path` is a LoRA adapter for the base's architecture (the specialist store's
/// own check, which says exactly what a wrong file is), then loads the base model with it as
/// `sov serve` will, so that an adapter llama.cpp refuses (a tensor the base does not have, or
/// of another shape) is refused now, not when the node starts.
fn check_adapter_fits(base: &sov_models::VerifiedModel, path: &Path) -> Result<()> {
    sov_specialist::check_adapter(path, &base.manifest().gguf.architecture)?;
    // The smallest engine: the check loads the adapter's tensors, not a KV cache.
    let config = sov_engine::EngineConfig {
        context_length: 16,
        parallel: 1,
        batch_size: 16,
        queue_depth: 1,
        ..Default::default()
    };
    sov_engine::Engine::load_with_adapters(base, &config, &[path]).with_context(|| {
        format!(
            "failed to use `{}` as the adapter of base model `{}`",
            path.display(),
            base.manifest().name
        )
    })?;
    Ok(())
}

/// The description when none is given: enough for the router to tell specialists apart by
/// their corpora, and printed so that the owner sees what it will go by.
fn default_description(name: &str, corpora: &[String], base: &str) -> String {
    if corpora.is_empty() {
        format!("The {name} specialist, on the base model {base}.")
    } else {
        format!(
            "The {name} specialist: answers questions from the corpora {}.",
            corpora.join(", ")
        )
    }
}

/// Reads an instructions file: UTF-8, at most 32 KiB (read no further than that).
fn read_instructions(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("failed to read the instructions file {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INSTRUCTIONS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("failed to read the instructions file {}", path.display()))?;
    if bytes.len() > MAX_INSTRUCTIONS_BYTES {
        bail!(
            "failed to use the instructions file {}: it is larger than 32 KiB ({MAX_INSTRUCTIONS_BYTES} bytes), the most a specialist's instructions may be",
            path.display()
        );
    }
    String::from_utf8(bytes).with_context(|| {
        format!(
            "failed to use the instructions file {}: it is not UTF-8 text",
            path.display()
        )
    })
}

fn print(out: &mut impl Write, added: &Added, default_description: bool) -> Result<()> {
    let m = &added.manifest;
    let verb = if added.replaced.is_some() {
        "Replaced"
    } else {
        "Added"
    };
    writeln!(
        out,
        "{verb} specialist {} (base {}, corpora: {})",
        m.name,
        m.base.name,
        or_none(&m.corpora)
    )?;
    writeln!(out, "  manifest sha256: {}", m.sha256())?;
    writeln!(out, "  base sha256:     {}", m.base.sha256)?;
    if let Some(a) = &m.adapter {
        writeln!(
            out,
            "  adapter:         {} (sha256 {})",
            a.file_name, a.sha256
        )?;
    }
    if default_description {
        writeln!(
            out,
            "  description:     {} (the default; --description says what it is for, and the router picks by it)",
            m.description
        )?;
    }
    Ok(())
}
