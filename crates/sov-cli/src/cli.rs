//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sovereign: your own models, on your own hardware, under your own keys.
#[derive(Debug, Parser)]
#[command(name = "sov", version, about, propagate_version = true)]
pub struct Cli {
    /// The data home (default: ~/.sovereign).
    #[arg(long, global = true, env = "SOV_HOME")]
    pub home: Option<PathBuf>,
    /// More log output (-v: info, -vv: debug, including llama.cpp's).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data home, its configuration and the owner's signing keys.
    Init,
    /// Manage the owned model store.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Manage specialists: a base model with instructions, corpora, tools and an optional LoRA
    /// adapter, approved by the owner's signature.
    #[command(subcommand)]
    Specialist(SpecialistCommand),
    /// Manage corpora: the owner's documents, chunked, embedded and indexed for specialists.
    #[command(subcommand)]
    Corpus(CorpusCommand),
    /// Ask a model a question (or start an interactive chat), loading it in this process.
    Chat(ChatArgs),
    /// Serve the OpenAI-compatible HTTP API.
    Serve(ServeArgs),
    /// Read, prove, export and verify the Open Audit Record.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage principals: the people and services that may call the API.
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// Issue, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check and explain the Cedar policy set in `policies/`.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Edit the boundary's declaration (`[seal]` in sov.toml).
    #[command(subcommand)]
    Seal(SealCommand),
}

