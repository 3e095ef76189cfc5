// Models, specialists and corpora as the caller may see them (GET /v1/catalog): what each is,
// the hashes that pin it and the owner's key that signed its manifest; each corpus's documents
// the caller may read, with their clearance and attributes (nothing of the others).

import { useEffect, useState } from "preact/hooks";
import { json } from "../api";

interface Catalog {
  signed_by: string;
  signatures: string;
  models: { name: string; sha256: string; created: number; serves: string }[];
  specialists: {
    name: string;
    manifest_sha256: string;
    base: string;
    base_sha256: string;
    adapter_sha256: string | null;
    corpora: string[];
    description: string;
    tools: string[];
  }[];
  corpora: {
    name: string;
    manifest_sha256: string;
    embedding_model: string;
    documents: { id: string; clearance: number | null; attrs: Record<string, string> }[];
  }[];
}

function Hash({ h }: { h: string }) {
  return <code title={h}>{h.slice(0, 16)}…</code>;
}

export function Models() {
  const [c, setC] = useState<Catalog | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    json<Catalog>("/v1/catalog").then(setC).catch((e) => setError(e.message));
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!c) return <p aria-busy="true">Loading…</p>;
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models, specialists and corpora</h1>
      <p>
        Every manifest below is signed by <code>{c.signed_by}</code> ({c.signatures}); what you are not allowed to use is
        not listed.
      </p>
      <h2>Models</h2>
      <div class="scroll" tabIndex={0}>
        <table class="models">
          <thead><tr><th scope="col">Name</th><th scope="col">Serves</th><th scope="col">File SHA-256</th><th scope="col">Imported</th></tr></thead>
          <tbody>
            {c.models.map((m) => (
              <tr><th scope="row">{m.name}</th><td>{m.serves}</td><td><Hash h={m.sha256} /></td><td>{new Date(m.created * 1000).toISOString().slice(0, 10)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Specialists</h2>
      {c.specialists.length === 0 ? (
        <p>None that you may use.</p>
      ) : (
        <div class="scroll" tabIndex={0}>
          <table class="specialists">
            <thead><tr><th scope="col">Name</th><th scope="col">What it is for</th><th scope="col">Base model</th><th scope="col">Corpora</th><th scope="col">Tools</th><th scope="col">Manifest SHA-256</th><th scope="col">Adapter SHA-256</th></tr></thead>
            <tbody>
              {c.specialists.map((s) => (
                <tr>
                  <th scope="row">{s.name}</th>
                  <td>{s.description}</td>
                  <td>{s.base} <Hash h={s.base_sha256} /></td>
                  <td>{s.corpora.join(", ")}</td>
                  <td>{s.tools.join(", ") || "—"}</td>
                  <td><Hash h={s.manifest_sha256} /></td>
                  <td>{s.adapter_sha256 ? <Hash h={s.adapter_sha256} /> : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Corpora</h2>
      {c.corpora.length === 0 && <p>None that you may read.</p>}
      {c.corpora.map((k) => (
        <section class="corpus" aria-label={`Corpus ${k.name}`}>
          <h3>{k.name}</h3>
          <p>
            Manifest <Hash h={k.manifest_sha256} />, embedded by {k.embedding_model}; {k.documents.length} documents you may read.
          </p>
          <div class="scroll" tabIndex={0}>
            <table class="documents">
              <thead><tr><th scope="col">Document</th><th scope="col">Clearance</th><th scope="col">Attributes</th></tr></thead>
              <tbody>
                {k.documents.map((d) => (
                  <tr>
                    <th scope="row">{d.id}</th>
                    <td>{d.clearance ?? "—"}</td>
                    <td>{Object.entries(d.attrs).map(([a, v]) => `${a}=${v}`).join(", ") || "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </section>
  );
}
