//! The kernel with its real parts: a real identity directory and policy set, a real audit log in
//! a temporary folder, and the real engine with the starter model. What a request's entries hold
//! is checked here once, for every door.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sov_audit::{AuditLog, LogConfig, LogReader};
use sov_audit_core::entry::{Entry, Kind, Outcome};
use sov_engine::{ChatMessage, Engine, EngineConfig, Event, SamplingParams};
use sov_kernel::{ChatCall, Door, End, Gate, Kernel, KernelError, Parts, ServedModel};
use sov_keys::LogKey;
use sov_policy::{Action, Directory, Guard, NewPrincipal, Policies, PrincipalKind, Resource};
use sov_seal::Declaration;

const MODEL: &str = "smollm2";
const DIGEST: [u8; 32] = [7; 32];

fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let path = std::env::var_os("SOV_TEST_MODEL").unwrap_or_else(|| {
                panic!("SOV_TEST_MODEL is not set: run the tests with `bash scripts/test`")
            });
            let config = EngineConfig {
                context_length: 1024,
                parallel: 2,
                ..EngineConfig::default()
            };
            Engine::load_unverified(&PathBuf::from(path), &config).unwrap()
        })
        .clone()
}

/// A node: principals `admin` (role admin) and `svc` (role service), the starter policies, a
/// fresh log, and the starter model served as [`MODEL`] when `with_model`.
struct Node {
    kernel: Kernel,
    log: AuditLog,
    _dir: tempfile::TempDir,
}

fn node(with_model: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(Directory::open(&dir.path().join("identity.db")).unwrap());
    for (name, role) in [("admin", "admin"), ("svc", "service")] {
        let p = NewPrincipal {
            name: name.into(),
            kind: PrincipalKind::Service,
            roles: [role.to_owned()].into(),
            attrs: BTreeMap::new(),
        };
        directory.add_principal(&p, "test").unwrap();
    }
    let key = LogKey::init_or_load(&dir.path().join("keys")).unwrap();
    let config = LogConfig::new("test.example/kernel".to_owned(), "test-node".to_owned());
    let (log, _) = AuditLog::open(&dir.path().join("audit"), key, config).unwrap();
    let mut models = BTreeMap::new();
    if with_model {
        models.insert(
            MODEL.to_owned(),
            ServedModel {
                backend: Arc::new(engine()),
                created: 1_700_000_000,
                sha256: DIGEST,
            },
        );
    }
    let guard = Guard::new(directory, Policies::starter().unwrap(), None);
    let kernel = Kernel::new(Parts {
        models,
        guard,
        log: log.clone(),
        node: "test-node".into(),
        gate: Gate::new(Declaration::default(), Arc::new(log.clone()), "system"),
        library: Default::default(),
    });
    Node {
        kernel,
        log,
        _dir: dir,
    }
}

impl Node {
    fn door(&self) -> Door {
        Door {
            route: "test door".into(),
            peer: None,
            read: false,
        }
    }

    fn begin(&self, who: &str) -> sov_kernel::Exchange {
        let caller = self.kernel.guard().local(who, "tester").unwrap();
        self.kernel.begin(caller, self.door()).unwrap()
    }

