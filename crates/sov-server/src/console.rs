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
    let path = req.uri().path();
    let rel = path
        .strip_prefix("/console")
        .map(|p| p.trim_start_matches('/'))
        .unwrap_or_default();
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if !built() {
        return page(
            StatusCode::NOT_FOUND,
            "text/html; charset=utf-8",
            NOT_BUILT.as_bytes(),
            "no-cache",
        );
    }
    match ASSETS.iter().find(|(p, _, _)| *p == rel) {
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
