// The Open Audit Record's entry, version 1 (docs/audit-format.md), decoded in the browser: an
// implementation of its own, not the Rust one, so the console's view of the record does not
// rest on the node's code. Like the Rust decoder it accepts only the one encoding of an entry
// and names the field and offset of anything else.

export interface Entry {
  kind: string;
  kindCode: number;
  index: bigint;
  /// Unix milliseconds, exact (a u64 may exceed what a Number holds exactly).
  time: bigint;
  /// The same as a Number, for display.
  timeMs: number;
  prev: Uint8Array;
  node: string;
  principal: string;
  resource: string;
  outcome: string;
  reason: string;
  model: Uint8Array | null;
  input: Uint8Array | null;
  output: Uint8Array | null;
  attrs: [string, string][];
}

export const KINDS = [
  "server.start", "server.stop", "model.import", "model.load", "model.remove", "inference",
  "refusal", "policy.decision", "policy.change", "egress.decision", "key.rotation",
  "seal.attestation", "recovery", "identity.change", "corpus.change", "specialist.change",
  "route", "retrieval", "tool.call", "tool.server", "session",
];

const OUTCOMES = ["ok", "denied", "error", "started", "cancelled"];

export class DecodeError extends Error {
  constructor(field: string, offset: number, why: string) {
    super(`entry: ${field} at byte ${offset}: ${why}`);
  }
}

// ignoreBOM: a leading U+FEFF is part of the string (the Rust decoder keeps it too).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function hasControl(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  take(n: number, field: string): Uint8Array {
    if (this.pos + n > this.b.length) throw new DecodeError(field, this.pos, `needs ${n} bytes, ${this.b.length - this.pos} left`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(field: string): number {
    return this.take(1, field)[0];
  }

  u16(field: string): number {
    const x = this.take(2, field);
    return (x[0] << 8) | x[1];
  }

  u64(field: string): bigint {
    const x = this.take(8, field);
    let v = 0n;
    for (const byte of x) v = (v << 8n) | BigInt(byte);
    return v;
  }

  str(lenBytes: 1 | 2, field: string, min = 0): string {
    const at = this.pos;
    const n = lenBytes === 1 ? this.u8(field) : this.u16(field);
    if (n < min) throw new DecodeError(field, at, `at least ${min} bytes`);
    let s: string;
    try {
      s = utf8.decode(this.take(n, field));
    } catch {
      throw new DecodeError(field, at, "not UTF-8");
    }
    if (hasControl(s)) throw new DecodeError(field, at, "holds a control character");
    return s;
  }

  opt32(field: string): Uint8Array | null {
    const at = this.pos;
    const flag = this.u8(field);
    if (flag === 0) return null;
    if (flag !== 1) throw new DecodeError(field, at, `presence byte ${flag}, not 0 or 1`);
    return this.take(32, field).slice();
  }
}

const KEY = /^[a-z0-9_.-]{1,64}$/;

export function decodeEntry(bytes: Uint8Array): Entry {
  if (bytes.length > 65535) throw new DecodeError("entry", 0, "longer than 65,535 bytes");
  const r = new Reader(bytes);
  const version = r.u8("version");
  if (version !== 1) throw new DecodeError("version", 0, `version ${version}, not 1`);
  const kindCode = r.u16("kind");
  if (kindCode === 0) throw new DecodeError("kind", 1, "kind 0 is invalid");
  const index = r.u64("index");
  const time = r.u64("time");
  const prev = r.take(32, "prev").slice();
  const node = r.str(1, "node", 1);
  const principal = r.str(1, "principal");
  const resource = r.str(2, "resource");
  const outcomeCode = r.u8("outcome");
  const reason = r.str(2, "reason");
  const model = r.opt32("model");
  const input = r.opt32("input");
  const output = r.opt32("output");
  const countAt = r.pos;
  const count = r.u8("attr count");
  if (count > 64) throw new DecodeError("attr count", countAt, `${count} attributes, at most 64`);
  const attrs: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const key = r.str(1, "attribute key", 1);
    if (!KEY.test(key)) throw new DecodeError("attribute key", at, `${JSON.stringify(key)} is not a-z 0-9 _ . -`);
    if (attrs.length > 0 && !(attrs[attrs.length - 1][0] < key)) throw new DecodeError("attribute key", at, "keys are not strictly ascending");
    attrs.push([key, r.str(2, "attribute value")]);
  }
  if (r.pos !== bytes.length) throw new DecodeError("entry", r.pos, `${bytes.length - r.pos} bytes after the last attribute`);
  return {
    kind: KINDS[kindCode - 1] ?? `kind.${kindCode}`,
    kindCode,
    index,
    time,
    timeMs: Number(time),
    prev,
    node,
    principal,
    resource,
    outcome: OUTCOMES[outcomeCode] ?? `outcome.${outcomeCode}`,
    reason,
    model,
    input,
    output,
    attrs,
  };
}

/// The entries of an entry bundle (each a u16 length and its bytes), `count` of them.
export function splitBundle(bundle: Uint8Array, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < bundle.length) {
    if (pos + 2 > bundle.length) throw new DecodeError("entry bundle", pos, "a length cut short");
    const n = (bundle[pos] << 8) | bundle[pos + 1];
    if (pos + 2 + n > bundle.length) throw new DecodeError("entry bundle", pos, `an entry of ${n} bytes cut short`);
    out.push(bundle.subarray(pos + 2, pos + 2 + n));
    pos += 2 + n;
  }
  if (out.length !== count) throw new DecodeError("entry bundle", 0, `${out.length} entries, expected ${count}`);
  return out;
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function attr(e: Entry, key: string): string | undefined {
  return e.attrs.find(([k]) => k === key)?.[1];
}
