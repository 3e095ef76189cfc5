// The console's one way to the API: same-origin requests carrying the session cookie (HttpOnly:
// the page never sees it), the session's CSRF token on every state-changing request, and
// errors in OpenAI's shape turned into ApiError. A 401 means the session ended: the app goes
// back to the sign-in form.

export interface Session {
  id: string;
  principal: string;
  roles: string[];
  token: string;
  signed_in_at: string;
  expires_at: string;
  idle_timeout_s: number;
  csrf_token: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

let csrf = "";
let onSignedOut: () => void = () => {};

export function setCsrf(token: string): void {
  csrf = token;
}

export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let code: string | null = null;
  try {
    const body = await res.json();
    if (body && body.error) {
      message = String(body.error.message ?? message);
      code = body.error.code ?? null;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message, code);
}

export interface Call {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

/// A request to the API; throws ApiError for anything but 2xx.
export async function call(path: string, { method = "GET", body, signal }: Call = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["x-sov-csrf"] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
    signal,
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && path !== "/v1/console/session") onSignedOut();
    throw err;
  }
  return res;
}

export async function json<T = any>(path: string, opts: Call = {}): Promise<T> {
  return (await call(path, opts)).json();
}

export async function bytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await call(path)).arrayBuffer());
}

export async function text(path: string): Promise<string> {
  return (await call(path)).text();
}

/// Signs in: the token goes to the server once and is not kept by the page.
export async function signIn(token: string): Promise<Session> {
  const s = await json<Session>("/v1/console/session", { method: "POST", body: { token } });
  setCsrf(s.csrf_token);
  return s;
}

/// The session this page is signed in with, if any (after a reload).
export async function current(): Promise<Session | null> {
  try {
    const s = await json<Session>("/v1/console/session");
    setCsrf(s.csrf_token);
    return s;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return null;
    throw e;
  }
}

export async function signOut(): Promise<void> {
  await call("/v1/console/session", { method: "DELETE" });
  setCsrf("");
}

/// Reads a server-sent event stream, calling `each` with every `data:` payload but [DONE].
export async function events(res: Response, each: (data: string) => void): Promise<void> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (line.startsWith("data:")) {
          const data = line.slice(5).trim();
          if (data !== "[DONE]") each(data);
        }
      }
    }
  }
}
