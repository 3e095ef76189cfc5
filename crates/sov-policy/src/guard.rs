//! The guard: who is calling ([`Caller`], only made by authentication) and whether they may
//! ([`Verdict`], whose allowed form yields a [`Permit`], only made here).
//!
//! Proof tokens, as rustls does for a verified certificate: an action that must be authorised
//! takes the [`Permit`] for its action and resource, and nothing outside this crate can make
//! one, so "forgot to check" does not compile. The same holds for a [`Caller`]: it comes out of
//! [`Guard::authenticate`] (a bearer token) or [`Guard::local`] (a command run by whoever can
//! read the node's home), never from a struct literal.
//!
//! ```compile_fail
//! // A Permit cannot be made outside sov-policy:
//! let permit = sov_policy::Permit {
//!     action: sov_policy::Action::Infer,
//!     resource: sov_policy::Resource::Model("m".into()),
//!     principal: "mallory".into(),
//! };
//! ```
//!
//! ```compile_fail
//! // Nor can a Caller:
//! fn forge(principal: sov_policy::Principal) -> sov_policy::Caller {
//!     sov_policy::Caller { principal, credential: sov_policy::Credential::Local("x".into()), scope: None }
//! }
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::policy::{Action, Decision, Policies, PolicyError, Resource};
use crate::principal::Principal;
use crate::session::{Opened, SessionError, SessionInfo, SessionLimits, Sessions};
use crate::store::{AuthError, Directory, StoreError, now_ms};
use crate::token::Malformed;

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token (its public id).
    Token(String),
    /// A local command, run by this operating-system user with access to the node's home.
    Local(String),
    /// A session opened with a bearer token (see [`crate::session`]).
    Session {
        /// The token's public id.
        token: String,
        /// The session's public id.
        session: String,
    },
}

/// An authenticated caller. Private fields: only authentication makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    principal: Principal,
    credential: Credential,
    scope: Option<BTreeSet<Action>>,
}

impl Caller {
    pub(crate) fn new(
        principal: Principal,
        credential: Credential,
        scope: Option<BTreeSet<Action>>,
    ) -> Self {
        Self {
            principal,
            credential,
            scope,
        }
    }

    /// The same caller, proved another way (a session opened with its token).
    pub(crate) fn with_credential(self, credential: Credential) -> Self {
        Self { credential, ..self }
    }

    /// Who.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The principal's name.
    pub fn name(&self) -> &str {
        &self.principal.name
    }

    /// How they proved it.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The token's public id, for a caller with a token.
    pub fn token_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Token(id) | Credential::Session { token: id, .. } => Some(id),
            Credential::Local(_) => None,
        }
    }

    /// The session's public id, for a caller acting through a session.
    pub fn session_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { session, .. } => Some(session),
            Credential::Token(_) | Credential::Local(_) => None,
        }
    }

    /// The actions the token is limited to; `None`: every action the policies allow.
    pub fn scope(&self) -> Option<&BTreeSet<Action>> {
        self.scope.as_ref()
    }

    /// Whether the token's scope includes `action`.
    pub fn in_scope(&self, action: Action) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(&action))
    }
}

/// Proof that `principal` may do `action` on `resource`: made only by [`Verdict::into_permit`]
/// of an allowed decision, taken by the action it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a permit is the proof the action needs"]
pub struct Permit {
    action: Action,
    resource: Resource,
    principal: String,
}

impl Permit {
    /// The action allowed.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The resource it is allowed on.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Who is allowed.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Whether this permit is for `action` on `resource`.
    pub fn covers(&self, action: Action, resource: &Resource) -> bool {
        self.action == action && &self.resource == resource
    }
}

/// A decision for a caller, with the policy set that made it; allowed, it becomes a [`Permit`].
#[derive(Debug, Clone)]
#[must_use = "a verdict must be recorded and obeyed"]
pub struct Verdict {
    decision: Decision,
    policy_set: String,
    action: Action,
    resource: Resource,
    principal: String,
}

impl Verdict {
    /// The decision and why.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Whether it allows.
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }

    /// The hash (hex) of the policy set that decided.
    pub fn policy_set(&self) -> &str {
        &self.policy_set
    }

    /// The action decided.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The resource decided on.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The permit, if allowed; the decision otherwise.
    pub fn into_permit(self) -> Result<Permit, Decision> {
        if self.decision.is_allowed() {
            Ok(Permit {
                action: self.action,
                resource: self.resource,
                principal: self.principal,
            })
        } else {
            Err(self.decision)
        }
    }
}

