// The console's entry decoder (src/audit/entry.ts) against an exported record, for a
// differential test with the Rust decoder (crates/sov-cli/tests/console.rs): every entry of
// every bundle of the export, and mutations of each (bit flips, truncations, extensions, byte
// insertions and deletions, length bytes set to extremes), decoded here. For each input it
// writes one JSON line: the bytes (base64), whether the decoder accepted them, and what it
// read; the Rust test decodes the same bytes and must agree on every line. Only DecodeError
// may be thrown: any other exception is a bug and fails the run.
//
// node test/decoder.mjs EXPORT_DIR OUT.jsonl [MUTATIONS_PER_ENTRY]

import { build } from "vite";
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, out, perEntry = "40"] = process.argv.slice(2);
if (!dir || !out) throw new Error("usage: decoder.mjs EXPORT_DIR OUT.jsonl [MUTATIONS_PER_ENTRY]");

// The decoder as the console ships it, compiled by the console's own toolchain.
const tmp = mkdtempSync(join(tmpdir(), "sov-decoder-"));
await build({
  configFile: false,
  logLevel: "silent",
  build: { lib: { entry: "src/audit/entry.ts", formats: ["es"], fileName: "entry" }, outDir: tmp, emptyOutDir: true },
});
const { decodeEntry, splitBundle, DecodeError, hex } = await import(pathToFileURL(join(tmp, "entry.js")).href);

// Every entry bundle of the export, full ones replacing the partial ones they extend.
function bundles(root) {
  const found = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else found.push(p);
    }
  };
  walk(join(root, "tile", "entries"));
  return found;
}
const entries = new Map();
for (const file of bundles(dir)) {
  const bytes = new Uint8Array(readFileSync(file));
  // Count the entries by walking the lengths (the width is in the path; this is independent).
  let n = 0;
  for (let at = 0; at + 2 <= bytes.length; at += 2 + ((bytes[at] << 8) | bytes[at + 1])) n++;
  for (const e of splitBundle(bytes, n)) {
    const d = decodeEntry(e);
    entries.set(String(d.index), e.slice());
  }
}
if (entries.size === 0) throw new Error(`no entries under ${dir}`);

// A small deterministic PRNG (xorshift32), so a failure can be replayed.
let seed = 0x5eed1234;
const rnd = (n) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};

function mutate(e) {
  const b = Array.from(e);
  switch (rnd(7)) {
    case 0: {
      const i = rnd(b.length);
      b[i] ^= 1 << rnd(8);
      break;
    }
    case 1:
      b.length = rnd(b.length);
      break;
    case 2:
      b.push(rnd(256));
      break;
    case 3:
      b.splice(rnd(b.length), 0, rnd(256));
      break;
    case 4:
      b.splice(rnd(b.length), 1);
      break;
    case 5:
      b[rnd(b.length)] = [0, 1, 0x7f, 0x80, 0xff][rnd(5)];
      break;
    default: {
      // A string's or the attribute count's length byte set to an extreme.
      const i = 51 + rnd(Math.max(1, b.length - 51));
      if (i < b.length) b[i] = rnd(2) ? 0xff : 0;
    }
  }
  return new Uint8Array(b);
}

const lines = [];
let accepted = 0;
function record(bytes) {
  let line;
  try {
    const d = decodeEntry(bytes);
    accepted++;
    line = {
      ok: true,
      kind: d.kind,
      index: String(d.index),
      time_ms: String(d.time),
      prev: hex(d.prev),
      node: d.node,
      principal: d.principal,
      resource: d.resource,
      outcome: d.outcome,
      reason: d.reason,
      model: d.model && hex(d.model),
      input: d.input && hex(d.input),
      output: d.output && hex(d.output),
      attrs: Object.fromEntries(d.attrs),
    };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw new Error(`not a DecodeError on ${Buffer.from(bytes).toString("base64")}: ${e.stack}`);
    line = { ok: false, error: e.message };
  }
  line.bytes = Buffer.from(bytes).toString("base64");
  lines.push(JSON.stringify(line));
}
for (const e of entries.values()) {
  record(e);
  for (let i = 0; i < Number(perEntry); i++) record(mutate(e));
}
writeFileSync(out, lines.join("\n") + "\n");
console.log(JSON.stringify({ entries: entries.size, inputs: lines.length, accepted }));
