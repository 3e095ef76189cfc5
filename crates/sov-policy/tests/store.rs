//! The directory against real SQLite: principals, the token lifecycle, scopes, the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use sov_audit::{AuditLog, LogConfig};
use sov_audit_core::entry::{Entry, Kind};
use sov_policy::store::now_ms;
use sov_policy::{Action, AuthError, Directory, NewPrincipal, PrincipalKind, StoreError};

fn dir() -> (tempfile::TempDir, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let d = Directory::open(&tmp.path().join("state/identity.db")).unwrap();
    (tmp, d)
}

fn person(name: &str, roles: &[&str]) -> NewPrincipal {
    NewPrincipal {
        name: name.into(),
        kind: PrincipalKind::Person,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        attrs: BTreeMap::new(),
    }
}

#[test]
fn principals_are_added_listed_and_disabled() {
    let (_t, d) = dir();
    let mut ana = person("ana", &["analyst"]);
    ana.attrs.insert("clearance".into(), "2".into());
    let added = d.add_principal(&ana, "local:root").unwrap();
    assert_eq!(added.roles, BTreeSet::from(["analyst".to_owned()]));
    assert!(matches!(
        d.add_principal(&ana, "local:root"),
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        d.add_principal(&person("Bad Name", &[]), "x"),
        Err(StoreError::Invalid(_))
    ));
    let mut bad = person("bo", &[]);
    bad.attrs.insert("clearance".into(), "top".into());
    assert!(matches!(
        d.add_principal(&bad, "x"),
        Err(StoreError::Invalid(_))
    ));
    d.add_principal(&person("bo", &[]), "x").unwrap();
    let names: Vec<_> = d
        .principals()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["ana", "bo"]);
    let shown = d.principal("ana").unwrap().unwrap();
    assert_eq!(shown.attrs["clearance"], "2");
    assert!(shown.disabled_ms.is_none());
    let disabled = d.disable_principal("ana", "x").unwrap();
    assert!(disabled.disabled_ms.is_some());
    assert!(matches!(
        d.disable_principal("zed", "x"),
        Err(StoreError::NoPrincipal(_))
    ));
    // A disabled principal gets no new token.
    assert!(matches!(
        d.issue_token("ana", None, None, "x"),
        Err(StoreError::Disabled(_))
    ));
}

#[test]
fn the_token_lifecycle() {
    let (_t, d) = dir();
    d.add_principal(&person("ana", &["analyst"]), "x").unwrap();
    let now = now_ms();
    let (token, info) = d.issue_token("ana", Some(now + 60_000), None, "x").unwrap();
    assert!(token.secret().starts_with("sov_"));
    assert_eq!(info.id, token.id());

    // Valid now.
    let caller = d.authenticate(Some(token.secret()), now).unwrap().unwrap();
    assert_eq!(caller.name(), "ana");
    assert_eq!(caller.token_id(), Some(token.id()));
    assert!(caller.in_scope(Action::ReadAudit));

    // Expired after its time.
    let err = d
        .authenticate(Some(token.secret()), now + 60_000)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::Expired {
            id: token.id().into()
        }
    );

    // The same id with another secret is unknown, as is a token never issued.
    let mut forged = token.secret().to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'Q' } else { 'A' });
    let err = d.authenticate(Some(&forged), now).unwrap().unwrap_err();
    assert_eq!(err.code(), "unknown", "{err:?}");
    let other = sov_policy::token::NewToken::generate().unwrap();
    assert_eq!(
        d.authenticate(Some(other.secret()), now)
            .unwrap()
            .unwrap_err()
            .code(),
        "unknown"
    );
    assert_eq!(
        d.authenticate(None, now).unwrap().unwrap_err(),
        AuthError::Missing
    );
    assert_eq!(
        d.authenticate(Some("sk-1234"), now)
            .unwrap()
            .unwrap_err()
            .code(),
        "malformed"
    );

    // Revoked.
    d.revoke_token(token.id(), "x").unwrap();
    assert_eq!(
        d.authenticate(Some(token.secret()), now)
            .unwrap()
            .unwrap_err(),
        AuthError::Revoked {
            id: token.id().into()
        }
    );
    // Revoking again changes nothing; an unknown id is an error.
    assert!(
        d.revoke_token(token.id(), "x")
            .unwrap()
            .revoked_ms
            .is_some()
    );
    assert!(matches!(
        d.revoke_token("nope", "x"),
        Err(StoreError::NoToken(_))
    ));

    // Disabled principal: its other tokens stop working.
    let (t2, _) = d.issue_token("ana", None, None, "x").unwrap();
    assert!(d.authenticate(Some(t2.secret()), now).unwrap().is_ok());
    d.disable_principal("ana", "x").unwrap();
    assert_eq!(
        d.authenticate(Some(t2.secret()), now).unwrap().unwrap_err(),
        AuthError::Disabled { id: t2.id().into() }
    );

    // Listing never shows secrets; states are reported.
    let list = d.tokens(Some("ana")).unwrap();
    assert_eq!(list.len(), 2);
    let states: BTreeSet<_> = list.iter().map(|t| t.state(now)).collect();
    assert_eq!(states, BTreeSet::from(["active", "revoked"]));

    // An expiry in the past is refused.
    assert!(matches!(
        d.issue_token("bo", None, None, "x"),
        Err(StoreError::NoPrincipal(_))
    ));
    d.add_principal(&person("bo", &[]), "x").unwrap();
    assert!(matches!(
        d.issue_token("bo", Some(1), None, "x"),
        Err(StoreError::Expiry)
    ));
}