/// The directory and the policy set in force: authentication and authorisation, nothing else
/// (recording a decision is the kernel's step; rate limits are the front door's).
#[derive(Debug)]
pub struct Guard {
    directory: Arc<Directory>,
    policies: RwLock<Arc<Policies>>,
    policy_dir: Option<PathBuf>,
    sessions: Sessions,
}

impl Guard {
    /// A guard over `directory` with `policies` (loaded from `policy_dir`, which
    /// [`Guard::reload`] reads again).
    pub fn new(directory: Arc<Directory>, policies: Policies, policy_dir: Option<PathBuf>) -> Self {
        Self {
            directory,
            policies: RwLock::new(Arc::new(policies)),
            policy_dir,
            sessions: Sessions::new(SessionLimits::default()),
        }
    }

    /// The same guard with sessions of these limits (before any is opened).
    pub fn with_session_limits(mut self, limits: SessionLimits) -> Self {
        self.sessions = Sessions::new(limits);
        self
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The policy set in force.
    pub fn policies(&self) -> Arc<Policies> {
        match self.policies.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the policy folder again; on success the new set is in force and the old one is
    /// returned with it. On failure nothing changes.
    pub fn reload(&self) -> Result<(Arc<Policies>, Arc<Policies>), PolicyError> {
        let Some(dir) = &self.policy_dir else {
            return Err(PolicyError::Read {
                path: PathBuf::from("policies"),
                source: std::io::Error::other("this server was started without a policy folder"),
            });
        };
        let new = Arc::new(Policies::load_dir(dir)?);
        let mut slot = match self.policies.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old = std::mem::replace(&mut *slot, new.clone());
        Ok((old, new))
    }

    /// Authenticates a presented bearer token (`Ok(None)`: none was presented; `Err`: the
    /// header was malformed). Store failures are errors of their own (500, not 401).
    pub fn authenticate(
        &self,
        presented: Result<Option<&str>, Malformed>,
    ) -> Result<Result<Caller, AuthError>, StoreError> {
        match presented {
            Err(m) => Ok(Err(AuthError::Malformed(m))),
            Ok(token) => self.directory.authenticate(token, now_ms()),
        }
    }

    /// Opens a session for `caller`, just authenticated with a bearer token: the caller acting
    /// through it and its secrets (see [`crate::session`]). A caller without a token (a local
    /// command, or one already in a session) cannot open one.
    pub fn open_session(&self, caller: Caller) -> Result<(Caller, Opened), StoreError> {
        self.sessions.open(caller, Instant::now(), now_ms())
    }

    /// The caller of a request presenting session `secret` (its token checked again).
    pub fn resume(&self, secret: &str) -> Result<Result<Caller, SessionError>, StoreError> {
        self.sessions
            .resume(&self.directory, secret, Instant::now(), now_ms())
    }

    /// The session `caller` acts through, if any and still open.
    pub fn session(&self, caller: &Caller) -> Option<SessionInfo> {
        self.sessions.info(caller)
    }

    /// Ends `caller`'s session; whether one was open.
    pub fn sign_out(&self, caller: &Caller) -> bool {
        self.sessions.close(caller)
    }

    /// The limits sessions are opened with.
    pub fn session_limits(&self) -> SessionLimits {
        self.sessions.limits()
    }

    /// The caller of a local command: principal `name` (which must exist and be enabled), acting
    /// through operating-system user `os_user`, who can read the node's home (its keys and its
    /// identity database) and so holds every power the home gives. The policies still decide
    /// each action.
    pub fn local(&self, name: &str, os_user: &str) -> Result<Caller, StoreError> {
        let principal = self
            .directory
            .principal(name)?
            .ok_or_else(|| StoreError::NoPrincipal(name.to_owned()))?;
        if principal.disabled_ms.is_some() {
            return Err(StoreError::Disabled(name.to_owned()));
        }
        Ok(Caller::new(
            principal,
            Credential::Local(os_user.to_owned()),
            None,
        ))
    }

    /// Decides `action` on `resource` for `caller`: the token's scope first, then Cedar.
    /// `target` is the record of a principal the resource names, if it exists.
    pub fn decide(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        target: Option<&Principal>,
    ) -> Verdict {
        let policies = self.policies();
        let decision = if caller.in_scope(action) {
            policies.decide_on(&caller.principal, action, resource, target)
        } else {
            Decision::out_of_scope()
        };
        Verdict {
            decision,
            policy_set: policies.hash_hex(),
            action,
            resource: resource.clone(),
            principal: caller.principal.name.clone(),
        }
    }
}