#[derive(Debug, Subcommand)]
pub enum SealCommand {
    /// Declare an outbound destination open (takes effect at the next start).
    Open {
        /// HOST:PORT, e.g. `10.0.0.7:8080` or `[fd00::1]:443`.
        destination: String,
        /// Why the path is open (shown in the report and recorded).
        #[arg(long)]
        purpose: String,
    },
    /// Close a declared destination (takes effect at the next start).
    Close {
        /// HOST:PORT, as declared.
        destination: String,
    },
    /// Show the seal of the last start: each control, the layer enforcing it, the probe
    /// results, what it does not cover, and the declaration changes waiting for the next start.
    Status {
        /// Print JSON (as `GET /v1/seal` serves it).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Add a principal.
    Add {
        /// Its name: 1 to 64 of `a-z 0-9 . _ @ -`, e.g. `ana`, `ana@example.org`, `billing`.
        name: String,
        /// `person` or `service`.
        #[arg(long, default_value = "person")]
        kind: String,
        /// A role (repeatable): `admin`, `analyst`, `service`, or any role your policies use.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// An attribute KEY=VALUE (repeatable), e.g. `department=cardiology`, `clearance=2`.
        #[arg(long = "attr")]
        attrs: Vec<String>,
    },
    /// List the principals.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one principal and its tokens.
    Show {
        /// The principal's name.
        name: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable a principal: every token of it is refused from now on.
    Disable {
        /// The principal's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a principal and print it (only this once).
    Issue {
        /// The principal.
        principal: String,
        /// Lifetime: `90d`, `12h`, `30m`, `never`, or an RFC 3339 time.
        #[arg(long, default_value = "90d")]
        expires: String,
        /// Limit the token to these actions (comma-separated), e.g. `infer,read-audit`.
        #[arg(long, value_delimiter = ',')]
        scope: Option<Vec<String>>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (the 12 characters after `sov_`).
    Revoke {
        /// The token's id. Ids issued before 2026-12 may start with `-`; they are taken as
        /// they are (`sov token revoke -AbC...` works, as does `sov token revoke -- -AbC...`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide ACTION on RESOURCE for PRINCIPAL with the policies on disk, and say which
    /// policies decided it. RESOURCE is `type:id`, e.g. `model:smollm2`, `document:d1,clearance=3`.
    Check {
        /// The principal's name.
        principal: String,
        /// The action, e.g. `infer`, `read-audit`, `manage-principals`.
        action: String,
        /// The resource, `type:id[,key=value...]`.
        resource: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate the policy set and show its hash, files and size.
    Show {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the latest entries (those covered by the latest signed checkpoint).
    Tail {
        /// How many entries.
        #[arg(short = 'n', long, default_value_t = 20)]
        count: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one entry in full.
    Show {
        /// The entry's index.
        index: u64,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a receipt (c2sp.org/tlog-proof@v1) for one entry: `sov audit proof N > N.tlog-proof`.
    Proof {
        /// The entry's index.
        index: u64,
    },
    /// Write a static copy of the record (checkpoint, tiles, entry bundles, vkeys) to DIR.
    Export {
        /// The folder to create (must not exist, or be empty).
        dir: PathBuf,
    },
    /// Verify the whole record: every entry, hash, tile, the chain, the checkpoint signatures
    /// and the write-ahead log (`entries.wal`) the tiles are derived from.
    Verify {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Import a model into the store and sign its manifest: a GGUF file, or a
    /// sentence-transformers BERT (a directory or a .zip with config.json, tokenizer.json,
    /// model.safetensors and 1_Pooling/config.json), converted to GGUF on the way.
    Import {
        /// The GGUF file, model directory or .zip.
        #[arg(value_name = "FILE|DIR|ZIP")]
        file: PathBuf,
        /// The name to serve it under (default: from the file name).
        #[arg(long)]
        name: Option<String>,
        /// The chat template to use instead of the GGUF's own (or for a GGUF that has none):
        /// `gemma`, `chatml`, or a .jinja file. Without it, a GGUF with no template of its own
        /// gets the one its architecture implies (gemma3: gemma), if any.
        #[arg(long, value_name = "gemma|chatml|PATH.jinja")]
        chat_template: Option<String>,
    },
    /// List the models in the store.
    List,
    /// Show one model's manifest.
    Show {
        /// The model's name.
        name: String,
    },
    /// Check manifest signatures and every byte of the model files.
    Verify {
        /// The model's name (default: every model).
        name: Option<String>,
    },
    /// Remove a model (and its file, if no other name uses it).
    Rm {
        /// The model's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CorpusCommand {
    /// Add documents (files or folders: Markdown, text, HTML, PDF, DOCX) to a corpus, creating
    /// it if needed; a changed file replaces its old chunks, an unchanged one is skipped.
    Add(CorpusAddArgs),
    /// List the corpora.
    List,
    /// Show one corpus (after checking its signature): its documents and their labels.
    Show {
        /// The corpus.
        name: String,
        /// As JSON (the signed manifest).
        #[arg(long)]
        json: bool,
    },
    /// Remove a corpus, or one document of it.
    Rm {
        /// The corpus.
        name: String,
        /// The document's id (as `show` lists it); without it the whole corpus goes.
        document: Option<String>,
    },
    /// Search a corpus as a principal: only the documents they may read are searched.
    Search {
        /// The corpus.
        name: String,
        /// What to look for.
        query: String,
        /// The principal to search as (default: `owner`).
        #[arg(long = "as", value_name = "PRINCIPAL", default_value = "owner")]
        principal: String,
        /// How many passages (1 to 12).
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CorpusAddArgs {
    /// The corpus: 1 to 64 of `a-z 0-9 . _ -`.
    pub name: String,
    /// Files or folders (a folder is read recursively; its files' ids are their paths in it).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The clearance level of these documents (policies compare it with a principal's).
    #[arg(long)]
    pub clearance: Option<i64>,
    /// An attribute of these documents, KEY=VALUE (repeatable); policies read it as a tag.
    #[arg(long = "attr", value_name = "K=V")]
    pub attrs: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SpecialistCommand {
    /// Add a specialist (or replace one, with --replace) and sign its manifest.
    Add(SpecialistAddArgs),
    /// List the specialists.
    List,
    /// Show one specialist's manifest, after checking its signature.
    Show {
        /// The specialist's name.
        name: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a specialist (and its adapter file, if no other specialist uses it).
    Rm {
        /// The specialist's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct SpecialistAddArgs {
    /// Its name: 1 to 64 of `a-z 0-9 . _ -`; not `auto` (the router's) nor a model's name.
    pub name: String,
    /// The base model, by its name in the model store.
    #[arg(long, value_name = "BASE")]
    pub model: String,
    /// The corpora to ground its answers in, in order (comma-separated, or repeated).
    #[arg(long = "corpus", value_name = "C", value_delimiter = ',')]
    pub corpora: Vec<String>,
    /// What it is for, in plain words: the router picks a specialist by it (default: a
    /// sentence from its name and corpora).
    #[arg(long)]
    pub description: Option<String>,
    /// A UTF-8 file with its instructions, at most 32 KiB (default: answer only from the
    /// numbered passages, cite them as [n], and say so when they do not hold the answer).
    #[arg(long, value_name = "FILE")]
    pub instructions: Option<PathBuf>,
    /// The tools it may call (comma-separated).
    #[arg(long, value_name = "T", value_delimiter = ',')]
    pub tools: Vec<String>,
    /// How its model is offered the tools for a question they do not answer on their own:
    /// `auto` (it may call them) or `required` (its first answer must call one).
    #[arg(long = "tool-choice", value_name = "CHOICE", value_parser = ["auto", "required"], default_value = "auto")]
    pub tool_choice: String,
    /// A LoRA adapter (GGUF) for the base model.
    #[arg(long, value_name = "FILE.gguf")]
    pub adapter: Option<PathBuf>,
    /// Replace the specialist of this name, if there is one.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The question; without it, an interactive session starts.
    pub question: Option<String>,
    /// The model to use (default: `chat.default_model`, or the only model in the store).
    #[arg(long)]
    pub model: Option<String>,
    /// A system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Sampling temperature (0 = always the most likely token; default 0.8).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// The most tokens to generate per answer.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: u32,
    /// Random seed, for repeatable answers.
    #[arg(long)]
    pub seed: Option<u32>,
    /// The principal to act as (it must exist and be enabled; the policies decide what it may
    /// use, as for a request with its token).
    #[arg(long = "as", value_name = "PRINCIPAL", default_value = "owner")]
    pub as_principal: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `server.listen` in sov.toml, 127.0.0.1:8787).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Refuse to start unless every declared layer of the seal is in force and every probe
    /// held (the refusal is recorded).
    #[arg(long)]
    pub require_seal: bool,
    /// For tests of the report: treat a layer of the seal as if the kernel lacked it
    /// (netns, landlock or seccomp). Reported and recorded as such.
    #[arg(long, hide = true, value_name = "LAYER")]
    pub seal_unavailable: Vec<sov_seal::Layer>,
}
