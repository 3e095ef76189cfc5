// The record as the node publishes it (C2SP tlog-tiles under /v1/audit/): the checkpoint and
// the entry bundles, read and decoded in the browser.

import { bytes, text } from "../api";
import { decodeEntry, splitBundle, type Entry } from "./entry";

export const TILE_WIDTH = 256;

/// A tile index as C2SP writes it: 3-digit groups, all but the last prefixed with x.
export function indexPath(n: number): string {
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, "0"));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
}

function widthSuffix(width: number): string {
  return width < TILE_WIDTH ? `.p/${width}` : "";
}

export function bundlePath(n: number, width: number): string {
  return `tile/entries/${indexPath(n)}${widthSuffix(width)}`;
}

export function hashTilePath(level: number, n: number, width: number): string {
  return `tile/${level}/${indexPath(n)}${widthSuffix(width)}`;
}

export interface Checkpoint {
  note: string;
  body: string;
  origin: string;
  size: number;
  root: Uint8Array;
  signatures: { name: string; sig: Uint8Array }[];
}

export function b64(s: string): Uint8Array {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/// Parses a signed note holding a checkpoint (c2sp.org/signed-note, tlog-checkpoint).
export function parseCheckpoint(note: string): Checkpoint {
  const split = note.indexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("checkpoint: not a signed note");
  const body = note.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length < 4) throw new Error("checkpoint: fewer than three lines");
  const [origin, sizeLine, rootLine] = lines;
  if (!/^(0|[1-9][0-9]{0,18})$/.test(sizeLine)) throw new Error(`checkpoint: size ${JSON.stringify(sizeLine)} is not a number`);
  const root = b64(rootLine);
  if (root.length !== 32) throw new Error("checkpoint: the root is not 32 bytes");
  const signatures = note
    .slice(split + 2)
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) throw new Error(`checkpoint: signature line ${JSON.stringify(l)} is malformed`);
      return { name: m[1], sig: b64(m[2]) };
    });
  return { note, body, origin, size: Number(sizeLine), root, signatures };
}

export async function fetchCheckpoint(): Promise<Checkpoint> {
  return parseCheckpoint(await text("/v1/audit/checkpoint"));
}

/// The bundle holding entries [n*256, n*256+width) of a tree of `size`.
export function bundleWidth(n: number, size: number): number {
  return Math.min(TILE_WIDTH, size - n * TILE_WIDTH);
}

export interface Bundle {
  n: number;
  raw: Uint8Array[];
  entries: Entry[];
}

export async function fetchBundle(n: number, size: number): Promise<Bundle> {
  const width = bundleWidth(n, size);
  const raw = splitBundle(await bytes(`/v1/audit/${bundlePath(n, width)}`), width);
  return { n, raw, entries: raw.map(decodeEntry) };
}

/// The last `count` entries (or fewer) of a tree of `size`, newest first.
export async function latest(size: number, count: number): Promise<Entry[]> {
  const out: Entry[] = [];
  let n = Math.floor((size - 1) / TILE_WIDTH);
  while (n >= 0 && out.length < count && size > 0) {
    const b = await fetchBundle(n, size);
    out.push(...b.entries.reverse());
    n--;
  }
  return out.slice(0, count);
}
