// The record verified in the browser, with code of its own (an implementation independent of
// the node's Rust): the checkpoint's ML-DSA-44 (subtree/v1 cosignature, FIPS 204 through
// @noble/post-quantum) and Ed25519 (@noble/curves) signatures against the log's keys; every
// entry bundle and level-0 hash tile (each leaf hash, each entry's decoding, index, time and
// hash chain); every higher hash tile; the RFC 6962 root; an inclusion proof (a receipt) and a
// consistency proof (RFC 9162) from the last tree this browser verified, or from half the tree.
// Each step reports what it checked or what failed, naming the tile, entry or signature.

import { ed25519 } from "@noble/curves/ed25519.js";
import { ml_dsa44 } from "@noble/post-quantum/ml-dsa.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytes, text } from "../api";
import { decodeEntry, hex, splitBundle } from "./entry";
import { b64, bundlePath, hashTilePath, parseCheckpoint, TILE_WIDTH, type Checkpoint } from "./tlog";

export interface Step {
  what: string;
  ok: boolean;
  detail: string;
}

const enc = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u64(n: bigint | number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export const leafHash = (entry: Uint8Array) => sha256(concat(new Uint8Array([0]), entry));
const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(concat(new Uint8Array([1]), l, r));

/// RFC 6962 Merkle tree hash of `leaves[lo, hi)`.
function mth(leaves: Uint8Array[], lo: number, hi: number): Uint8Array {
  const n = hi - lo;
  if (n === 0) return sha256(new Uint8Array(0));
  if (n === 1) return leaves[lo];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

export interface Vkey {
  name: string;
  id: Uint8Array;
  type: number;
  key: Uint8Array;
  line: string;
}

export function parseVkey(line: string): Vkey {
  // name+keyid+base64: the name holds no "+", the base64 may.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(line);
  if (!m) throw new Error(`vkey ${JSON.stringify(line)}: not name+keyid+key`);
  const parts = [m[1], m[2], m[3]];
  const raw = b64(parts[2]);
  const type = raw[0];
  const key = raw.slice(1);
  const id = sha256(concat(enc.encode(parts[0]), new Uint8Array([0x0a, type]), key)).slice(0, 4);
  if (hex(id) !== parts[1]) throw new Error(`vkey of ${parts[0]}: its key ID ${parts[1]} is not the key's (${hex(id)})`);
  return { name: parts[0], id, type, key, line };
}

/// Verifies every key's signature on the checkpoint (each key given must have signed).
function signatures(cp: Checkpoint, keys: Vkey[]): Step[] {
  const steps: Step[] = [];
  for (const k of keys) {
    const sig = cp.signatures.find((s) => s.name === k.name && equal(s.sig.slice(0, 4), k.id));
    const label = k.type === 0x01 ? "Ed25519" : k.type === 0x06 ? "ML-DSA-44" : `type 0x${k.type.toString(16)}`;
    const what = `${label} signature of ${k.name} (key ID ${hex(k.id)})`;
    if (!sig) {
      steps.push({ what, ok: false, detail: "the checkpoint carries no signature by this key" });
      continue;
    }
    let ok = false;
    let detail = "";
    try {
      if (k.type === 0x01) {
        ok = sig.sig.length === 68 && ed25519.verify(sig.sig.slice(4), enc.encode(cp.body), k.key);
        detail = "over the checkpoint's text";
      } else if (k.type === 0x06) {
        // c2sp.org/tlog-cosignature subtree/v1: key ID, u64 timestamp, signature.
        const ts = new DataView(sig.sig.buffer, sig.sig.byteOffset + 4, 8).getBigUint64(0);
        const name = enc.encode(k.name);
        const origin = enc.encode(cp.origin);
        const msg = concat(
          enc.encode("subtree/v1\n\0"),
          new Uint8Array([name.length]),
          name,
          u64(ts),
          new Uint8Array([origin.length]),
          origin,
          u64(0),
          u64(cp.size),
          cp.root,
        );
        ok = sig.sig.length === 4 + 8 + 2420 && ml_dsa44.verify(sig.sig.slice(12), msg, k.key);
        detail = `subtree/v1 cosignature of [0, ${cp.size}) at ${new Date(Number(ts) * 1000).toISOString()}`;
      } else {
        detail = "a signature type this page cannot check";
      }
    } catch (e) {
      detail = String(e);
    }
    steps.push({ what, ok, detail: ok ? detail : `does not verify (${detail})` });
  }
  return steps;
}

/// RFC 9162 2.1.3.2: the root from an inclusion proof.
export function inclusionRoot(index: number, size: number, leaf: Uint8Array, proof: Uint8Array[]): Uint8Array | null {
  if (index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/// RFC 9162 2.1.4.2: whether `proof` shows the tree of size1 (root1) is a prefix of size2 (root2).
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: Uint8Array[]): boolean {
  if (size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  let path = proof;
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

function hashesOf(tile: Uint8Array, what: string): Uint8Array[] {
  if (tile.length % 32 !== 0) throw new Error(`${what} is ${tile.length} bytes, not a multiple of 32`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < tile.length; i += 32) out.push(tile.slice(i, i + 32));
  return out;
}

/// Parses a c2sp.org/tlog-proof@v1 receipt: the entry, its index, the proof and the checkpoint.
function parseReceipt(s: string): { entry: Uint8Array; index: number; proof: Uint8Array[]; checkpoint: string } {
  const split = s.indexOf("\n\n");
  if (split < 0) throw new Error("receipt: no blank line before the checkpoint");
  const lines = s.slice(0, split).split("\n");
  if (lines[0] !== "c2sp.org/tlog-proof@v1") throw new Error("receipt: not c2sp.org/tlog-proof@v1");
  let at = 1;
  let entry: Uint8Array = new Uint8Array(0);
  if (lines[at]?.startsWith("extra ")) entry = b64(lines[at++].slice(6));
  const m = /^index (\d+)$/.exec(lines[at++] ?? "");
  if (!m) throw new Error("receipt: no index line");
  return { entry, index: Number(m[1]), proof: lines.slice(at).map(b64), checkpoint: s.slice(split + 2) };
}

const PINNED = "sovereign-console:verified";

export interface Progress {
  (steps: Step[]): void;
}

/// Verifies the whole record as the node serves it; `report` gets the steps so far.
export async function verifyRecord(report: Progress): Promise<Step[]> {
  const steps: Step[] = [];
  const add = (s: Step) => {
    steps.push(s);
    report([...steps]);
  };
  const fail = (what: string, detail: string) => {
    add({ what, ok: false, detail });
    return steps;
  };
  let cp: Checkpoint;
  let keys: Vkey[];
  try {
    cp = parseCheckpoint(await text("/v1/audit/checkpoint"));
    keys = (await text("/v1/audit/vkeys")).split("\n").filter(Boolean).map(parseVkey);
  } catch (e) {
    return fail("the checkpoint and the log's keys", String(e));
  }
  add({ what: "checkpoint", ok: true, detail: `${cp.origin}: ${cp.size} entries, root ${hex(cp.root)}` });
  if (keys.length === 0) return fail("the log's keys", "the node published no verifier key");
  const pinned = JSON.parse(localStorage.getItem(PINNED) ?? "null") as { keys: string[]; size: number; root: string } | null;
  const lines = keys.map((k) => k.line).sort();
  if (pinned && JSON.stringify(pinned.keys) !== JSON.stringify(lines)) {
    add({ what: "the log's keys", ok: false, detail: "they differ from the keys this browser verified the record with before" });
  } else {
    add({ what: "the log's keys", ok: true, detail: pinned ? "the same keys this browser verified the record with before" : `${keys.length} keys, first seen by this browser now: compare their IDs with \`sov audit export\`` });
  }
  for (const s of signatures(cp, keys)) add(s);

  // Every bundle and level-0 tile: leaf hashes, decoding, index, time, hash chain.
  const leaves: Uint8Array[] = [];
  let prev = new Uint8Array(32);
  let lastTime = 0n;
  const tiles = Math.ceil(cp.size / TILE_WIDTH);
  for (let n = 0; n < tiles; n++) {
    const width = Math.min(TILE_WIDTH, cp.size - n * TILE_WIDTH);
    const bundleAt = bundlePath(n, width);
    const tileAt = hashTilePath(0, n, width);
    let raw: Uint8Array[];
    let hashes: Uint8Array[];
    try {
      raw = splitBundle(await bytes(`/v1/audit/${bundleAt}`), width);
      hashes = hashesOf(await bytes(`/v1/audit/${tileAt}`), tileAt);
    } catch (e) {
      return fail(`entries ${n * TILE_WIDTH} to ${n * TILE_WIDTH + width - 1}`, `${bundleAt}: ${e}`);
    }
    if (hashes.length !== width) return fail(tileAt, `${hashes.length} hashes, expected ${width}`);
    for (let i = 0; i < width; i++) {
      const index = n * TILE_WIDTH + i;
      const leaf = leafHash(raw[i]);
      if (!equal(leaf, hashes[i])) return fail(`entry ${index}`, `its bytes in ${bundleAt} do not hash to its leaf hash in ${tileAt}`);
      let e;
      try {
        e = decodeEntry(raw[i]);
      } catch (x) {
        return fail(`entry ${index}`, `does not decode: ${x}`);
      }
      if (e.index !== BigInt(index)) return fail(`entry ${index}`, `says it is entry ${e.index}`);
      if (!equal(e.prev, prev)) return fail(`entry ${index}`, "its prev is not the leaf hash of the entry before it (the hash chain is broken)");
      if (e.time < lastTime) return fail(`entry ${index}`, "its time is earlier than the entry before it");
      prev = leaf;
      lastTime = e.time;
      leaves.push(leaf);
    }
  }
  add({ what: "entries", ok: true, detail: `${cp.size} entries decode, match their leaf hashes in ${tiles} level-0 tiles, and chain` });

  // Every higher tile: the roots of the full subtrees below it.
  let level = leaves;
  for (let l = 1; level.length >= TILE_WIDTH; l++) {
    const up: Uint8Array[] = [];
    for (let i = 0; i + TILE_WIDTH <= level.length; i += TILE_WIDTH) up.push(mth(level, i, i + TILE_WIDTH));
    for (let n = 0; n * TILE_WIDTH < up.length; n++) {
      const width = Math.min(TILE_WIDTH, up.length - n * TILE_WIDTH);
      const at = hashTilePath(l, n, width);
      let hashes: Uint8Array[];
      try {
        hashes = hashesOf(await bytes(`/v1/audit/${at}`), at);
      } catch (e) {
        return fail(at, String(e));
      }
      for (let i = 0; i < width; i++) {
        if (!hashes[i] || !equal(hashes[i], up[n * TILE_WIDTH + i])) return fail(at, `hash ${i} is not the root of the tiles below it`);
      }
    }
    add({ what: `level-${l} tiles`, ok: true, detail: `${up.length} hashes are the roots of the level below` });
    level = up;
  }
  const root = mth(leaves, 0, leaves.length);
  if (!equal(root, cp.root)) return fail("root", `the entries' Merkle root ${hex(root)} is not the checkpoint's`);
  add({ what: "root", ok: true, detail: "the entries' RFC 6962 Merkle root is the signed checkpoint's" });

  // An inclusion proof: the newest entry's receipt, against its own signed checkpoint.
  if (cp.size > 0) {
    const index = cp.size - 1;
    try {
      const r = parseReceipt(await text(`/v1/audit/proof/${index}`));
      const rcp = parseCheckpoint(r.checkpoint);
      const bad = signatures(rcp, keys).filter((s) => !s.ok);
      const computed = inclusionRoot(r.index, rcp.size, leafHash(r.entry), r.proof);
      const ok = bad.length === 0 && r.index === index && equal(leafHash(r.entry), leaves[index]) && computed !== null && equal(computed, rcp.root);
      add({
        what: `inclusion proof of entry ${index}`,
        ok,
        detail: ok ? `${r.proof.length} hashes lead to the signed root of ${rcp.size} entries` : bad.length ? `its checkpoint: ${bad[0].what} ${bad[0].detail}` : "the proof does not lead to its checkpoint's root",
      });
    } catch (e) {
      add({ what: `inclusion proof of entry ${index}`, ok: false, detail: String(e) });
    }
  }

  // A consistency proof: from the tree this browser verified last (so a rewritten history is
  // caught), or from half of this one.
  const from = pinned && pinned.size > 0 && pinned.size <= cp.size ? pinned.size : Math.floor(cp.size / 2);
  if (from > 0 && from < cp.size) {
    const oldRoot = pinned && pinned.size === from ? b64(pinned.root) : mth(leaves, 0, from);
    try {
      const proof = (await text(`/v1/audit/consistency/${from}/${cp.size}`)).split("\n").filter(Boolean).map(b64);
      const ok = verifyConsistency(from, cp.size, oldRoot, cp.root, proof) && equal(mth(leaves, 0, from), oldRoot);
      add({
        what: `consistency proof from ${from} to ${cp.size} entries`,
        ok,
        detail: ok
          ? `${proof.length} hashes show the tree of ${from} entries${pinned && pinned.size === from ? ", verified by this browser before," : ""} is a prefix of this one`
          : pinned && pinned.size === from
            ? "the record is not an extension of the one this browser verified before: its history was rewritten"
            : "the proof does not verify",
      });
    } catch (e) {
      add({ what: `consistency proof from ${from} to ${cp.size} entries`, ok: false, detail: String(e) });
    }
  }
  if (steps.every((s) => s.ok)) {
    localStorage.setItem(PINNED, JSON.stringify({ keys: lines, size: cp.size, root: btoa(String.fromCharCode(...cp.root)) }));
  }
  return steps;
}
