//! Authorisation with Cedar: the schema, the actions and resources, the policy set loaded from
//! `policies/*.cedar`, and decisions that say which policies made them.
//!
//! The default is deny: a request is allowed only when at least one `permit` policy matches and
//! no `forbid` policy does (Cedar's semantics). Every file is parsed and validated against the
//! schema ([`SCHEMA`], strict mode) at load; the first problem stops the load with the file, the
//! line and Cedar's reason, and nothing of the set is used.
//!
//! Policy ids: a policy's `@id("...")` annotation, else `<file>:<line>`. Ids are unique across
//! the set, so a decision can name the policies that made it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, Request, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
use miette::Diagnostic;
use sha2::{Digest as _, Sha256};

use crate::principal::Principal;

/// The Cedar schema every policy is validated against.
pub const SCHEMA: &str = include_str!("schema.cedarschema");

/// The starter policy files `sov init` installs (file name, text).
pub const STARTER: [(&str, &str); 5] = [
    ("admin.cedar", include_str!("../starter/admin.cedar")),
    ("analyst.cedar", include_str!("../starter/analyst.cedar")),
    ("service.cedar", include_str!("../starter/service.cedar")),
    ("monitor.cedar", include_str!("../starter/monitor.cedar")),
    (
        "clearance.cedar",
        include_str!("../starter/clearance.cedar"),
    ),
];

/// What a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Run a model or a specialist.
    Infer,
    /// Call a tool.
    UseTool,
    /// Read a corpus or a document.
    ReadCorpus,
    /// Add documents to a corpus.
    Ingest,
    /// Import, load or remove models.
    ManageModels,
    /// Add, show or disable principals; issue and revoke tokens.
    ManagePrincipals,
    /// Read the audit record.
    ReadAudit,
    /// Change (reload) the policy set.
    ChangePolicy,
    /// Store something in a memory.
    Remember,
    /// Erase something from a memory.
    Forget,
    /// Read the node's operating metrics (`/metrics`).
    ReadMetrics,
}

impl Action {
    /// Every action, in schema order.
    pub const ALL: [Action; 11] = [
        Action::Infer,
        Action::UseTool,
        Action::ReadCorpus,
        Action::Ingest,
        Action::ManageModels,
        Action::ManagePrincipals,
        Action::ReadAudit,
        Action::ChangePolicy,
        Action::Remember,
        Action::Forget,
        Action::ReadMetrics,
    ];

    /// The action's id in Cedar (`Action::"<name>"`) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Infer => "infer",
            Action::UseTool => "use-tool",
            Action::ReadCorpus => "read-corpus",
            Action::Ingest => "ingest",
            Action::ManageModels => "manage-models",
            Action::ManagePrincipals => "manage-principals",
            Action::ReadAudit => "read-audit",
            Action::ChangePolicy => "change-policy",
            Action::Remember => "remember",
            Action::Forget => "forget",
            Action::ReadMetrics => "read-metrics",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAction(s.chars().filter(|c| !c.is_control()).take(64).collect()))
    }
}

/// An action name that is not in the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown action `{0}` (actions: infer, use-tool, read-corpus, ingest, manage-models, manage-principals, read-audit, change-policy, remember, forget, read-metrics)"
)]
pub struct UnknownAction(String);

/// What an action is about: a Cedar entity of one of the schema's resource types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `Model::"<name>"`.
    Model(String),
    /// `Specialist::"<name>"`.
    Specialist(String),
    /// `Tool::"<name>"`.
    Tool(String),
    /// `Corpus::"<name>"`.
    Corpus(String),
    /// `Document::"<id>"`, in its corpus, with an optional clearance level and the owner's
    /// attributes (Cedar tags).
    Document {
        id: String,
        corpus: Option<String>,
        clearance: Option<i64>,
        attrs: BTreeMap<String, String>,
    },
    /// `Memory::"<id>"`, owned by a principal.
    Memory { id: String, owner: String },
    /// `AuditLog::"<name>"`.
    AuditLog(String),
    /// `Node::"<node>"`: node-wide actions.
    Node(String),
    /// `Principal::"<name>"`: managing one principal.
    Principal(String),
}

