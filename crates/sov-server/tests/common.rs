//! Shared by the server's tests: the real starter model, loaded once per test binary, and a real
//! identity directory with an admin principal whose token every ordinary test sends.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sov_audit::{AuditLog, LogConfig, LogReader};
use sov_audit_core::entry::Entry;
use sov_engine::{Engine, EngineConfig};
use sov_keys::LogKey;
use sov_policy::policy::STARTER;
use sov_policy::{Directory, NewPrincipal, Policies, PrincipalKind, Rate};
use sov_server::{Access, AppState, Limits, ServedModel, ServerConfig};

pub const MODEL: &str = "smollm2";

/// The starter GGUF. `bash scripts/test` sets SOV_TEST_MODEL; without it these tests cannot run.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("SOV_TEST_MODEL").unwrap_or_else(|| {
        panic!("SOV_TEST_MODEL is not set: run the tests with `bash scripts/test`, which fetches the starter model")
    });
    PathBuf::from(path)
}

/// The shared engine: 8 slots, so concurrency tests really run concurrently.
pub fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let config = EngineConfig {
                context_length: 2048,
                parallel: 8,
                queue_depth: 32,
                ..EngineConfig::default()
            };
            Engine::load_unverified(&model_path(), &config).expect("the starter model loads")
        })
        .clone()
}

/// SHA-256 of the starter model file, computed once.
pub fn model_sha256() -> [u8; 32] {
    static DIGEST: OnceLock<[u8; 32]> = OnceLock::new();
    *DIGEST.get_or_init(|| Sha256::digest(std::fs::read(model_path()).unwrap()).into())
}

pub const ORIGIN: &str = "test.example/sovereign";

/// A real audit log in a fresh temporary folder (kept for the test process's life).
pub fn audit_log() -> (AuditLog, PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep();
    let key = LogKey::init_or_load(&dir.join("keys")).unwrap();
    let mut config = LogConfig::new(ORIGIN.to_owned(), "test-node".to_owned());
    config.checkpoint_interval = std::time::Duration::from_millis(50);
    let (log, _) = AuditLog::open(&dir.join("audit"), key, config).unwrap();
    (log, dir)
}

/// A fresh directory (in its own temporary folder) with principal `admin` (role admin); returns
/// it and the admin's token.
pub fn directory() -> (Arc<Directory>, String) {
    let dir = tempfile::tempdir().unwrap().keep();
    let directory = Arc::new(Directory::open(&dir.join("state/identity.db")).unwrap());
    let admin = NewPrincipal {
        name: "admin".into(),
        kind: PrincipalKind::Person,
        roles: ["admin".to_owned()].into(),
        attrs: BTreeMap::new(),
    };
    directory.add_principal(&admin, "test").unwrap();
    let (token, _) = directory.issue_token("admin", None, None, "test").unwrap();
    (directory, token.secret().to_owned())
}

/// The directory the ordinary tests share, and its admin token.
pub fn shared() -> &'static (Arc<Directory>, String) {
    static SHARED: OnceLock<(Arc<Directory>, String)> = OnceLock::new();
    SHARED.get_or_init(directory)
}

/// The admin token of the shared directory.
pub fn token() -> &'static str {
    &shared().1
}

/// `Authorization` header value for the shared admin.
pub fn bearer() -> String {
    format!("Bearer {}", token())
}

/// Limits no ordinary test reaches (the rate-limit tests set their own).
pub fn generous() -> Limits {
    Limits {
        requests: Rate {
            per_minute: 1_000_000,
            burst: 100_000,
        },
        failures: Rate {
            per_minute: 1_000_000,
            burst: 100_000,
        },
        unauthenticated_entries: Rate {
            per_minute: 1_000_000,
            burst: 100_000,
        },
    }
}

/// What a test node's access is built from: the guard's parts and the door's limits.
#[derive(Debug)]
pub struct Setup {
    pub directory: Arc<Directory>,
    pub policies: Policies,
    pub policy_dir: Option<std::path::PathBuf>,
    pub limits: Limits,
    pub sessions: sov_policy::SessionLimits,
}

impl Setup {
    pub fn new(
        directory: Arc<Directory>,
        policies: Policies,
        policy_dir: Option<std::path::PathBuf>,
        limits: Limits,
    ) -> Self {
        Self {
            directory,
            policies,
            policy_dir,
            limits,
            sessions: sov_policy::SessionLimits::default(),
        }
    }
}

/// Access over the shared directory with the starter policies.
pub fn access() -> Setup {
    Setup::new(
        shared().0.clone(),
        Policies::starter().unwrap(),
        None,
        generous(),
    )
}