    fn entries(&self) -> Vec<Entry> {
        self.log.sign_now().unwrap();
        let reader = LogReader::open(self.log.dir()).unwrap();
        let size = reader.checkpoint().1.size;
        (0..size)
            .map(|i| Entry::decode(&reader.entry(i).unwrap()).unwrap())
            .collect()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_permit_is_given_only_for_what_was_allowed_and_every_decision_is_recorded() {
    let n = node(false);
    let rt = rt();
    let model = Resource::Model("any".into());
    let mut ex = n.begin("svc");
    let permit = n.kernel.authorize(&mut ex, Action::Infer, &model).unwrap();
    assert!(permit.covers(Action::Infer, &model));
    assert!(!permit.covers(Action::Infer, &Resource::Model("other".into())));
    assert_eq!(permit.principal(), "svc");
    let refused = n
        .kernel
        .authorize(&mut ex, Action::ReadAudit, &n.kernel.node())
        .unwrap_err();
    assert!(matches!(
        refused,
        KernelError::Forbidden(Action::ReadAudit, _)
    ));
    let end = sov_kernel::infer::end_of(&refused);
    let recorded = rt.block_on(ex.finish(end, None)).unwrap().unwrap();

    let entries = n.entries();
    let decisions: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.kind == Kind::PolicyDecision)
        .collect();
    assert_eq!(decisions.len(), 2, "{entries:?}");
    let (allowed, denied) = (decisions[0], decisions[1]);
    assert_eq!(allowed.outcome, Outcome::Ok);
    assert_eq!(allowed.resource, r#"Model::"any""#);
    assert_eq!(allowed.attr("action"), Some("infer"));
    assert_eq!(allowed.attr("policies"), Some("service-infer"));
    assert_eq!(allowed.attr("local"), Some("tester"));
    assert_eq!(allowed.attr("route"), Some("test door"));
    let set = n.kernel.guard().policies().hash_hex();
    assert_eq!(allowed.attr("policy_set"), Some(set.as_str()));
    assert_eq!(denied.outcome, Outcome::Denied);
    assert_eq!(denied.attr("action"), Some("read-audit"));
    // The request's own entry is a refusal that lists both decisions, and says why by type.
    let own = &entries[usize::try_from(recorded.appended.index).unwrap()];
    assert_eq!(own.kind, Kind::Refusal);
    assert_eq!(own.outcome, Outcome::Denied);
    assert_eq!(own.principal, "svc");
    assert!(own.reason.contains("type=permission_error"), "{own:?}");
    let listed: Vec<u64> = own
        .attr("decision")
        .unwrap()
        .split(',')
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(listed, vec![allowed.index, denied.index]);
    assert!(recorded.salt.is_some());
}

#[test]
fn a_caller_refused_a_model_does_not_learn_whether_it_exists() {
    let n = node(false);
    let rt = rt();
    // A principal with no role: `infer` is denied before any lookup, so an unknown model and a
    // served one answer alike.
    let p = NewPrincipal {
        name: "guest".into(),
        kind: PrincipalKind::Person,
        roles: Default::default(),
        attrs: BTreeMap::new(),
    };
    n.kernel
        .guard()
        .directory()
        .add_principal(&p, "test")
        .unwrap();
    let mut ex = n.begin("guest");
    let e = n.kernel.model(&mut ex, "no-such-model").unwrap_err();
    assert!(matches!(e, KernelError::Forbidden(Action::Infer, _)), "{e}");
    drop(ex);
    // A permitted caller learns the model is not served.
    let mut ex = n.begin("svc");
    let e = n.kernel.model(&mut ex, "no-such-model").unwrap_err();
    assert!(matches!(e, KernelError::ModelNotFound(_)), "{e}");
    rt.block_on(ex.finish(sov_kernel::infer::end_of(&e), None))
        .unwrap();
}

#[test]
fn an_exchange_dropped_unfinished_is_recorded_as_cancelled() {
    let n = node(false);
    let mut ex = n.begin("svc");
    let _permit = n
        .kernel
        .authorize(&mut ex, Action::Infer, &Resource::Model("m".into()))
        .unwrap();
    drop(ex);
    // The drop submits the entry; the log makes it durable in order.
    let entries = n.entries();
    let last = entries.last().unwrap();
    assert_eq!(last.outcome, Outcome::Cancelled, "{entries:?}");
    assert_eq!(last.attr("status"), Some("499"));
    assert_eq!(last.attr("decisions"), Some("1"));
    assert_eq!(last.principal, "svc");
}

#[test]
fn a_chat_is_recorded_with_its_model_its_tokens_and_commitments_not_text() {
    let n = node(true);
    let rt = rt();
    let question = "Name the capital city of France.";
    let mut ex = n.begin("svc");
    ex.commit_input(question.as_bytes());
    let call = ChatCall {
        model: MODEL.into(),
        messages: vec![ChatMessage {
            role: "user".into(),
            content: question.into(),
        }],
        params: SamplingParams {
            temperature: 0.0,
            max_tokens: Some(6),
            ..SamplingParams::default()
        },
        stream: false,
        fit: false,
        functions: None,
        format: Default::default(),
    };
    let (text, done) = rt.block_on(async {
        let mut reply = n.kernel.chat(&mut ex, call).await.unwrap();
        assert!(reply.prompt_tokens() > 0);
        let mut text = String::new();
        let mut done = None;
        while let Some(event) = reply.next(&mut ex).await {
            match event {
                Event::Text(t) => text.push_str(&t),
                Event::Done {
                    completion_tokens, ..
                } => done = Some(completion_tokens),
                Event::Failed(e) => panic!("{e}"),
            }
        }
        (text, done.unwrap())
    });
    ex.feed_output(text.as_bytes());
    let recorded = rt
        .block_on(ex.finish(End::Answered, None))
        .unwrap()
        .unwrap();

    let entries = n.entries();
    let e = &entries[usize::try_from(recorded.appended.index).unwrap()];
    assert_eq!(e.kind, Kind::Inference);
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.principal, "svc");
    assert_eq!(e.resource, MODEL);
    assert_eq!(e.model, Some(DIGEST));
    assert_eq!(e.attr("completion_tokens"), Some(done.to_string().as_str()));
    assert!(e.attr("prompt_tokens").unwrap().parse::<usize>().unwrap() > 0);
    assert_eq!(e.attr("finish_reason"), Some("length"));
    let salt = recorded.salt.unwrap();
    assert_eq!(
        e.input,
        Some(sov_audit_core::entry::commitment(
            "input",
            &salt,
            question.as_bytes()
        ))
    );
    assert!(e.output.is_some());
    assert!(!e.to_json().contains("France"), "{}", e.to_json());
}