impl Resource {
    /// The entity type's name in the schema.
    pub fn type_name(&self) -> &'static str {
        match self {
            Resource::Model(_) => "Model",
            Resource::Specialist(_) => "Specialist",
            Resource::Tool(_) => "Tool",
            Resource::Corpus(_) => "Corpus",
            Resource::Document { .. } => "Document",
            Resource::Memory { .. } => "Memory",
            Resource::AuditLog(_) => "AuditLog",
            Resource::Node(_) => "Node",
            Resource::Principal(_) => "Principal",
        }
    }

    /// The entity's id.
    pub fn id(&self) -> &str {
        match self {
            Resource::Model(id)
            | Resource::Specialist(id)
            | Resource::Tool(id)
            | Resource::Corpus(id)
            | Resource::AuditLog(id)
            | Resource::Node(id)
            | Resource::Principal(id)
            | Resource::Document { id, .. }
            | Resource::Memory { id, .. } => id,
        }
    }

    /// Parses the command line's form `type:id[,key=value...]`, e.g. `model:smollm2`,
    /// `document:report-7,corpus=oncology,clearance=3`, `memory:notes,owner=alice`.
    pub fn parse(s: &str) -> Result<Self, InvalidResource> {
        let bad = |why: &str| InvalidResource(format!("`{s}`: {why}"));
        let (head, rest) = s.split_once(',').map_or((s, ""), |(h, r)| (h, r));
        let (kind, id) = head
            .split_once(':')
            .ok_or_else(|| bad("write it as type:id, e.g. model:smollm2-135m-instruct"))?;
        if id.is_empty() || id.chars().any(char::is_control) {
            return Err(bad("the id is empty or has control characters"));
        }
        let mut attrs = BTreeMap::new();
        for pair in rest.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad("attributes are key=value"))?;
            attrs.insert(k, v);
        }
        let id = id.to_owned();
        // A document's other keys are its attributes (tags); other types have fixed keys.
        let is_document = kind.eq_ignore_ascii_case("document");
        let allowed: &[&str] = match kind.to_ascii_lowercase().as_str() {
            "memory" => &["owner"],
            _ => &[],
        };
        if let Some(k) = attrs.keys().find(|k| !is_document && !allowed.contains(k)) {
            return Err(bad(&format!("`{k}` is not an attribute of a {kind}")));
        }
        Ok(match kind.to_ascii_lowercase().as_str() {
            "model" => Resource::Model(id),
            "specialist" => Resource::Specialist(id),
            "tool" => Resource::Tool(id),
            "corpus" => Resource::Corpus(id),
            "auditlog" | "audit" => Resource::AuditLog(id),
            "node" => Resource::Node(id),
            "principal" => Resource::Principal(id),
            "document" => Resource::Document {
                id,
                corpus: attrs.get("corpus").map(|c| (*c).to_owned()),
                clearance: match attrs.get("clearance") {
                    Some(c) => Some(c.parse().map_err(|_| bad("clearance is an integer"))?),
                    None => None,
                },
                attrs: attrs
                    .iter()
                    .filter(|(k, _)| !matches!(**k, "corpus" | "clearance"))
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            "memory" => Resource::Memory {
                id,
                owner: attrs
                    .get("owner")
                    .ok_or_else(|| bad("a memory needs its owner: memory:ID,owner=NAME"))?
                    .to_string(),
            },
            _ => {
                return Err(bad(
                    "unknown type (model, specialist, tool, corpus, document, memory, auditlog, node, principal)",
                ));
            }
        })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::\"{}\"", self.type_name(), escape(self.id()))
    }
}

fn escape(s: &str) -> String {
    s.chars().flat_map(char::escape_default).collect()
}

/// A resource the command line could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource {0}")]
pub struct InvalidResource(String);