#[test]
fn scoped_tokens_carry_their_scope() {
    let (_t, d) = dir();
    d.add_principal(&person("svc", &["service"]), "x").unwrap();
    let scope = BTreeSet::from([Action::Infer]);
    let (t, info) = d.issue_token("svc", None, Some(&scope), "x").unwrap();
    assert_eq!(info.scope, Some(vec!["infer".to_owned()]));
    let caller = d.authenticate(Some(t.secret()), now_ms()).unwrap().unwrap();
    assert!(caller.in_scope(Action::Infer));
    assert!(!caller.in_scope(Action::ReadAudit));
}

#[test]
fn only_hashes_are_stored() {
    let (tmp, d) = dir();
    d.add_principal(&person("ana", &[]), "x").unwrap();
    let (t, _) = d.issue_token("ana", None, None, "x").unwrap();
    drop(d);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(tmp.path().join("state")).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let secret = t.secret().as_bytes();
    let body = &secret[4 + 12..];
    assert!(
        !bytes.windows(body.len()).any(|w| w == body),
        "the token's secret part is in the database files"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tmp.path().join("state/identity.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn every_change_reaches_the_audit_record_through_the_outbox() {
    let (tmp, d) = dir();
    d.add_principal(&person("ana", &["analyst"]), "local:owner")
        .unwrap();
    let (t, _) = d.issue_token("ana", None, None, "local:owner").unwrap();
    d.revoke_token(t.id(), "local:owner").unwrap();
    d.disable_principal("ana", "local:owner").unwrap();
    // No-op changes add nothing.
    d.revoke_token(t.id(), "local:owner").unwrap();
    d.disable_principal("ana", "local:owner").unwrap();
    assert_eq!(d.outbox().unwrap().len(), 4);

    let key = sov_keys::LogKey::init_or_load(&tmp.path().join("keys")).unwrap();
    let (log, _) = AuditLog::open(
        &tmp.path().join("audit"),
        key,
        LogConfig::new("test/log", "n1"),
    )
    .unwrap();
    assert_eq!(d.drain_outbox(&log).unwrap(), 4);
    assert_eq!(d.outbox().unwrap().len(), 0);
    assert_eq!(d.drain_outbox(&log).unwrap(), 0);
    log.close().unwrap();

    let reader = sov_audit::LogReader::open(&tmp.path().join("audit")).unwrap();
    let mut changes = Vec::new();
    for i in 0..4 {
        let e = Entry::decode(&reader.entry(i).unwrap()).unwrap();
        assert_eq!(e.kind, Kind::IdentityChange);
        assert_eq!(e.principal, "local:owner");
        assert_eq!(e.resource, "ana");
        assert!(e.attr("outbox").is_some());
        changes.push(e.attr("change").unwrap().to_owned());
        if let Some(tok) = e.attr("token") {
            assert_eq!(tok, t.id());
        }
    }
    assert_eq!(
        changes,
        [
            "principal.add",
            "token.issue",
            "token.revoke",
            "principal.disable"
        ]
    );
}

#[test]
fn a_policy_set_is_noted_once_and_each_change_carries_both_hashes() {
    let (_t, d) = dir();
    let files = vec!["admin.cedar".to_owned()];
    assert_eq!(
        d.policy_loaded("aa", &files, "policy.load", "local:owner")
            .unwrap(),
        None
    );
    // The same set again (a restart) is not a change.
    assert_eq!(
        d.policy_loaded("aa", &files, "policy.load", "local:owner")
            .unwrap(),
        Some("aa".to_owned())
    );
    assert_eq!(
        d.policy_loaded("bb", &files, "policy.reload", "ana")
            .unwrap(),
        Some("aa".to_owned())
    );
    let items = d.outbox().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.draft.kind == Kind::PolicyChange));
    let attr = |i: usize, k: &str| {
        items[i]
            .draft
            .attrs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr(0, "new").as_deref(), Some("aa"));
    assert_eq!(attr(0, "old"), None);
    assert_eq!(attr(1, "old").as_deref(), Some("aa"));
    assert_eq!(attr(1, "new").as_deref(), Some("bb"));
    assert_eq!(attr(1, "change").as_deref(), Some("policy.reload"));
    assert_eq!(items[1].draft.principal, "ana");
}

