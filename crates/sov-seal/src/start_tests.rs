//! The steps of the start that need no kernel: the plan and its refusals, the stored report,
//! the attestation and the requirement to be whole. Confining and probing act on the whole
//! process, so they are tested in tests/kernel.rs, each case in a child process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::sync::Mutex;

use sov_audit_core::entry::{Kind, Outcome};
use sov_audit_core::record::{Appended, Done, Draft};

use super::*;
use crate::confine::LayerStatus;
use crate::declare::Destination;
use crate::probe::Probe;

/// A home laid out as `sov serve`'s: the record, the directory, models, the configuration.
fn home(root: &Path) -> Home {
    for folder in ["audit", "state", "models"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::write(root.join("sov.toml"), "").unwrap();
    Home {
        root: root.to_owned(),
        config: root.join("sov.toml"),
        writes: vec![root.join("audit"), root.join("state")],
        files: Files::in_home(root),
    }
}

fn listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn the_plan_is_what_the_declaration_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("home");
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let declaration = Declaration {
        read_only: vec![shared.clone()],
        outbound: vec![Destination::parse("10.0.0.7:8080", "upstream").unwrap()],
        ..Declaration::default()
    };
    let plan = Plan::for_declaration(&declaration, home(&root), listen())
        .unwrap()
        .unavailable([Layer::Landlock])
        .require_whole(true);
    assert_eq!(
        plan.rules.read_write,
        [root.join("audit"), root.join("state"), root.join("seal")]
    );
    assert_eq!(plan.rules.read_only, [root.clone(), shared]);
    assert_eq!(plan.rules.connect_ports, [8080].into());
    assert!(!plan.rules.offline);
    assert_eq!(plan.rules.unavailable, [Layer::Landlock].into());
    assert!(plan.required);
    assert_eq!(plan.declaration, declaration);
}

#[test]
fn a_start_outside_the_declaration_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("home");
    let home = home(&root);
    let refused = |declaration: &Declaration, listen: SocketAddr| {
        Plan::for_declaration(declaration, home.clone(), listen)
            .map(drop)
            .map_err(|r| r.reason)
    };
    let declared = Declaration {
        listen: vec!["127.0.0.1:1".parse().unwrap()],
        ..Declaration::default()
    };
    let reason = refused(&declared, listen()).unwrap_err();
    assert!(
        reason.contains("127.0.0.1:0 is not a declared listen address"),
        "{reason}"
    );
    assert_eq!(refused(&declared, "127.0.0.1:1".parse().unwrap()), Ok(()));
    let missing = Declaration {
        read_only: vec!["/nonexistent/sov-seal-root".into()],
        ..Declaration::default()
    };
    assert_eq!(
        refused(&missing, listen()),
        Err("the declared read-only root /nonexistent/sov-seal-root does not exist".into())
    );

    // Models kept elsewhere through a symbolic link, at the first level or the second.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir(root.join("models")).unwrap();
    symlink(&elsewhere, root.join("models")).unwrap();
    let none = Declaration::default();
    let reason = refused(&none, listen()).unwrap_err();
    assert!(
        reason.contains("outside the home: the seal would deny the server access to it"),
        "{reason}"
    );
    // Declared read-only (the server only reads models), it is allowed.
    let declared = Declaration {
        read_only: vec![elsewhere.clone()],
        ..Declaration::default()
    };
    assert_eq!(refused(&declared, listen()), Ok(()));
    std::fs::remove_file(root.join("models")).unwrap();
    std::fs::create_dir(root.join("models")).unwrap();
    symlink(&elsewhere, root.join("models").join("blobs")).unwrap();
    let reason = refused(&none, listen()).unwrap_err();
    assert!(reason.contains("models/blobs resolves to"), "{reason}");
    // A link that stays inside the home is no reason.
    std::fs::remove_file(root.join("models").join("blobs")).unwrap();
    symlink(root.join("state"), root.join("models").join("blobs")).unwrap();
    assert_eq!(refused(&none, listen()), Ok(()));
}

#[test]
fn the_seal_files_lie_in_one_folder() {
    let files = Files::in_home(Path::new("/h"));
    assert_eq!(files.dir(), Path::new("/h/seal"));
    assert_eq!(files.report(), Path::new("/h/seal/report.json"));
    assert_eq!(
        files.archived("ab12"),
        Path::new("/h/seal/reports/ab12.json")
    );
    assert_eq!(files.attestation(), Path::new("/h/seal/attestation"));
}

