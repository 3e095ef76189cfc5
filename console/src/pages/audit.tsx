// The audit explorer: the latest entries of the record, read from its published entry bundles
// and decoded in the browser, filtered by kind, principal and time, one entry in full, and the
// whole record verified in the browser with the console's own code (audit/verify.ts).

import { useEffect, useMemo, useState } from "preact/hooks";
import { attr, hex, KINDS, type Entry } from "../audit/entry";
import { fetchCheckpoint, latest, type Checkpoint } from "../audit/tlog";
import { json } from "../api";
import { verifyRecord, type Step } from "../audit/verify";

const SHOWN = 512;

function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
}

function Detail({ index }: { index: string }) {
  const [e, setE] = useState<Record<string, unknown> | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setE(null);
    setError("");
    json(`/v1/audit/entries/${encodeURIComponent(index)}`).then(setE).catch((x) => setError(x.message));
  }, [index]);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!e) return <p aria-busy="true">Loading entry {index}…</p>;
  const { attrs, bytes, ...fields } = e as { attrs?: Record<string, string>; bytes?: string };
  return (
    <section class="detail" aria-labelledby="entry-title">
      <h2 id="entry-title">Entry {index}</h2>
      <dl class="facts">
        {Object.entries(fields).map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd><code>{typeof v === "string" ? v : JSON.stringify(v)}</code></dd>
          </>
        ))}
      </dl>
      {attrs && (
        <>
          <h3>Attributes</h3>
          <dl class="facts">
            {Object.entries(attrs).map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd><code>{String(v)}</code></dd>
              </>
            ))}
          </dl>
        </>
      )}
      <details>
        <summary>Bytes (base64)</summary>
        <code class="wrap">{bytes}</code>
      </details>
    </section>
  );
}

function Verify() {
  const [steps, setSteps] = useState<Step[] | null>(null);
  const [busy, setBusy] = useState(false);
  async function run() {
    setBusy(true);
    setSteps([]);
    try {
      await verifyRecord(setSteps);
    } catch (e) {
      setSteps((s) => [...(s ?? []), { what: "verification", ok: false, detail: String(e) }]);
    } finally {
      setBusy(false);
    }
  }
  const failed = steps?.find((s) => !s.ok);
  return (
    <section class="verify" aria-labelledby="verify-title">
      <h2 id="verify-title">Verify in this browser</h2>
      <p>
        Fetches the checkpoint, the log's keys, every tile and entry bundle and two proofs, and checks the ML-DSA-44 and
        Ed25519 signatures, every entry, the Merkle root, an inclusion proof and a consistency proof with this page's own
        code, not the node's.
      </p>
      <button type="button" onClick={run} disabled={busy}>{busy ? "Verifying…" : "Verify the record"}</button>
      {steps && (
        <>
          {!busy && steps.length > 0 && (
            <p class={failed ? "banner bad" : "banner ok"} role="status" data-verdict={failed ? "failed" : "verified"}>
              {failed ? `Verification failed: ${failed.what}: ${failed.detail}` : "Verified: every check below passed."}
            </p>
          )}
          <ol class="steps" aria-live="polite">
            {steps.map((s) => (
              <li class={s.ok ? "ok-step" : "bad-step"}>
                <span class={s.ok ? "ok" : "bad"}>{s.ok ? "✓" : "✗"}</span> <strong>{s.what}</strong>: {s.detail}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

export function Audit({ selected }: { selected?: string }) {
  const [cp, setCp] = useState<Checkpoint | null>(null);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [error, setError] = useState("");
  const [kind, setKind] = useState("");
  const [principal, setPrincipal] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");

  async function load() {
    setError("");
    try {
      const c = await fetchCheckpoint();
      setCp(c);
      setEntries(await latest(c.size, SHOWN));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }
  useEffect(() => {
    load();
  }, []);

  const shown = useMemo(() => {
    const from = since ? Date.parse(since) : -Infinity;
    const to = until ? Date.parse(until) : Infinity;
    return entries.filter(
      (e) =>
        (!kind || e.kind === kind) &&
        (!principal || e.principal.includes(principal)) &&
        e.timeMs >= from &&
        e.timeMs <= to,
    );
  }, [entries, kind, principal, since, until]);

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit record</h1>
      {cp && (
        <p>
          The latest signed checkpoint covers <strong>{cp.size}</strong> entries of <code>{cp.origin}</code>; root{" "}
          <code title={hex(cp.root)}>{hex(cp.root).slice(0, 16)}…</code>.{" "}
          <button type="button" onClick={load}>Reload</button>
        </p>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <Verify />
      {selected !== undefined && <Detail index={selected} />}
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">any</option>
            {KINDS.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Principal
          <input value={principal} onInput={(e) => setPrincipal((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          From
          <input type="datetime-local" value={since} onInput={(e) => setSince((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          To
          <input type="datetime-local" value={until} onInput={(e) => setUntil((e.currentTarget as HTMLInputElement).value)} />
        </label>
      </form>
      <p class="count" role="status">
        {shown.length} of the latest {entries.length} entries
      </p>
      <div class="scroll" tabIndex={0}>
        <table class="entries">
          <thead>
            <tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Principal</th><th scope="col">Resource</th><th scope="col">Outcome</th><th scope="col">Reason</th></tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr class={e.outcome === "denied" || e.outcome === "error" ? "refused" : ""}>
                <td><a href={`#/audit/${e.index}`}>{String(e.index)}</a></td>
                <td>{time(e.timeMs)}</td>
                <td>{e.kind}{attr(e, "change") ? ` (${attr(e, "change")})` : ""}</td>
                <td>{e.principal || "—"}</td>
                <td class="resource">{e.resource}</td>
                <td>{e.outcome}</td>
                <td>{e.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
