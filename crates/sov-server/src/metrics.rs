//! `GET /metrics`: the node's operating metrics in Prometheus' text exposition format (0.0.4),
//! for a token whose principal may `read-metrics` on the node (401 without a token, 403
//! without the permission; the starter role `monitor` has it and nothing else). And the layer
//! that counts every HTTP request, outermost, so refused authentication counts too.
//!
//! What is shown:
//! - `sov_http_requests_total{route, method, status}` and `sov_http_request_duration_seconds
//!   {route}` (a histogram, until the response's head: a stream's body is not timed). `route`
//!   is the route's pattern (`/v1/models/{id}`), `unmatched` for a path no route has, so the
//!   labels stay a small set whatever callers send.
//! - `sov_refusals_total{type, code}`: answers that refused (OpenAI's error `type` and `code`).
//! - per served model: `sov_engine_running`, `sov_engine_queued`, `sov_engine_slots`,
//!   `sov_engine_generations_total{outcome}`, `sov_engine_prompt_tokens_total`,
//!   `sov_engine_generated_tokens_total` (a rate of it is tokens per second).
//! - the record: `sov_audit_healthy`, `sov_audit_entries_total`, `sov_audit_wal_bytes`,
//!   `sov_audit_append_duration_seconds` (a histogram, from the call to the durable
//!   acknowledgement), `sov_audit_write_failures_total`, `sov_audit_recoveries_total`.
//! - the seal as applied at start: `sov_seal_sealed`, `sov_seal_layer{layer, declared}` (1 in
//!   force), `sov_seal_probes{result}` (held or failed).
//!
//! Counts start at zero when the server starts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sov_audit::Health;
use sov_engine::EngineStats;
use sov_kernel::Refusal;
use sov_policy::Action;

use crate::AppState;
use crate::error::ApiError;
use crate::record::Door;

/// Upper bounds of the HTTP latency buckets, in seconds.
const HTTP_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A histogram over [`HTTP_BUCKETS`] as Prometheus reads one: the observations at or under
/// each bound (cumulative), all of them, and their sum.
#[derive(Debug, Default, Clone)]
struct Histogram {
    cumulative: [u64; HTTP_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (n, bound) in self.cumulative.iter_mut().zip(HTTP_BUCKETS) {
            if seconds <= bound {
                *n = n.saturating_add(1);
            }
        }
        self.count = self.count.saturating_add(1);
        self.sum += seconds;
    }
}

/// What the HTTP layer has counted since the server started.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Counted>,
}

#[derive(Debug, Default, Clone)]
struct Counted {
    /// By (route, method, status).
    requests: BTreeMap<(String, String, u16), u64>,
    /// By route.
    latency: BTreeMap<String, Histogram>,
    /// By (type, code).
    refusals: BTreeMap<(String, String), u64>,
}

impl Metrics {
    fn observe(
        &self,
        route: String,
        method: String,
        status: u16,
        took: Duration,
        refusal: Option<&Refusal>,
    ) {
        let mut c = match self.inner.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *c.requests
            .entry((route.clone(), method, status))
            .or_default() += 1;
        c.latency
            .entry(route)
            .or_default()
            .observe(took.as_secs_f64());
        if let Some(r) = refusal.filter(|_| status >= 400) {
            let key = (r.kind.clone(), r.code.clone().unwrap_or_default());
            *c.refusals.entry(key).or_default() += 1;
        }
    }

    fn snapshot(&self) -> Counted {
        match self.inner.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The counting layer (see the module docs).
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics().observe(
        route,
        method,
        response.status().as_u16(),
        start.elapsed(),
        response.extensions().get::<Refusal>(),
    );
    response
}

pub(crate) async fn metrics(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    let node = state.kernel().node();
    door.with(async |ex| {
        let _permit = state.kernel().authorize(ex, Action::ReadMetrics, &node)?;
        Ok(())
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state),
    )
        .into_response())
}

/// A metric of each served model: name, type, help, and its value from the engine's stats.
type PerModel = (
    &'static str,
    &'static str,
    &'static str,
    fn(&EngineStats) -> u64,
);

/// Writes one metric family: its help, its type and its samples (`labels` already written).
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A histogram's `_bucket`, `_sum` and `_count` samples: `cumulative[i]` observations at
    /// or under `bounds[i]`, `count` in all (the `+Inf` bucket).
    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        cumulative: &[u64],
        count: u64,
        sum: f64,
    ) {
        for (bound, n) in bounds.iter().zip(cumulative) {
            let le = bound.to_string();
            let mut with = labels.to_vec();
            with.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with, n);
        }
        let mut with = labels.to_vec();
        with.push(("le", "+Inf"));
        self.sample(&format!("{name}_bucket"), &with, count);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }
}

