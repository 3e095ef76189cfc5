// The Sovereign console: one page app over the node's own API, signed in with a session (the
// token is sent once, at sign-in, and never kept by the page). Pages are chosen by the URL's
// hash, so every page has an address and the back button works without a server route.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, current, signIn, signOut, whenSignedOut, type Session } from "./api";
import { Chat } from "./pages/chat";
import { Seal } from "./pages/seal";
import { Audit } from "./pages/audit";
import { Admin } from "./pages/admin";
import { Models } from "./pages/models";
import { Activity } from "./pages/activity";
import "./style.css";

const PAGES: { hash: string; title: string }[] = [
  { hash: "chat", title: "Chat" },
  { hash: "models", title: "Models" },
  { hash: "seal", title: "Seal" },
  { hash: "audit", title: "Audit record" },
  { hash: "activity", title: "Activity" },
  { hash: "admin", title: "Administration" },
];

function route(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (s: Session) => void; notice: string }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function submit(ev: Event) {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem("token") as HTMLInputElement;
    const token = input.value.trim();
    // The token leaves the field at once: the page keeps only the session's CSRF token.
    input.value = "";
    setBusy(true);
    setError("");
    try {
      onSignedIn(await signIn(token));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <main id="main" class="signin">
      <h1>Sovereign</h1>
      <p>Sign in with an API token. The node answers with a session; the token is not kept by this page.</p>
      {notice && <p class="notice" role="status">{notice}</p>}
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} required placeholder="sov_..." />
        <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
    </main>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState("");
  const [path, setPath] = useState(route());

  useEffect(() => {
    whenSignedOut(() => {
      setSession(null);
      setNotice("Your session ended. Sign in again.");
    });
    const onHash = () => setPath(route());
    addEventListener("hashchange", onHash);
    current()
      .then(setSession)
      .catch((e) => {
        setSession(null);
        setNotice(e instanceof ApiError ? e.message : String(e));
      });
    return () => removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    const page = PAGES.find((p) => p.hash === (path[0] ?? "chat"));
    document.title = `${page?.title ?? "Not found"} · Sovereign console`;
  }, [path]);

  if (session === undefined) return <main id="main" aria-busy="true"><p>Loading…</p></main>;
  if (session === null)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          setNotice("");
          setSession(s);
        }}
      />
    );

  async function out() {
    try {
      await signOut();
    } finally {
      setSession(null);
      setNotice("You are signed out.");
    }
  }

  const page = path[0] ?? "chat";
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <span class="brand">Sovereign</span>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a href={`#/${p.hash}`} aria-current={page === p.hash ? "page" : undefined}>{p.title}</a>
          ))}
        </nav>
        <span class="who" title={`session ${session.id}, token ${session.token}, until ${session.expires_at}`}>
          {session.principal} <small>({session.roles.join(", ") || "no role"})</small>
        </span>
        <button type="button" onClick={out}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1}>
        {/* The chat stays mounted while other pages are shown, so a conversation survives a
            look at the seal; signing out unmounts it, and nothing of it is kept. */}
        <div hidden={page !== "chat"}>
          <Chat />
        </div>
        {page === "models" && <Models />}
        {page === "seal" && <Seal />}
        {page === "audit" && <Audit selected={path[1]} />}
        {page === "admin" && <Admin />}
        {page === "activity" && <Activity />}
        {!PAGES.some((p) => p.hash === page) && <p>No such page.</p>}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