/// A report of a seal with Landlock in force or not, and one probe that held or not.
fn report(landlock: bool, held: bool) -> Report {
    let status = |layer, in_force| LayerStatus {
        layer,
        declared: layer != Layer::Netns,
        in_force,
        detail: format!("{layer} detail"),
    };
    let confinement = Confinement {
        threads: 1,
        layers: vec![
            status(Layer::Netns, false),
            status(Layer::Landlock, landlock),
            status(Layer::Seccomp, true),
        ],
        netns_probe: None,
    };
    let probe = Probe {
        name: "read-outside".into(),
        tried: "read /etc/hostname".into(),
        expect: "refused".into(),
        result: if held { "refused: EACCES" } else { "allowed" }.into(),
        holds: held,
    };
    Report::new(
        "2026-11-27T00:00:00Z".into(),
        "127.0.0.1:8787".into(),
        &Declaration::default(),
        &Rules::default(),
        &confinement,
        vec![probe],
    )
}

/// A record keeping what it was given; entries are numbered from 41.
#[derive(Debug, Default)]
struct Kept(Mutex<Vec<Draft>>);

impl Record for Kept {
    fn submit(&self, draft: Draft, done: Done) {
        let mut drafts = self.0.lock().unwrap();
        drafts.push(draft);
        let index = 40 + drafts.len() as u64;
        done(Ok(Appended {
            index,
            leaf: [0; 32],
        }));
    }
}

#[derive(Debug)]
struct Failing;

impl Record for Failing {
    fn submit(&self, _draft: Draft, done: Done) {
        done(Err(RecordError("the disk is full".into())));
    }
}

fn probed(files: &Files, report: Report) -> Probed {
    std::fs::create_dir_all(files.archive()).unwrap();
    Probed {
        report,
        files: files.clone(),
        required: false,
    }
}

#[test]
fn the_stored_report_is_the_one_attested_and_its_index_is_known() {
    let tmp = tempfile::tempdir().unwrap();
    let files = Files::at(tmp.path().join("seal"));
    let stored = probed(&files, report(true, true)).store().unwrap();
    let json = std::fs::read(files.report()).unwrap();
    assert_eq!(stored.json, json);
    assert_eq!(stored.digest(), report::digest(&json));
    assert_eq!(
        std::fs::read(files.archived(stored.digest())).unwrap(),
        json
    );
    for path in [files.report(), files.archived(stored.digest())] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    // The same report again: kept once, stored again.
    probed(&files, report(true, true)).store().unwrap();

    let log = Kept::default();
    let attested = stored.attest(&log, "system").unwrap();
    assert_eq!(attested.attestation(), 41);
    assert_eq!(
        std::fs::read_to_string(files.attestation()).unwrap(),
        "41\n"
    );
    let drafts = log.0.lock().unwrap();
    let [draft] = drafts.as_slice() else {
        panic!("one entry: {drafts:?}")
    };
    assert_eq!(
        (
            draft.kind,
            draft.principal.as_str(),
            draft.resource.as_str()
        ),
        (Kind::SealAttestation, "system", "seal")
    );
    assert_eq!(draft.outcome, Outcome::Ok);
    let keys: Vec<&str> = draft.attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "report_sha256",
            "layers",
            "probes_held",
            "kernel",
            "probe.read-outside"
        ]
    );
    assert_eq!(draft.attrs[0].1, report::digest(&json));
    assert_eq!(draft.attrs[1].1, "netns=off,landlock=on,seccomp=on");
    assert_eq!(draft.attrs[2].1, "1/1");
    let (report, bytes, index) = attested.into_parts();
    assert!(report.sealed);
    assert_eq!((bytes, index), (json, 41));
}

#[test]
fn an_attestation_not_recorded_notes_no_index() {
    let tmp = tempfile::tempdir().unwrap();
    let files = Files::at(tmp.path().join("seal"));
    let stored = probed(&files, report(true, true)).store().unwrap();
    match stored.attest(&Failing, "system") {
        Err(StartError::Record(e)) => assert_eq!(e.0, "the disk is full"),
        other => panic!("{other:?}"),
    }
    assert!(!files.attestation().exists());
}

#[test]
fn a_seal_not_whole_is_refused_only_when_required() {
    let attested = |report, required| Attested {
        report,
        json: Vec::new(),
        index: 0,
        required,
    };
    let whole = attested(report(true, true), true);
    assert_eq!(whole.gaps(), None);
    assert_eq!(whole.require_whole(), Ok(()));

    let broken = attested(report(false, false), false);
    let gaps = broken.gaps().unwrap();
    assert_eq!(
        gaps.to_string(),
        "the seal is not whole: landlock is not in force (landlock detail); probe read-outside (read /etc/hostname): allowed"
    );
    assert_eq!(broken.require_whole(), Ok(()), "not required");
    let required = attested(report(false, false), true);
    assert_eq!(required.require_whole(), Err(gaps));
    // A failed probe alone is enough.
    let probe_only = attested(report(true, false), true);
    assert_eq!(
        probe_only.require_whole().unwrap_err().missing,
        ["probe read-outside (read /etc/hostname): allowed"]
    );
}