/// `sov token issue` runs beside a server that writes the same database (its outbox drain):
/// every change must wait for the other writer, never fail with "database is locked".
#[test]
fn two_writers_on_one_database_wait_for_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state/identity.db");
    let server = Directory::open(&path).unwrap();
    let cli = Directory::open(&path).unwrap();
    cli.add_principal(&person("ana", &["analyst"]), "local:owner")
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                server
                    .record(Kind::PolicyChange, "test", "policies", "", vec![])
                    .unwrap();
                server
                    .policy_loaded(&now_ms().to_string(), &[], "policy.load", "test")
                    .unwrap();
                // The real server writes per request and every quarter second, not in a tight
                // loop: SQLite's busy handler is not fair, and a writer that re-takes the lock
                // at once can starve the other for seconds per transaction (a run hung for 17
                // minutes on a loaded 2-core machine).
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        for _ in 0..200 {
            let (t, _) = cli.issue_token("ana", None, None, "local:owner").unwrap();
            cli.revoke_token(t.id(), "local:owner").unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// A batch makes all its changes in one transaction, each with its own outbox entry, and its
/// tokens authenticate like those issued one at a time.
#[test]
fn a_batch_adds_principals_and_tokens_together() {
    let (_t, d) = dir();
    let tokens = d
        .batch("local:import", |b| {
            let mut tokens = Vec::new();
            for name in ["ana", "bo", "cy"] {
                b.add_principal(&person(name, &["analyst"]))?;
                tokens.push(b.issue_token(name, None, None)?.0);
            }
            Ok(tokens)
        })
        .unwrap();
    let names: Vec<_> = d
        .principals()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["ana", "bo", "cy"]);
    for (t, name) in tokens.iter().zip(["ana", "bo", "cy"]) {
        let caller = d.authenticate(Some(t.secret()), now_ms()).unwrap().unwrap();
        assert_eq!(caller.name(), name);
    }
    let outbox = d.outbox().unwrap();
    assert_eq!(outbox.len(), 6);
    assert!(outbox.iter().all(|i| i.draft.principal == "local:import"));
    let changes: Vec<_> = outbox
        .iter()
        .map(|i| {
            let change = i.draft.attrs.iter().find(|(k, _)| k == "change").unwrap();
            (i.draft.resource.as_str(), change.1.as_str())
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("ana", "principal.add"),
            ("ana", "token.issue"),
            ("bo", "principal.add"),
            ("bo", "token.issue"),
            ("cy", "principal.add"),
            ("cy", "token.issue"),
        ]
    );
}

/// A batch that fails part way leaves nothing: no principal, no token, no outbox entry.
#[test]
fn a_failed_batch_changes_nothing() {
    let (_t, d) = dir();
    d.add_principal(&person("bo", &[]), "x").unwrap();
    let before = d.outbox().unwrap().len();
    let mut issued = None;
    let err = d
        .batch("local:import", |b| {
            b.add_principal(&person("ana", &["analyst"]))?;
            issued = Some(b.issue_token("ana", None, None)?.0);
            b.add_principal(&person("bo", &[]))?; // exists: the batch fails here
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Exists(ref n) if n == "bo"),
        "{err}"
    );
    assert!(d.principal("ana").unwrap().is_none());
    assert!(d.tokens(None).unwrap().is_empty());
    let token = issued.unwrap();
    assert_eq!(
        d.authenticate(Some(token.secret()), now_ms())
            .unwrap()
            .unwrap_err(),
        AuthError::Unknown {
            id: token.id().into()
        }
    );
    assert_eq!(d.outbox().unwrap().len(), before);
    // The directory still takes changes after the rollback.
    d.add_principal(&person("ana", &[]), "x").unwrap();
}

/// `token(id)`, `tokens(Some(principal))` and `tokens(None)` each return exactly their rows,
/// newest first (they are separate statements, each using its index).
#[test]
fn token_listings_filter_by_id_and_principal() {
    let (_t, d) = dir();
    let mut ids = BTreeMap::new();
    for name in ["ana", "bo"] {
        d.add_principal(&person(name, &[]), "x").unwrap();
        for _ in 0..3 {
            let (t, _) = d.issue_token(name, None, None, "x").unwrap();
            ids.entry(name)
                .or_insert_with(Vec::new)
                .push(t.id().to_owned());
        }
    }
    for (name, own) in &ids {
        let listed = d.tokens(Some(name)).unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|t| &t.principal == name));
        let listed_ids: BTreeSet<_> = listed.iter().map(|t| t.id.clone()).collect();
        assert_eq!(listed_ids, own.iter().cloned().collect());
        assert!(
            listed
                .windows(2)
                .all(|w| w[0].created_ms >= w[1].created_ms)
        );
        for id in own {
            let t = d.token(id).unwrap().unwrap();
            assert_eq!((&t.id, &t.principal), (id, &(*name).to_owned()));
        }
    }
    assert!(d.tokens(Some("cy")).unwrap().is_empty());
    assert!(d.token("AAAAAAAAAAAA").unwrap().is_none());
    let all = d.tokens(None).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].created_ms >= w[1].created_ms));
}
