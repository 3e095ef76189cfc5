//! Sessions against a real directory: opened only with a token, bounded per principal and in
//! all (least recently used first), their CSRF tokens bound to their secrets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use sov_policy::session::{csrf_matches, csrf_of};
use sov_policy::{
    Caller, Directory, Guard, NewPrincipal, Policies, PrincipalKind, SessionError, SessionLimits,
    StoreError,
};

fn guard(limits: SessionLimits) -> (tempfile::TempDir, Guard, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = Arc::new(Directory::open(&tmp.path().join("identity.db")).unwrap());
    let mut tokens = Vec::new();
    for name in ["ana", "bo", "cy"] {
        let p = NewPrincipal {
            name: name.into(),
            kind: PrincipalKind::Person,
            roles: ["analyst".to_owned()].into(),
            attrs: BTreeMap::new(),
        };
        d.add_principal(&p, "test").unwrap();
        let (token, _) = d.issue_token(name, None, None, "test").unwrap();
        tokens.push(token.secret().to_owned());
    }
    let g = Guard::new(d, Policies::starter().unwrap(), None).with_session_limits(limits);
    (tmp, g, tokens)
}

fn caller(g: &Guard, token: &str) -> Caller {
    g.authenticate(Ok(Some(token))).unwrap().unwrap()
}

/// Opens a session with `token`; its secret.
fn open(g: &Guard, token: &str) -> String {
    let (c, opened) = g.open_session(caller(g, token)).unwrap();
    assert_eq!(c.session_id(), Some(opened.info.id.as_str()));
    assert_eq!(c.token_id(), Some(&token[4..16]));
    opened.secret.to_string()
}

fn alive(g: &Guard, secret: &str) -> bool {
    match g.resume(secret).unwrap() {
        Ok(_) => true,
        Err(SessionError::Unknown) => false,
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn sessions_are_bounded_per_principal_and_in_all_least_recently_used_first() {
    let limits = SessionLimits {
        per_principal: 2,
        max: 3,
        ..SessionLimits::default()
    };
    let (_t, g, tokens) = guard(limits);
    let a1 = open(&g, &tokens[0]);
    let a2 = open(&g, &tokens[0]);
    // a1 is used again, so a2 is ana's least recently used when her third session opens.
    assert!(alive(&g, &a1));
    let a3 = open(&g, &tokens[0]);
    assert!(!alive(&g, &a2));
    // Three in all: bo's takes the last place; cy's ends the node's least recently used (a1,
    // used before a3 was opened), whoever's it is.
    let b1 = open(&g, &tokens[1]);
    let c1 = open(&g, &tokens[2]);
    assert!(!alive(&g, &a1));
    for s in [&a3, &b1, &c1] {
        assert!(alive(&g, s));
    }
}

#[test]
fn a_session_is_opened_only_with_a_token_and_signed_out_once() {
    let (_t, g, tokens) = guard(SessionLimits::default());
    let local = g.local("ana", "root").unwrap();
    assert!(matches!(
        g.open_session(local),
        Err(StoreError::NotATokenCaller)
    ));
    // Nor from a session (it would outlive the session it came from).
    let s = open(&g, &tokens[0]);
    let through = g.resume(&s).unwrap().unwrap();
    assert!(matches!(
        g.open_session(through.clone()),
        Err(StoreError::NotATokenCaller)
    ));
    assert!(g.session(&through).is_some());
    assert!(g.sign_out(&through));
    assert!(!g.sign_out(&through));
    assert!(g.session(&through).is_none());
    assert!(!alive(&g, &s));
    // Malformed secrets are told apart from unknown ones without a lookup.
    for bad in [
        "",
        "sovs_",
        "sov_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sovs_<script>",
    ] {
        assert_eq!(g.resume(bad).unwrap().unwrap_err(), SessionError::Malformed);
    }
}

#[test]
fn the_csrf_token_is_bound_to_its_session() {
    let (_t, g, tokens) = guard(SessionLimits::default());
    let s1 = open(&g, &tokens[0]);
    let s2 = open(&g, &tokens[0]);
    assert_eq!(csrf_of(&s1), csrf_of(&s1));
    assert_ne!(csrf_of(&s1), csrf_of(&s2));
    assert!(csrf_matches(&s1, &csrf_of(&s1)));
    assert!(!csrf_matches(&s1, &csrf_of(&s2)));
    assert!(!csrf_matches(&s1, ""));
    // It is not the secret, nor derivable from the session's public id.
    assert!(!csrf_matches(&s1, &s1));
}
