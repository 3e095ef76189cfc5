//! The web console's files at `/console/`: built by Vite from `console/` and compiled into the
//! binary (`build.rs`). They are public (they hold no data and no secret: every page asks the
//! API, through the signed-in session, for what the caller may see), served with a strict
//! Content Security Policy (scripts, styles and connections to this origin only; no inline
//! script, no framing), and without a built console `/console` says how to build it.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// What the console's pages may load and reach.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page served when the binary was built without the console.
const NOT_BUILT: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sovereign console: not built</title></head>
<body><main><h1>The console is not built into this binary</h1>
<p>The API works as usual. To build the console, run <code>bash scripts/run</code>, which builds
it with this machine's Node.js, or by hand:</p>
<pre>npm ci --prefix console &amp;&amp; npm run build --prefix console
cargo build --release --bin sov</pre>
<p>then start <code>sov serve</code> again.</p></main></body></html>
";

/// Whether this binary carries the console.
pub fn built() -> bool {
    !ASSETS.is_empty()
}

/// `GET /console`, `/console/` and `/console/{path}`.
pub(crate) async fn serve(req: Request) -> Response {
    answer(ASSETS, req.uri().path())
}

/// The answer to `path` from `assets` (the built files; none: the page saying how to build).
fn answer(assets: &'static [(&str, &str, &[u8])], path: &str) -> Response {
    let rel = path
        .strip_prefix("/console")
        .map(|p| p.trim_start_matches('/'))
        .unwrap_or_default();
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if assets.is_empty() {
        return page(
            StatusCode::NOT_FOUND,
            "text/html; charset=utf-8",
            NOT_BUILT.as_bytes(),
            "no-cache",
        );
    }
    match assets.iter().find(|(p, _, _)| *p == rel) {
        // Vite names every asset but the page by its content's hash: cached for good.
        Some((p, kind, bytes)) => {
            let cache = if p.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            page(StatusCode::OK, kind, bytes, cache)
        }
        None => page(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"No such file in the console.\n",
            "no-cache",
        ),
    }
}

fn page(status: StatusCode, kind: &str, bytes: &'static [u8], cache: &'static str) -> Response {
    let mut response = (status, bytes).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(kind) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BUILT: &[(&str, &str, &[u8])] = &[
        ("index.html", "text/html; charset=utf-8", b"<!doctype html>"),
        ("assets/app-1a2b.js", "text/javascript; charset=utf-8", b"x"),
    ];

    fn header(r: &Response, name: header::HeaderName) -> String {
        r.headers()[name].to_str().unwrap().to_owned()
    }

    #[test]
    fn without_a_build_every_path_says_how_to_build() {
        for path in ["/console", "/console/", "/console/assets/app.js"] {
            let r = answer(&[], path);
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            assert_eq!(header(&r, header::CONTENT_TYPE), "text/html; charset=utf-8");
            assert!(NOT_BUILT.contains("npm run build --prefix console"));
            assert!(header(&r, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
        }
    }

    #[test]
    fn a_build_is_served_with_its_types_caching_and_policy() {
        let page = answer(BUILT, "/console/");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(header(&page, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header(&page, header::X_FRAME_OPTIONS), "DENY");
        let asset = answer(BUILT, "/console/assets/app-1a2b.js");
        assert_eq!(
            header(&asset, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert!(header(&asset, header::CACHE_CONTROL).contains("immutable"));
        assert_eq!(header(&asset, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        // Nothing outside the built files, however the path is spelt.
        for path in [
            "/console/../keys/log.key",
            "/console/assets/../../sov.toml",
            "/console/nope",
        ] {
            assert_eq!(
                answer(BUILT, path).status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }
}
