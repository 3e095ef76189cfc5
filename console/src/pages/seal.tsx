// The seal as applied when the node started: every control and the layer that enforces it,
// each kernel layer, the probes run right after, what the seal does not cover, and the
// declaration changes waiting for the next start.

import { useEffect, useState } from "preact/hooks";
import { json } from "../api";

interface Status {
  report: {
    started_at: string;
    kernel: string;
    listen: string;
    sealed: boolean;
    threads: number;
    layers: { layer: string; declared: boolean; in_force: boolean; detail: string }[];
    controls: { name: string; declared: string; enforced_by: string[]; level: string; probes: string[] }[];
    probes: { name: string; tried: string; expect: string; result: string; holds: boolean }[];
    not_covered: string[];
  };
  report_sha256: string;
  attestation_index: number | null;
  pending: string[] | null;
  pending_error: string | null;
}

function yes(b: boolean, good = "yes", bad = "no") {
  return b ? <span class="ok">{good}</span> : <span class="bad">{bad}</span>;
}

export function Seal() {
  const [s, setS] = useState<Status | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    json<Status>("/v1/seal").then(setS).catch((e) => setError(e.message));
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!s) return <p aria-busy="true">Loading the seal report…</p>;
  const r = s.report;
  return (
    <section aria-labelledby="seal-title">
      <h1 id="seal-title">Seal</h1>
      <p class={r.sealed ? "banner ok" : "banner bad"} role="status">
        {r.sealed ? "Sealed: every declared layer is in force and every probe held." : "Not sealed: see the layers and probes below."}
      </p>
      <dl class="facts">
        <dt>Applied</dt><dd>{r.started_at}</dd>
        <dt>Kernel</dt><dd>{r.kernel}</dd>
        <dt>Listening on</dt><dd>{r.listen}</dd>
        <dt>Threads when applied</dt><dd>{r.threads}</dd>
        <dt>Report SHA-256</dt><dd><code>{s.report_sha256}</code></dd>
        <dt>Attested in</dt>
        <dd>{s.attestation_index === null ? "—" : <a href={`#/audit/${s.attestation_index}`}>entry {s.attestation_index}</a>}</dd>
      </dl>
      <h2>Controls</h2>
      <div class="scroll" tabIndex={0}>
        <table>
          <thead><tr><th scope="col">Control</th><th scope="col">Declared</th><th scope="col">Enforced by</th><th scope="col">Level</th><th scope="col">Probes</th></tr></thead>
          <tbody>
            {r.controls.map((c) => (
              <tr><th scope="row">{c.name}</th><td>{c.declared}</td><td>{c.enforced_by.join(", ") || "—"}</td><td>{c.level}</td><td>{c.probes.join(", ") || "—"}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Kernel layers</h2>
      <div class="scroll" tabIndex={0}>
        <table>
          <thead><tr><th scope="col">Layer</th><th scope="col">Declared</th><th scope="col">In force</th><th scope="col">Detail</th></tr></thead>
          <tbody>
            {r.layers.map((l) => (
              <tr><th scope="row">{String(l.layer)}</th><td>{l.declared ? "yes" : "no"}</td><td>{yes(l.in_force || !l.declared, l.in_force ? "yes" : "not declared", "NO")}</td><td>{l.detail}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Probes</h2>
      <div class="scroll" tabIndex={0}>
        <table>
          <thead><tr><th scope="col">Probe</th><th scope="col">Tried</th><th scope="col">Expected</th><th scope="col">Result</th><th scope="col">Held</th></tr></thead>
          <tbody>
            {r.probes.map((p) => (
              <tr><th scope="row">{p.name}</th><td>{p.tried}</td><td>{p.expect}</td><td>{p.result}</td><td>{yes(p.holds)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Not covered by the seal</h2>
      <ul>{r.not_covered.map((n) => <li>{n}</li>)}</ul>
      <h2>Pending changes</h2>
      {s.pending_error ? (
        <p class="error">{s.pending_error}</p>
      ) : s.pending && s.pending.length > 0 ? (
        <ul>{s.pending.map((p) => <li>{p}</li>)}</ul>
      ) : (
        <p>None: the declaration in sov.toml is the one in force.</p>
      )}
    </section>
  );
}
