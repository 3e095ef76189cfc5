//! Builds the console's assets into the binary: every file of `console/dist` (Vite's output,
//! made by `scripts/run` and `scripts/test` with the machine's Node.js) becomes a static byte
//! string. Without a built console the list is empty and `/console` says how to build it; the
//! API is the same either way.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let console = manifest.join("../../console");
    let dist = console.join("dist");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files)?;
        // Any change of the built files builds them in again.
        println!("cargo:rerun-if-changed={}", dist.display());
    } else {
        // Until there is a build: the console's folder (a build made there later is noticed).
        println!("cargo:rerun-if-changed={}", console.display());
    }
    files.sort();
    let mut out =
        String::from("/// The console's files: (path under `/console/`, content type, bytes).\n");
    out.push_str("pub(crate) static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for (rel, path) in &files {
        let ext = Path::new(rel)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        writeln!(
            out,
            "    ({rel:?}, {:?}, include_bytes!({:?})),",
            content_type(ext),
            path.display().to_string()
        )?;
    }
    out.push_str("];\n");
    let generated = PathBuf::from(std::env::var("OUT_DIR")?).join("console_assets.rs");
    std::fs::write(generated, out)?;
    Ok(())
}

/// Every file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), Box<dyn std::error::Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else {
            let rel = path.strip_prefix(root)?;
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push((rel.join("/"), std::fs::canonicalize(&path)?));
        }
    }
    Ok(())
}

fn content_type(ext: &str) -> &'static str {
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