/// One policy file's name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// The file name (`admin.cedar`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// Where a policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Its id in the set.
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// The file it is in.
    pub file: String,
    /// The line it starts on (1-based).
    pub line: usize,
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}` ({}:{})",
            self.effect, self.id, self.file, self.line
        )
    }
}

/// Why a policy set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or the folder could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file does not parse or does not validate against the schema.
    #[error("{file}:{line}:{column}: {reason}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// The schema itself did not load (a bug in this build).
    #[error("the built-in Cedar schema does not load: {0}")]
    Schema(String),
}

/// The policy set in force, with the schema it was validated against.
#[derive(Debug, Clone)]
pub struct Policies {
    set: PolicySet,
    schema: Arc<Schema>,
    hash: [u8; 32],
    sources: HashMap<PolicyId, PolicySource>,
    files: Vec<String>,
}

fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(s, _warnings)| s)
        .map_err(|e| PolicyError::Schema(e.to_string()))
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The first labelled location of a Cedar diagnostic and its message (with Cedar's help).
fn invalid(file: &str, text: &str, diag: &dyn Diagnostic) -> PolicyError {
    let offset = diag
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or(0, |l| l.offset());
    let (line, column) = line_col(text, offset);
    let mut reason = diag.to_string();
    if let Some(help) = diag.help() {
        reason.push_str(&format!(" ({help})"));
    }
    PolicyError::Invalid {
        file: file.to_owned(),
        line,
        column,
        reason,
    }
}

impl Policies {
    /// Loads every `*.cedar` file in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read_err = |path: &Path, source| PolicyError::Read {
            path: path.to_owned(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
            let entry = entry.map_err(|e| read_err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".cedar") && !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let path = dir.join(&name);
            let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
            files.push(PolicyFile { name, text });
        }
        Self::from_files(&files)
    }

    /// The starter set, as `sov init` installs it.
    pub fn starter() -> Result<Self, PolicyError> {
        let files: Vec<PolicyFile> = STARTER
            .iter()
            .map(|(name, text)| PolicyFile {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            })
            .collect();
        Self::from_files(&files)
    }

    /// Parses and validates `files` as one set.
    pub fn from_files(files: &[PolicyFile]) -> Result<Self, PolicyError> {
        let schema = schema()?;
        let validator = Validator::new(schema.clone());
        let mut set = PolicySet::new();
        let mut sources = HashMap::new();
        let mut by_id: HashMap<String, PolicySource> = HashMap::new();
        for file in files {
            let parsed =
                PolicySet::from_str(&file.text).map_err(|e| invalid(&file.name, &file.text, &e))?;
            if let Some(t) = parsed.templates().next() {
                let at = t.to_cedar();
                let offset = file.text.find(at.as_str()).unwrap_or(0);
                let (line, column) = line_col(&file.text, offset);
                return Err(PolicyError::Invalid {
                    file: file.name.clone(),
                    line,
                    column,
                    reason:
                        "templates (?principal, ?resource) are not supported: write static policies"
                            .into(),
                });
            }
            // Policies come back as policy0, policy1, ... in source order: find each one's
            // text in the file to know its line.
            let mut policies: Vec<&Policy> = parsed.policies().collect();
            policies.sort_by_key(|p| {
                AsRef::<str>::as_ref(p.id())
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            let mut cursor = 0;
            let mut named = Vec::with_capacity(policies.len());
            for policy in policies {
                let offset = policy
                    .to_cedar()
                    .and_then(|t| {
                        file.text
                            .get(cursor..)?
                            .find(t.as_str())
                            .map(|o| o + cursor)
                    })
                    .unwrap_or(cursor);
                cursor = offset + 1;
                let (line, _) = line_col(&file.text, offset);
                let id = match policy.annotation("id") {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => format!("{}:{line}", file.name),
                };
                named.push((policy, id, line));
            }
            let result = validator.validate(&parsed, ValidationMode::Strict);
            if let Some(e) = result.validation_errors().next() {
                let mut err = invalid(&file.name, &file.text, e);
                // Cedar names the policy by its internal id; say the user's instead.
                if let PolicyError::Invalid { reason, .. } = &mut err {
                    for (policy, id, _) in &named {
                        let internal = format!("`{}`", AsRef::<str>::as_ref(policy.id()));
                        *reason = reason.replace(&internal, &format!("`{id}`"));
                    }
                }
                return Err(err);
            }
            for (policy, id, line) in named {
                let source = PolicySource {
                    id: id.clone(),
                    effect: match policy.effect() {
                        cedar_policy::Effect::Permit => "permit",
                        cedar_policy::Effect::Forbid => "forbid",
                    },
                    file: file.name.clone(),
                    line,
                };
                if let Some(first) = by_id.get(&id) {
                    return Err(PolicyError::Invalid {
                        file: file.name.clone(),
                        line,
                        column: 1,
                        reason: format!(
                            "policy id `{id}` is already used by the policy at {}:{}",
                            first.file, first.line
                        ),
                    });
                }
                let pid = PolicyId::new(&id);
                set.add(policy.new_id(pid.clone()))
                    .map_err(|e| PolicyError::Invalid {
                        file: file.name.clone(),
                        line,
                        column: 1,
                        reason: e.to_string(),
                    })?;
                by_id.insert(id, source.clone());
                sources.insert(pid, source);
            }
        }
        Ok(Self {
            set,
            schema: Arc::new(schema),
            hash: set_hash(files),
            sources,
            files: files.iter().map(|f| f.name.clone()).collect(),
        })
    }

    /// SHA-256 over the schema and every file's name and text: what "the policy set in force"
    /// means in the audit record.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The hash in hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// The files in the set, in load order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether the set holds no policy (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Decides whether `principal` may do `action` on `resource`. For a [`Resource::Principal`]
    /// other than the caller, use [`Policies::decide_on`] with the target's record.
    pub fn decide(&self, principal: &Principal, action: Action, resource: &Resource) -> Decision {
        self.decide_on(principal, action, resource, None)
    }

    /// [`Policies::decide`], with the record of the principal a [`Resource::Principal`] names.
    pub fn decide_on(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        target: Option<&Principal>,
    ) -> Decision {
        match self.evaluate(principal, action, resource, target) {
            Ok(d) => d,
            Err(reason) => Decision {
                allowed: false,
                basis: Basis::Invalid(reason),
                policies: Vec::new(),
                errors: Vec::new(),
            },
        }
    }

    fn evaluate(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        target: Option<&Principal>,
    ) -> Result<Decision, String> {
        let p_uid = uid("Principal", &principal.name)?;
        let a_uid = uid("Action", action.name())?;
        let r_uid = uid(resource.type_name(), resource.id())?;
        let mut entities = Vec::with_capacity(4 + principal.roles.len());
        push_principal(&mut entities, principal)?;
        if r_uid != p_uid {
            match resource {
                Resource::Document {
                    corpus,
                    clearance,
                    attrs: tags,
                    ..
                } => {
                    let mut attrs = HashMap::new();
                    if let Some(level) = clearance {
                        attrs.insert(
                            "clearance".to_owned(),
                            RestrictedExpression::new_long(*level),
                        );
                    }
                    let mut parents = HashSet::new();
                    if let Some(c) = corpus {
                        parents.insert(uid("Corpus", c)?);
                    }
                    let tags = tags
                        .iter()
                        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
                    entities.push(
                        Entity::new_with_tags(r_uid.clone(), attrs, parents, tags)
                            .map_err(|e| e.to_string())?,
                    );
                }
                Resource::Memory { owner, .. } => {
                    let attrs = HashMap::from([(
                        "owner".to_owned(),
                        RestrictedExpression::new_entity_uid(uid("Principal", owner)?),
                    )]);
                    entities.push(
                        Entity::new(r_uid.clone(), attrs, HashSet::new())
                            .map_err(|e| e.to_string())?,
                    );
                }
                // A principal that does not exist is decided on as one with no roles and no
                // attributes, so the decision (and the refusal the caller sees) names the same
                // resource whether or not it exists: a refusal reveals nothing.
                Resource::Principal(name) => match target {
                    Some(t) if &t.name == name => push_principal(&mut entities, t)?,
                    Some(t) => {
                        return Err(format!(
                            "the record of principal `{}` was given for principal `{name}`",
                            t.name
                        ));
                    }
                    None => entities.push(Entity::new_no_attrs(r_uid.clone(), HashSet::new())),
                },
                _ => entities.push(Entity::new_no_attrs(r_uid.clone(), HashSet::new())),
            }
        }
        // The entities are built here, from the directory, with the schema's types (the tests'
        // matrix covers each attribute), and the schema has no action groups: validating them
        // against the schema on every call cost a quarter of the decision, so it is not done.
        // The request itself is still checked against the schema below.
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let request = Request::new(p_uid, a_uid, r_uid, Context::empty(), Some(&self.schema))
            .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.set, &entities);
        let allowed = response.decision() == CedarDecision::Allow;
        let policies: Vec<PolicySource> = response
            .diagnostics()
            .reason()
            .filter_map(|id| self.sources.get(id).cloned())
            .collect();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        let basis = if allowed {
            Basis::Permitted
        } else if policies.is_empty() {
            Basis::NoPermit
        } else {
            Basis::Forbidden
        };
        Ok(Decision {
            allowed,
            basis,
            policies,
            errors,
        })
    }
}

/// Adds a principal's entity and its roles' entities.
fn push_principal(entities: &mut Vec<Entity>, principal: &Principal) -> Result<(), String> {
    let mut roles = HashSet::with_capacity(principal.roles.len());
    for role in &principal.roles {
        let r = uid("Role", role)?;
        if !entities.iter().any(|e| e.uid() == r) {
            entities.push(Entity::new_no_attrs(r.clone(), HashSet::new()));
        }
        roles.insert(r);
    }
    let mut attrs = HashMap::new();
    let mut tags = Vec::new();
    attrs.insert(
        "kind".to_owned(),
        RestrictedExpression::new_string(principal.kind.name().to_owned()),
    );
    for (k, v) in &principal.attrs {
        match k.as_str() {
            "department" => {
                attrs.insert(k.clone(), RestrictedExpression::new_string(v.clone()));
            }
            "clearance" => {
                let level = v.parse::<i64>().map_err(|_| {
                    format!("clearance `{v}` of `{}` is not an integer", principal.name)
                })?;
                attrs.insert(k.clone(), RestrictedExpression::new_long(level));
            }
            _ => tags.push((k.clone(), RestrictedExpression::new_string(v.clone()))),
        }
    }
    let uid = uid("Principal", &principal.name)?;
    entities.push(Entity::new_with_tags(uid, attrs, roles, tags).map_err(|e| e.to_string())?);
    Ok(())
}

/// The schema's entity type names, parsed once: Cedar's parser is most of the cost of building
/// a request's entities when it runs on every call.
const TYPE_NAMES: [&str; 11] = [
    "Principal",
    "Role",
    "Action",
    "Model",
    "Specialist",
    "Tool",
    "Corpus",
    "Document",
    "Memory",
    "AuditLog",
    "Node",
];

fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    static PARSED: std::sync::OnceLock<Vec<(&'static str, EntityTypeName)>> =
        std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        TYPE_NAMES
            .iter()
            .filter_map(|n| EntityTypeName::from_str(n).ok().map(|t| (*n, t)))
            .collect()
    });
    let t = match parsed.iter().find(|(n, _)| *n == type_name) {
        Some((_, t)) => t.clone(),
        None => EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?,
    };
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn set_hash(files: &[PolicyFile]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sovereign/policy-set/v1\n");
    h.update((SCHEMA.len() as u64).to_be_bytes());
    h.update(SCHEMA.as_bytes());
    for f in files {
        h.update((f.name.len() as u64).to_be_bytes());
        h.update(f.name.as_bytes());
        h.update((f.text.len() as u64).to_be_bytes());
        h.update(f.text.as_bytes());
    }
    h.finalize().into()
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// A `permit` matched and no `forbid` did.
    Permitted,
    /// A `forbid` matched.
    Forbidden,
    /// No policy permits it: the default deny.
    NoPermit,
    /// The token used is limited to other actions (`sov token issue --scope`).
    OutOfScope,
    /// The request does not fit the schema (e.g. an action on a resource type it does not
    /// apply to).
    Invalid(String),
}

/// An authorisation decision and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    basis: Basis,
    policies: Vec<PolicySource>,
    errors: Vec<String>,
}

impl Decision {
    /// Allowed or not.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Why.
    pub fn basis(&self) -> &Basis {
        &self.basis
    }

    /// The policies that determined it: the matching permits for an allow, the matching forbids
    /// for a deny by policy.
    pub fn policies(&self) -> &[PolicySource] {
        &self.policies
    }

    /// Policies that failed to evaluate (Cedar skips them: an error never allows).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// A denial because the token's scope excludes the action.
    pub(crate) fn out_of_scope() -> Self {
        Self {
            allowed: false,
            basis: Basis::OutOfScope,
            policies: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// `allow` or `deny`.
    pub fn word(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    /// The ids of the determining policies, comma-separated (for the audit entry).
    pub fn policy_ids(&self) -> String {
        self.policies
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One line saying why, for people and the audit entry.
    pub fn explain(&self) -> String {
        let list = || {
            self.policies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.basis {
            Basis::Permitted => format!("allowed by {}", list()),
            Basis::Forbidden => format!("denied by {}", list()),
            Basis::NoPermit => "denied: no policy permits it (the default is deny)".to_owned(),
            Basis::OutOfScope => {
                "denied: the token's scope does not include this action".to_owned()
            }
            Basis::Invalid(why) => format!("denied: the request does not fit the schema: {why}"),
        }
    }
}
