//! A home for tests: owner keys, a model store with a base model, a specialist store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sov_keys::{OwnerKeys, OwnerPublicKeys};
use sov_models::{ModelStore, VerifiedModel};

use super::gguf;
use crate::{Spec, SpecialistStore};

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub keys: OwnerKeys,
    pub public: OwnerPublicKeys,
    pub models: ModelStore,
    pub base: VerifiedModel,
    pub dir: PathBuf,
    pub store: SpecialistStore,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let keys_dir = tmp.path().join("keys");
        OwnerKeys::init(&keys_dir).unwrap();
        let keys = OwnerKeys::load(&keys_dir).unwrap();
        let public = keys.public();
        let models = ModelStore::open(&tmp.path().join("models")).unwrap();
        let dir = tmp.path().join("specialists");
        let store = SpecialistStore::open(&dir).unwrap();
        let base = import(tmp.path(), &models, &keys, "base", "llama", 1);
        Self {
            tmp,
            keys,
            public,
            models,
            base,
            dir,
            store,
        }
    }

    /// Imports a model of `arch` under `name` and verifies it.
    pub fn import_model(&self, name: &str, arch: &'static str, seed: u32) -> VerifiedModel {
        import(self.tmp.path(), &self.models, &self.keys, name, arch, seed)
    }

    /// Writes `bytes` to a file named `name` in the test's folder.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A plain spec for `name` over the fixture's base model.
    pub fn spec(&self, name: &str) -> Spec<'_> {
        Spec {
            name: name.to_owned(),
            base: &self.base,
            corpora: vec!["contracts".to_owned()],
            description: "Answers questions about the firm's contracts.".to_owned(),
            instructions: None,
            tools: Vec::new(),
            installed_tools: Vec::new(),
            tool_choice: Default::default(),
            adapter: None,
            replace: false,
        }
    }

    /// The manifest file of `name`, as JSON.
    pub fn manifest_json(&self, name: &str) -> serde_json::Value {
        let path = self.dir.join("manifests").join(format!("{name}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Writes the manifest file of `name` from JSON.
    pub fn write_manifest_json(&self, name: &str, value: &serde_json::Value) {
        let path = self.dir.join("manifests").join(format!("{name}.json"));
        std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    }
}

fn import(
    dir: &Path,
    models: &ModelStore,
    keys: &OwnerKeys,
    name: &str,
    arch: &'static str,
    seed: u32,
) -> VerifiedModel {
    let src = dir.join(format!("{name}-{seed}.gguf"));
    std::fs::write(&src, gguf::model(arch, seed)).unwrap();
    models
        .import(&src, Some(name), keys, &mut |_, _| {})
        .unwrap();
    models.verify(name, &keys.public()).unwrap()
}

/// Every path under `dir` with its contents (None for directories).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), None);
                stack.push(path);
            } else {
                out.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}
