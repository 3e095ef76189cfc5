// Principals, tokens and the policy set, for those the policies let manage them (a caller who
// may not sees the API's 403 here): add and disable principals, issue and revoke tokens (a new
// token's secret is shown once and never kept by the page), the policy set's hash and files,
// and a reload of the policy folder.

import { useEffect, useState } from "preact/hooks";
import { json } from "../api";

interface Principal {
  name: string;
  kind: string;
  roles: string[];
  attrs: Record<string, string>;
  created_at: string;
  disabled_at: string | null;
}

interface Token {
  id: string;
  principal: string;
  scope: string[] | null;
  created_at: string;
  expires_at: string | null;
  state: string;
}

interface PolicySet {
  hash: string;
  files: string[];
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function Admin() {
  const [principals, setPrincipals] = useState<Principal[]>([]);
  const [tokens, setTokens] = useState<Token[]>([]);
  const [policies, setPolicies] = useState<PolicySet | null>(null);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");
  const [secret, setSecret] = useState<{ principal: string; token: string } | null>(null);

  async function load() {
    try {
      const [p, t, s] = await Promise.all([
        json<{ data: Principal[] }>("/v1/admin/principals"),
        json<{ data: Token[] }>("/v1/admin/tokens"),
        json<PolicySet>("/v1/admin/policies"),
      ]);
      setPrincipals(p.data);
      setTokens(t.data);
      setPolicies(s);
      setError("");
    } catch (e) {
      setError(message(e));
    }
  }
  useEffect(() => {
    load();
  }, []);

  async function act(what: string, f: () => Promise<unknown>) {
    setStatus("");
    setError("");
    try {
      await f();
      setStatus(what);
      await load();
    } catch (e) {
      setError(`${what}: ${message(e)}`);
    }
  }

  function addPrincipal(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const name = String(data.get("name") ?? "").trim();
    const roles = String(data.get("roles") ?? "")
      .split(",")
      .map((r) => r.trim())
      .filter(Boolean);
    act(`Added ${name}`, async () => {
      await json("/v1/admin/principals", { method: "POST", body: { name, roles } });
      form.reset();
    });
  }

  function issue(principal: string) {
    act(`Issued a token for ${principal}`, async () => {
      const t = await json<{ token: string }>("/v1/admin/tokens", { method: "POST", body: { principal } });
      setSecret({ principal, token: t.token });
    });
  }

  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Principals, tokens and policies</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {status && <p class="notice" role="status">{status}</p>}
      {secret && (
        <div class="banner" role="status">
          <p>
            The new token of <strong>{secret.principal}</strong>, shown only this once (this page does not keep it):
          </p>
          <code class="wrap" data-secret>{secret.token}</code>
          <button type="button" onClick={() => setSecret(null)}>I have stored it</button>
        </div>
      )}
      <h2>Principals</h2>
      <div class="scroll" tabIndex={0}>
        <table class="principals">
          <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Roles</th><th scope="col">Attributes</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            {principals.map((p) => (
              <tr>
                <th scope="row">{p.name}</th>
                <td>{p.kind}</td>
                <td>{p.roles.join(", ")}</td>
                <td>{Object.entries(p.attrs).map(([k, v]) => `${k}=${v}`).join(", ")}</td>
                <td>{p.disabled_at ? `disabled ${p.disabled_at}` : "enabled"}</td>
                <td class="actions">
                  {!p.disabled_at && (
                    <>
                      <button type="button" onClick={() => issue(p.name)} aria-label={`Issue token for ${p.name}`}>Issue token</button>{" "}
                      <button type="button" class="danger" onClick={() => act(`Disabled ${p.name}`, () => json(`/v1/admin/principals/${encodeURIComponent(p.name)}/disable`, { method: "POST", body: {} }))} aria-label={`Disable ${p.name}`}>Disable</button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form class="inline" onSubmit={addPrincipal} aria-label="Add a principal">
        <label>
          Name
          <input name="name" required pattern="[a-z0-9][a-z0-9_.\-]{0,63}" />
        </label>
        <label>
          Roles (comma-separated)
          <input name="roles" />
        </label>
        <button type="submit">Add principal</button>
      </form>
      <h2>Tokens</h2>
      <div class="scroll" tabIndex={0}>
        <table class="tokens">
          <thead><tr><th scope="col">ID</th><th scope="col">Principal</th><th scope="col">Scope</th><th scope="col">Issued</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            {tokens.map((t) => (
              <tr>
                <th scope="row"><code>{t.id}</code></th>
                <td>{t.principal}</td>
                <td>{t.scope ? t.scope.join(", ") : "all"}</td>
                <td>{t.created_at}</td>
                <td>{t.expires_at ?? "never"}</td>
                <td>{t.state}</td>
                <td class="actions">
                  {t.state === "active" && (
                    <button type="button" class="danger" onClick={() => act(`Revoked ${t.id}`, () => json(`/v1/admin/tokens/${encodeURIComponent(t.id)}/revoke`, { method: "POST", body: {} }))} aria-label={`Revoke token ${t.id}`}>Revoke</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Policy set</h2>
      {policies && (
        <>
          <dl class="facts">
            <dt>SHA-256</dt>
            <dd><code>{policies.hash}</code></dd>
            <dt>Files</dt>
            <dd>{policies.files.join(", ")}</dd>
          </dl>
          <button type="button" onClick={() => act("Reloaded the policy folder", () => json("/v1/admin/policies/reload", { method: "POST", body: {} }))}>Reload the policy folder</button>
        </>
      )}
    </section>
  );
}