fn render(state: &AppState) -> String {
    let mut out = Out(String::new());
    let Counted {
        requests,
        latency,
        refusals,
    } = state.metrics().snapshot();
    out.family(
        "sov_http_requests_total",
        "counter",
        "HTTP requests answered, by route pattern, method and status.",
    );
    for ((route, method, status), n) in &requests {
        let status = status.to_string();
        out.sample(
            "sov_http_requests_total",
            &[("route", route), ("method", method), ("status", &status)],
            n,
        );
    }
    out.family(
        "sov_http_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its response's head, by route pattern.",
    );
    for (route, h) in &latency {
        out.histogram(
            "sov_http_request_duration_seconds",
            &[("route", route)],
            &HTTP_BUCKETS,
            &h.cumulative,
            h.count,
            h.sum,
        );
    }
    out.family(
        "sov_refusals_total",
        "counter",
        "Requests refused, by OpenAI error type and code.",
    );
    for ((kind, code), n) in &refusals {
        out.sample("sov_refusals_total", &[("type", kind), ("code", code)], n);
    }

    let models: Vec<(&String, EngineStats)> = state
        .kernel()
        .models()
        .iter()
        .map(|(name, m)| (name, m.backend.stats()))
        .collect();
    let per_model: [PerModel; 8] = [
        (
            "sov_engine_running",
            "gauge",
            "Generations running now.",
            |s| s.running as u64,
        ),
        (
            "sov_engine_queued",
            "gauge",
            "Generations waiting for a slot.",
            |s| s.queued as u64,
        ),
        (
            "sov_engine_slots",
            "gauge",
            "Generations that can run at once.",
            |s| s.slots as u64,
        ),
        (
            "sov_engine_prompt_tokens_total",
            "counter",
            "Prompt tokens of the generations admitted.",
            |s| s.prompt_tokens,
        ),
        (
            "sov_engine_prompt_tokens_reused_total",
            "counter",
            "Prompt tokens whose KV cells were already cached (an earlier prompt's start), not decoded again.",
            |s| s.prompt_tokens_reused,
        ),
        (
            "sov_engine_generated_tokens_total",
            "counter",
            "Tokens generated.",
            |s| s.generated_tokens,
        ),
        (
            "sov_engine_decode_steps_total",
            "counter",
            "Decode steps of the generation worker (one batch through the model each).",
            |s| s.decode_steps,
        ),
        (
            "sov_engine_decode_outputs_total",
            "counter",
            "Sequences sampled after decode steps; over the steps, the batching achieved.",
            |s| s.decode_outputs,
        ),
    ];
    for (name, kind, help, value) in per_model {
        out.family(name, kind, help);
        for (model, s) in &models {
            out.sample(name, &[("model", model)], value(s));
        }
    }
    out.family(
        "sov_engine_generations_total",
        "counter",
        "Generations that ended, by outcome.",
    );
    for (model, s) in &models {
        for (what, n) in [
            ("completed", s.completed),
            ("cancelled", s.cancelled),
            ("failed", s.failed),
        ] {
            out.sample(
                "sov_engine_generations_total",
                &[("model", model), ("outcome", what)],
                n,
            );
        }
    }

    let log = state.kernel().log();
    let c = log.counters();
    let healthy = u8::from(matches!(log.health(), Health::Ok));
    out.family(
        "sov_audit_healthy",
        "gauge",
        "1 while the audit record accepts entries, 0 while writing it fails.",
    );
    out.sample("sov_audit_healthy", &[], healthy);
    for (name, kind, help, value) in [
        (
            "sov_audit_entries_total",
            "counter",
            "Entries appended to the audit record since the server started.",
            c.entries_appended,
        ),
        (
            "sov_audit_write_failures_total",
            "counter",
            "Writes of the audit record (log, tiles, checkpoints) that failed since the server started.",
            c.write_failures,
        ),
        (
            "sov_audit_recoveries_total",
            "counter",
            "Times the audit record recovered from a write failure without a restart.",
            c.recoveries,
        ),
        (
            "sov_audit_wal_bytes",
            "gauge",
            "Size of the audit record's write-ahead log (entries.wal), in bytes.",
            c.wal_bytes,
        ),
    ] {
        out.family(name, kind, help);
        out.sample(name, &[], value);
    }
    let bounds: Vec<f64> = sov_audit::APPEND_BUCKETS_US
        .iter()
        .map(|us| *us as f64 / 1e6)
        .collect();
    let lat = c.append_latency;
    out.family(
        "sov_audit_append_duration_seconds",
        "histogram",
        "Time from an append to its durable acknowledgement.",
    );
    out.histogram(
        "sov_audit_append_duration_seconds",
        &[],
        &bounds,
        &lat.buckets,
        lat.count,
        lat.sum_us as f64 / 1e6,
    );

    if let Some(seal) = state.seal() {
        let r = &seal.report;
        out.family(
            "sov_seal_sealed",
            "gauge",
            "1 when every declared layer is in force and every probe held at start.",
        );
        out.sample("sov_seal_sealed", &[], u8::from(r.sealed));
        out.family(
            "sov_seal_layer",
            "gauge",
            "1 when the kernel layer is in force for the whole process.",
        );
        for l in &r.layers {
            let declared = if l.declared { "true" } else { "false" };
            out.sample(
                "sov_seal_layer",
                &[("layer", l.layer.name()), ("declared", declared)],
                u8::from(l.in_force),
            );
        }
        let held = r.probes.iter().filter(|p| p.holds).count();
        out.family(
            "sov_seal_probes",
            "gauge",
            "The seal's probes at start, by result.",
        );
        out.sample("sov_seal_probes", &[("result", "held")], held);
        out.sample(
            "sov_seal_probes",
            &[("result", "failed")],
            r.probes.len() - held,
        );
    }
    out.0
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_counts_what_is_over_the_last_bound() {
        let mut out = Out(String::new());
        out.histogram("h", &[("route", "/a\"b")], &[0.1, 1.0], &[2, 2], 3, 7.5);
        assert_eq!(
            out.0,
            "h_bucket{route=\"/a\\\"b\",le=\"0.1\"} 2\nh_bucket{route=\"/a\\\"b\",le=\"1\"} 2\nh_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 3\nh_sum{route=\"/a\\\"b\"} 7.5\nh_count{route=\"/a\\\"b\"} 3\n"
        );
        let mut h = Histogram::default();
        h.observe(0.004);
        h.observe(0.005);
        h.observe(500.0);
        // Two at or under the first bound, one over the last (only in the count).
        assert_eq!(h.cumulative[0], 2);
        assert_eq!(h.count - h.cumulative[HTTP_BUCKETS.len() - 1], 1);
    }
}
