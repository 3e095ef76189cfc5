//! The starter policy set, decided for real by Cedar, against a table written here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use sov_policy::{
    Action, Basis, Policies, PolicyError, PolicyFile, Principal, PrincipalKind, Resource,
};

fn starter() -> Policies {
    Policies::starter().unwrap()
}

fn principal(name: &str, kind: PrincipalKind, roles: &[&str], attrs: &[(&str, &str)]) -> Principal {
    Principal {
        name: name.into(),
        kind,
        roles: roles
            .iter()
            .map(|r| (*r).to_owned())
            .collect::<BTreeSet<_>>(),
        attrs: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        created_ms: 0,
        disabled_ms: None,
    }
}

#[test]
fn the_matrix_of_principals_actions_and_resources_matches_the_table() {
    let p = starter();
    let principals = [
        principal("root", PrincipalKind::Person, &["admin"], &[]),
        principal(
            "ana",
            PrincipalKind::Person,
            &["analyst"],
            &[("clearance", "2"), ("department", "oncology")],
        ),
        principal(
            "cleo",
            PrincipalKind::Person,
            &["analyst"],
            &[("clearance", "5")],
        ),
        principal("billing", PrincipalKind::Service, &["service"], &[]),
        principal("nobody", PrincipalKind::Person, &[], &[("site", "north")]),
    ];
    let cases: [(&str, &str); 14] = [
        ("infer", "model:smollm2"),
        ("infer", "specialist:triage"),
        ("use-tool", "tool:calculator"),
        ("read-corpus", "corpus:guidelines"),
        ("read-corpus", "document:open,corpus=guidelines"),
        (
            "read-corpus",
            "document:secret,corpus=guidelines,clearance=3",
        ),
        ("ingest", "corpus:guidelines"),
        ("manage-models", "model:smollm2"),
        ("manage-principals", "node:n1"),
        ("read-audit", "auditlog:record"),
        ("change-policy", "node:n1"),
        ("remember", "memory:notes,owner=ana"),
        ("forget", "memory:notes,owner=ana"),
        // An action on a resource type it does not apply to: never allowed.
        ("infer", "tool:calculator"),
    ];
    // One row per principal, one column per case above: Y allowed, . denied.
    let table = [
        ("root", "YYYYY.YYYYYYY."), // admin: all, except the document above its clearance (forbid wins)
        ("ana", "YYYYY......YY."),
        ("cleo", "YYYYYY........"),
        ("billing", "Y............."),
        ("nobody", ".............."),
    ];
    let mut mismatches = Vec::new();
    for (who, row) in table {
        let pr = principals.iter().find(|p| p.name == who).unwrap();
        assert_eq!(row.len(), cases.len(), "row of {who}");
        for ((action, resource), want) in cases.iter().zip(row.chars()) {
            let action: Action = action.parse().unwrap();
            let resource = Resource::parse(resource).unwrap();
            let d = p.decide(pr, action, &resource);
            if d.is_allowed() != (want == 'Y') {
                mismatches.push(format!("{who} {action} {resource}: {}", d.explain()));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn decisions_name_the_policies_that_made_them() {
    let p = starter();
    let ana = principal(
        "ana",
        PrincipalKind::Person,
        &["analyst"],
        &[("clearance", "2")],
    );
    let d = p.decide(&ana, Action::Infer, &Resource::Model("m".into()));
    assert_eq!(d.basis(), &Basis::Permitted);
    assert_eq!(d.policy_ids(), "analyst-use");
    assert_eq!(d.policies()[0].file, "analyst.cedar");
    assert_eq!(d.policies()[0].line, 2);
    assert!(
        d.explain()
            .contains("permit `analyst-use` (analyst.cedar:2)"),
        "{}",
        d.explain()
    );

    let secret = Resource::parse("document:s,clearance=3").unwrap();
    let d = p.decide(&ana, Action::ReadCorpus, &secret);
    assert_eq!(d.basis(), &Basis::Forbidden);
    assert_eq!(d.policy_ids(), "clearance-documents");

    let d = p.decide(
        &ana,
        Action::ReadAudit,
        &Resource::AuditLog("record".into()),
    );
    assert_eq!(d.basis(), &Basis::NoPermit);
    assert!(d.explain().contains("default is deny"));

    let d = p.decide(&ana, Action::Infer, &Resource::Tool("t".into()));
    assert!(matches!(d.basis(), Basis::Invalid(_)), "{d:?}");
}

#[test]
fn an_empty_set_denies_everything() {
    let p = Policies::from_files(&[]).unwrap();
    assert!(p.is_empty());
    let root = principal("root", PrincipalKind::Person, &["admin"], &[]);
    for action in Action::ALL {
        let d = p.decide(&root, action, &Resource::Node("n".into()));
        assert!(!d.is_allowed(), "{action}");
    }
}

fn load_one(name: &str, text: &str) -> Result<Policies, PolicyError> {
    Policies::from_files(&[PolicyFile {
        name: name.into(),
        text: text.into(),
    }])
}

fn invalid_at(err: PolicyError) -> (String, usize, String) {
    match err {
        PolicyError::Invalid {
            file, line, reason, ..
        } => (file, line, reason),
        other => panic!("not an Invalid error: {other}"),
    }
}

#[test]
fn invalid_files_are_refused_with_file_and_line() {
    // A syntax error on line 4.
    let text = "// fine so far\n@id(\"a\")\npermit (principal, action, resource);\npermit (principal, action resource);\n";
    let (file, line, reason) = invalid_at(load_one("broken.cedar", text).unwrap_err());
    assert_eq!((file.as_str(), line), ("broken.cedar", 4), "{reason}");

    // An action the schema does not know, on line 3.
    let text = "\n\npermit (principal, action == Action::\"fly\", resource);\n";
    let (_, line, reason) = invalid_at(load_one("x.cedar", text).unwrap_err());
    assert_eq!(line, 3, "{reason}");
    assert!(reason.contains("fly"), "{reason}");
    // Named as the user knows it (file:line without an @id), never Cedar's internal `policy0`.
    assert!(reason.contains("`x.cedar:3`"), "{reason}");
    assert!(!reason.contains("policy0"), "{reason}");

    // A type error in a condition, on line 5.
    let text = "@id(\"ok\")\npermit (principal in Role::\"admin\", action, resource);\n\npermit (principal, action == Action::\"infer\", resource)\nwhen { principal.clearance > \"high\" };\n";
    let (_, line, reason) = invalid_at(load_one("types.cedar", text).unwrap_err());
    assert!((4..=5).contains(&line), "line {line}: {reason}");

    // An attribute the schema does not declare.
    let text = "permit (principal, action, resource) when { principal.salary > 3 };\n";
    assert!(load_one("attr.cedar", text).is_err());

    // Two policies with one id, in two files.
    let a = PolicyFile {
        name: "a.cedar".into(),
        text: "@id(\"same\")\npermit (principal, action, resource);\n".into(),
    };
    let b = PolicyFile {
        name: "b.cedar".into(),
        text: "\n@id(\"same\")\nforbid (principal, action, resource);\n".into(),
    };
    let (file, line, reason) = invalid_at(Policies::from_files(&[a, b]).unwrap_err());
    assert_eq!((file.as_str(), line), ("b.cedar", 2), "{reason}");
    assert!(reason.contains("a.cedar:1"), "{reason}");

    // Templates are refused.
    let text = "permit (principal == ?principal, action, resource);\n";
    assert!(load_one("t.cedar", text).is_err());
}

#[test]
fn the_hash_covers_every_file_and_its_name() {
    let one = load_one("a.cedar", "permit (principal, action, resource);\n").unwrap();
    let same = load_one("a.cedar", "permit (principal, action, resource);\n").unwrap();
    let renamed = load_one("b.cedar", "permit (principal, action, resource);\n").unwrap();
    let edited = load_one("a.cedar", "permit (principal, action, resource); \n").unwrap();
    assert_eq!(one.hash(), same.hash());
    assert_ne!(one.hash(), renamed.hash());
    assert_ne!(one.hash(), edited.hash());
    assert_eq!(one.hash_hex().len(), 64);
}

#[test]
fn policies_without_an_id_are_named_by_file_and_line() {
    let p = load_one("site.cedar", "// north site\n\npermit (principal, action == Action::\"infer\", resource)\nwhen { principal.hasTag(\"site\") && principal.getTag(\"site\") == \"north\" };\n").unwrap();
    let north = principal("n", PrincipalKind::Person, &[], &[("site", "north")]);
    let south = principal("s", PrincipalKind::Person, &[], &[("site", "south")]);
    let d = p.decide(&north, Action::Infer, &Resource::Model("m".into()));
    assert!(d.is_allowed());
    assert_eq!(d.policy_ids(), "site.cedar:3");
    assert!(
        !p.decide(&south, Action::Infer, &Resource::Model("m".into()))
            .is_allowed()
    );
}

#[test]
fn a_documents_attributes_are_tags_that_policies_can_test() {
    let text = r#"
@id("unit-documents")
permit (principal, action == Action::"read-corpus", resource is Document)
when { resource.hasTag("unit") && principal has department && resource.getTag("unit") == principal.department };
"#;
    let p = Policies::from_files(&[PolicyFile {
        name: "units.cedar".into(),
        text: text.into(),
    }])
    .unwrap();
    let ana = principal(
        "ana",
        PrincipalKind::Person,
        &["analyst"],
        &[("department", "oncology")],
    );
    let ours = Resource::parse("document:plan,corpus=wards,unit=oncology").unwrap();
    let theirs = Resource::parse("document:plan2,corpus=wards,unit=cardiology").unwrap();
    let untagged = Resource::parse("document:memo,corpus=wards").unwrap();
    assert!(matches!(&ours, Resource::Document { attrs, .. } if attrs["unit"] == "oncology"));
    assert!(p.decide(&ana, Action::ReadCorpus, &ours).is_allowed());
    assert!(!p.decide(&ana, Action::ReadCorpus, &theirs).is_allowed());
    assert!(!p.decide(&ana, Action::ReadCorpus, &untagged).is_allowed());
    // Other types keep their fixed keys.
    assert!(Resource::parse("model:m,unit=x").is_err());
}