/// An HTTP client that sends the shared admin's token.
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&bearer()).unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

pub fn state_with_log(engine: Engine, max_body_bytes: usize, log: AuditLog) -> AppState {
    state_with_access(engine, max_body_bytes, log, access())
}

pub fn state_with_access(
    engine: Engine,
    max_body_bytes: usize,
    log: AuditLog,
    setup: Setup,
) -> AppState {
    let config = ServerConfig {
        max_body_bytes,
        owner: "owner:test".into(),
        ..ServerConfig::default()
    };
    state_with_config(engine, config, log, setup)
}

/// A node serving `engine` as [`MODEL`] through the kernel, with `setup`'s access.
pub fn state_with_config(
    engine: Engine,
    config: ServerConfig,
    log: AuditLog,
    setup: Setup,
) -> AppState {
    let mut models = BTreeMap::new();
    models.insert(
        MODEL.to_owned(),
        ServedModel {
            backend: Arc::new(engine),
            created: 1_700_000_000,
            sha256: model_sha256(),
        },
    );
    let guard = sov_policy::Guard::new(setup.directory, setup.policies, setup.policy_dir)
        .with_session_limits(setup.sessions);
    let gate = sov_kernel::Gate::new(
        sov_seal::Declaration::default(),
        Arc::new(log.clone()),
        "system",
    );
    let kernel = sov_kernel::Kernel::new(sov_kernel::Parts {
        models,
        guard,
        log,
        node: "test-node".into(),
        gate,
        library: Default::default(),
    });
    AppState::new(kernel, config, Access::new(setup.limits))
}

pub fn state_with(engine: Engine, max_body_bytes: usize) -> AppState {
    state_with_log(engine, max_body_bytes, audit_log().0)
}

pub fn state() -> AppState {
    state_with(engine(), 64 * 1024)
}

/// Serves `state` on an ephemeral loopback port; returns the base URL.
pub async fn spawn(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sov_server::serve(listener, state, std::future::pending()));
    // (serve() installs ConnectInfo, so the auth layer sees each client's address.)
    format!("http://{addr}")
}

/// A server over its own log, directory (with `admin`) and policy folder (the starter set).
#[derive(Debug)]
pub struct Node {
    pub base: String,
    pub access: Access,
    pub log: AuditLog,
    pub directory: Arc<Directory>,
    pub admin: String,
    pub policies: PathBuf,
    pub http: reqwest::Client,
}

pub async fn node(limits: Limits) -> Node {
    node_with(limits, sov_policy::SessionLimits::default()).await
}

/// [`node`] with sessions of these limits.
pub async fn node_with(limits: Limits, sessions: sov_policy::SessionLimits) -> Node {
    let (log, dir) = audit_log();
    let (directory, admin) = directory();
    let policies = dir.join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (name, text) in STARTER {
        std::fs::write(policies.join(name), text).unwrap();
    }
    let setup = Setup::new(
        directory.clone(),
        Policies::load_dir(&policies).unwrap(),
        Some(policies.clone()),
        limits,
    );
    let setup = Setup { sessions, ..setup };
    // As `sov serve` does at start: the set in force is noted (and recorded) first.
    let set = &setup.policies;
    directory
        .policy_loaded(&set.hash_hex(), set.files(), "policy.load", "test")
        .unwrap();
    let state = state_with_access(engine(), 64 * 1024, log.clone(), setup);
    let access = state.access().clone();
    Node {
        base: spawn(state).await,
        access,
        log,
        directory,
        admin,
        policies,
        http: reqwest::Client::new(),
    }
}

impl Node {
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn chat(&self, token: &str) -> Response {
        self.post(
            "/v1/chat/completions",
            token,
            json!({"model": MODEL, "max_tokens": 1, "temperature": 0,
                   "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await
    }

    /// Issues a token over the admin API; returns (secret, id).
    pub async fn issue(&self, body: Value) -> (String, String) {
        let res = self.post("/v1/admin/tokens", &self.admin, body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        (
            v["token"].as_str().unwrap().to_owned(),
            v["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Every entry of the record, once a checkpoint covers them all.
    pub fn entries(&self) -> Vec<Entry> {
        self.log.sign_now().unwrap();
        let reader = LogReader::open(self.log.dir()).unwrap();
        let size = reader.checkpoint().1.size;
        (0..size)
            .map(|i| Entry::decode(&reader.entry(i).unwrap()).unwrap())
            .collect()
    }
}

/// The entry a response's `Sov-Audit-Index` names.
pub fn index_of(res: &Response) -> u64 {
    res.headers()["sov-audit-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub async fn error_of(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    (status, body["error"].clone())
}
