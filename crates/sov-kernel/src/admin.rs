//! Administration: principals, tokens and the policy set, each change taking the [`Permit`]
//! that allows it. A change lands in the record through the directory's outbox (its
//! `identity.change` or `policy.change` entry, moved into the log before the call returns) and
//! through the request's own entry.

use std::collections::BTreeSet;
use std::sync::Arc;

use sov_audit_core::entry::{Kind, Outcome};
use sov_policy::token::NewToken;
use sov_policy::{
    Action, NewPrincipal, Permit, Policies, Principal, Resource, StoreError, TokenInfo,
};

use crate::Kernel;
use crate::exchange::Exchange;
use crate::infer::KernelError;
use crate::node::NodeEntry;

impl Kernel {
    /// Runs a blocking directory call off the async threads.
    async fn directory<T: Send + 'static>(
        &self,
        f: impl FnOnce(&sov_policy::Directory) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, KernelError> {
        let dir = self.guard().directory().clone();
        tokio::task::spawn_blocking(move || f(&dir))
            .await
            .map_err(|e| KernelError::Internal(e.to_string()))?
            .map_err(KernelError::Store)
    }

    /// Moves the directory's queued entries into the record.
    async fn drain(&self) -> Result<(), KernelError> {
        let log = self.log().clone();
        self.directory(move |d| d.drain_outbox(&log))
            .await
            .map(drop)
    }

    /// Checks that `permit` is for `action` on the node or on `on` (a principal's resource).
    fn require(
        &self,
        permit: &Permit,
        action: Action,
        on: Option<&Resource>,
    ) -> Result<(), KernelError> {
        let node = self.node();
        if permit.covers(action, &node) || on.is_some_and(|r| permit.covers(action, r)) {
            Ok(())
        } else {
            Err(KernelError::Internal(format!(
                "a permit to {} on {} does not allow {action}",
                permit.action(),
                permit.resource()
            )))
        }
    }

    /// The record of principal `name`, if it exists (to decide on it).
    pub async fn principal_record(&self, name: &str) -> Result<Option<Principal>, KernelError> {
        let name = name.to_owned();
        self.directory(move |d| d.principal(&name)).await
    }

    /// The token `id`'s listing, if it exists (to decide on its principal).
    pub async fn token_record(&self, id: &str) -> Result<Option<TokenInfo>, KernelError> {
        let id = id.to_owned();
        self.directory(move |d| d.token(&id)).await
    }

    /// Every principal.
    pub async fn principals(&self, permit: &Permit) -> Result<Vec<Principal>, KernelError> {
        self.require(permit, Action::ManagePrincipals, None)?;
        self.directory(|d| d.principals()).await
    }

    /// The tokens (of one principal, or all), never their secrets.
    pub async fn tokens(
        &self,
        permit: &Permit,
        principal: Option<String>,
    ) -> Result<Vec<TokenInfo>, KernelError> {
        let on = principal.clone().map(Resource::Principal);
        self.require(permit, Action::ManagePrincipals, on.as_ref())?;
        self.directory(move |d| d.tokens(principal.as_deref()))
            .await
    }

    /// A directory change allowed by `permit` (to manage principals, on the node or on `on`),
    /// made as the permit's principal, then moved into the record before it returns.
    async fn change<T: Send + 'static>(
        &self,
        permit: &Permit,
        on: Option<Resource>,
        f: impl FnOnce(&sov_policy::Directory, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, KernelError> {
        self.require(permit, Action::ManagePrincipals, on.as_ref())?;
        let actor = permit.principal().to_owned();
        let done = self.directory(move |d| f(d, &actor)).await?;
        self.drain().await?;
        Ok(done)
    }

    /// Adds a principal.
    pub async fn add_principal(
        &self,
        permit: &Permit,
        new: NewPrincipal,
    ) -> Result<Principal, KernelError> {
        self.change(permit, None, move |d, actor| d.add_principal(&new, actor))
            .await
    }

    /// Disables a principal: every token of theirs is refused from now on.
    pub async fn disable_principal(
        &self,
        permit: &Permit,
        name: &str,
    ) -> Result<Principal, KernelError> {
        let name = name.to_owned();
        let on = Some(Resource::Principal(name.clone()));
        self.change(permit, on, move |d, actor| {
            d.disable_principal(&name, actor)
        })
        .await
    }

    /// Issues a token (its secret is in the answer only).
    pub async fn issue_token(
        &self,
        permit: &Permit,
        principal: &str,
        expires_ms: Option<u64>,
        scope: Option<BTreeSet<Action>>,
    ) -> Result<(NewToken, TokenInfo), KernelError> {
        let principal = principal.to_owned();
        let on = Some(Resource::Principal(principal.clone()));
        self.change(permit, on, move |d, actor| {
            d.issue_token(&principal, expires_ms, scope.as_ref(), actor)
        })
        .await
    }

    /// Revokes token `id` of `principal`.
    pub async fn revoke_token(
        &self,
        permit: &Permit,
        principal: &str,
        id: &str,
    ) -> Result<TokenInfo, KernelError> {
        let id = id.to_owned();
        let on = Some(Resource::Principal(principal.to_owned()));
        self.change(permit, on, move |d, actor| d.revoke_token(&id, actor))
            .await
    }

    /// Reads the policy folder again. On success the new set is in force and the directory
    /// queues the `policy.change` entry (old, new) as a start does; on failure the old set
    /// stays and the attempt is a `policy.change` entry with outcome `error`. Returns the
    /// previous hash and the new set.
    pub async fn reload_policies(
        &self,
        ex: &mut Exchange,
        permit: &Permit,
    ) -> Result<(String, Arc<Policies>), KernelError> {
        self.require(permit, Action::ChangePolicy, None)?;
        ex.set_kind(Kind::PolicyChange);
        let old_hash = self.guard().policies().hash_hex();
        let kernel = self.clone();
        let result = tokio::task::spawn_blocking(move || kernel.guard().reload())
            .await
            .map_err(|e| KernelError::Internal(e.to_string()))?;
        let actor = permit.principal().to_owned();
        match result {
            Ok((_, new)) => {
                let (hash, files) = (new.hash_hex(), new.files().to_vec());
                self.directory(move |d| d.policy_loaded(&hash, &files, "policy.reload", &actor))
                    .await?;
                self.drain().await?;
                Ok((old_hash, new))
            }
            Err(e) => {
                let mut entry = NodeEntry::new(Kind::PolicyChange, "policies", Outcome::Error)
                    .reason(e.to_string())
                    .attr("change", "policy.reload")
                    .attr("old", &old_hash)
                    .attr("route", &ex.door().route);
                if let Some(peer) = &ex.door().peer {
                    entry = entry.attr("peer", peer);
                }
                entry.record_async(self.log(), &actor).await?;
                Err(KernelError::Policy(e))
            }
        }
    }
}
