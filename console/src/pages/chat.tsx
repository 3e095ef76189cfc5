// Chat with any model or specialist the caller may use (the node lists only those), streamed,
// with the passages a specialist cited beside the answer (document, section, exact text and
// its SHA-256, checked here against the text) and its tool calls as steps.

import { useEffect, useRef, useState } from "preact/hooks";
import { sha256 } from "@noble/hashes/sha2.js";
import { call, events, json } from "../api";
import { hex } from "../audit/entry";

interface Citation {
  index: number;
  corpus: string;
  document: string;
  heading: string;
  text: string;
  chunk_sha256: string;
  score: number;
}

interface ToolStep {
  name?: string;
  tool?: string;
  arguments?: unknown;
  result?: unknown;
  error?: unknown;
}

interface Turn {
  role: "user" | "assistant";
  content: string;
  model?: string;
  citations?: Citation[];
  steps?: ToolStep[];
  entry?: string | null;
  error?: string;
  done?: boolean;
}

const encoder = new TextEncoder();

function CitationCard({ c }: { c: Citation }) {
  const matches = hex(sha256(encoder.encode(c.text))) === c.chunk_sha256;
  return (
    <li class="citation">
      <div class="cite-head">
        <strong>[{c.index}]</strong> {c.corpus}/{c.document}
        {c.heading && <span class="heading"> · {c.heading}</span>}
      </div>
      <blockquote>{c.text}</blockquote>
      <div class="hash">
        <code title="SHA-256 of the passage's text">{c.chunk_sha256.slice(0, 16)}…</code>{" "}
        {matches ? <span class="ok">text matches its hash</span> : <span class="bad">text does not match its hash</span>}
      </div>
    </li>
  );
}

export function Chat() {
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    json<{ data: { id: string; sov_serves?: string }[] }>("/v1/models")
      .then((list) => {
        const ids = list.data.filter((m) => m.sov_serves !== "embeddings").map((m) => m.id);
        setModels(ids);
        setModel((m) => m || ids[0] || "");
      })
      .catch((e) => setError(e.message));
  }, []);

  async function send(ev: Event) {
    ev.preventDefault();
    const question = input.current?.value.trim() ?? "";
    if (!question || !model) return;
    if (input.current) input.current.value = "";
    const history = [...turns.filter((t) => !t.error), { role: "user" as const, content: question }];
    const answer: Turn = { role: "assistant", content: "", model, citations: [], steps: [] };
    setTurns([...history, answer]);
    setBusy(true);
    const update = () => setTurns([...history, { ...answer }]);
    try {
      const res = await call("/v1/chat/completions", {
        method: "POST",
        body: {
          model,
          stream: true,
          messages: history.map((t) => ({ role: t.role, content: t.content })),
        },
      });
      answer.entry = res.headers.get("sov-audit-index");
      await events(res, (data) => {
        const chunk = JSON.parse(data);
        if (chunk.model) answer.model = chunk.model;
        if (Array.isArray(chunk.citations)) answer.citations = chunk.citations;
        if (Array.isArray(chunk.sov_tool_calls)) answer.steps = chunk.sov_tool_calls;
        if (chunk.error) answer.error = chunk.error.message ?? String(chunk.error);
        for (const choice of chunk.choices ?? []) {
          const piece = choice.delta?.content;
          if (typeof piece === "string") answer.content += piece;
        }
        update();
      });
      answer.done = true;
      update();
    } catch (e) {
      answer.error = e instanceof Error ? e.message : String(e);
      update();
    } finally {
      setBusy(false);
      input.current?.focus();
    }
  }

  return (
    <section aria-labelledby="chat-title">
      <h1 id="chat-title">Chat</h1>
      {error && <p class="error" role="alert">{error}</p>}
      <ol class="turns" aria-live="polite">
        {turns.map((t) => (
          <li class={`turn ${t.role}`}>
            <div class="who">{t.role === "user" ? "You" : t.model}</div>
            <div class="body">
              <p class="content">{t.content || (t.role === "assistant" && !t.done && !t.error ? "…" : "")}</p>
              {t.error && <p class="error" role="alert">{t.error}</p>}
              {t.steps && t.steps.length > 0 && (
                <details open>
                  <summary>Tool calls ({t.steps.length})</summary>
                  <ol class="steps">
                    {t.steps.map((s) => (
                      <li>
                        <code>{s.name ?? s.tool}</code>{" "}
                        <code>{typeof s.arguments === "string" ? s.arguments : JSON.stringify(s.arguments)}</code> →{" "}
                        <code>{JSON.stringify(s.result ?? s.error)}</code>
                      </li>
                    ))}
                  </ol>
                </details>
              )}
              {t.entry && (
                <p class="entry-link">
                  Recorded as <a href={`#/audit/${t.entry}`}>entry {t.entry}</a>
                </p>
              )}
            </div>
            {t.citations && t.citations.length > 0 && (
              <aside class="citations" aria-label="Sources">
                <h2>Sources</h2>
                <ol>
                  {t.citations.map((c) => (
                    <CitationCard c={c} />
                  ))}
                </ol>
              </aside>
            )}
          </li>
        ))}
      </ol>
      <form class="ask" onSubmit={send}>
        <label for="model">Model or specialist</label>
        <select id="model" value={model} onChange={(e) => setModel((e.currentTarget as HTMLSelectElement).value)}>
          {models.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
        <label for="question">Message</label>
        <textarea
          id="question"
          ref={input}
          rows={3}
          required
          onKeyDown={(e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) (e.currentTarget.form as HTMLFormElement).requestSubmit();
          }}
        />
        <button type="submit" disabled={busy || !model}>{busy ? "Answering…" : "Send"}</button>
      </form>
    </section>
  );
}
