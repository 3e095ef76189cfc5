//! SHA-256 of many messages at once, one message per vector lane ("multi-buffer" hashing).
//!
//! A log verifier hashes millions of short, independent messages (entries of a few hundred
//! bytes, 65-byte node inputs). SHA-256 of one message is a serial chain of 64 rounds per block,
//! so a single message cannot use the CPU's vector units; eight messages side by side can. The
//! state here is `[u32; LANES]` per SHA-256 word and every step is written as a loop over lanes,
//! which the compiler turns into vector instructions when the build targets a CPU with AVX2
//! (the workspace builds with `target-cpu=native`, see `.cargo/config.toml`). It is plain safe
//! Rust: no intrinsics, no `unsafe`, and the same results on every target.
//!
//! Without AVX2 the same code is slower than the `sha2` crate, and with the SHA extensions
//! (`sha` target feature) `sha2`'s hardware path is faster still, so [`ENABLED`] chooses at
//! compile time and the callers in [`super`] fall back to `sha2` one message at a time.
//!
//! The messages are hashed as SHA-256 (FIPS 180-4) of `prefix || data`; the padding is built
//! block by block, so the input is never copied whole.

use super::Hash;

/// Whether the lane code is the fast path on the target this was built for.
pub const ENABLED: bool = cfg!(all(
    any(target_arch = "x86_64", target_arch = "x86"),
    target_feature = "avx2",
    not(target_feature = "sha")
));

/// Messages hashed side by side. Eight 32-bit lanes fill one AVX2 register.
pub const LANES: usize = 8;

type V = [u32; LANES];

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

#[inline(always)]
fn add(a: V, b: V) -> V {
    std::array::from_fn(|i| a[i].wrapping_add(b[i]))
}

#[inline(always)]
fn xor3(a: V, b: V, c: V) -> V {
    std::array::from_fn(|i| a[i] ^ b[i] ^ c[i])
}

#[inline(always)]
fn rotr(a: V, n: u32) -> V {
    std::array::from_fn(|i| a[i].rotate_right(n))
}

#[inline(always)]
fn shr(a: V, n: u32) -> V {
    std::array::from_fn(|i| a[i] >> n)
}

/// `Ch(e, f, g) = (e & f) ^ (!e & g)`.
#[inline(always)]
fn ch(e: V, f: V, g: V) -> V {
    std::array::from_fn(|i| (e[i] & f[i]) ^ (!e[i] & g[i]))
}

/// `Maj(a, b, c) = (a & b) ^ (a & c) ^ (b & c)`.
#[inline(always)]
fn maj(a: V, b: V, c: V) -> V {
    std::array::from_fn(|i| (a[i] & b[i]) | (c[i] & (a[i] | b[i])))
}

/// One SHA-256 compression per lane: `state[w][l]` is word `w` of lane `l`'s state, `w[t][l]`
/// word `t` of lane `l`'s block.
#[inline(never)]
fn compress(state: &mut [V; 8], mut w: [V; 16]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for (t, k) in K.iter().enumerate() {
        let wt = if t < 16 {
            w[t]
        } else {
            let w15 = w[(t + 1) % 16];
            let w2 = w[(t + 14) % 16];
            let s0 = xor3(rotr(w15, 7), rotr(w15, 18), shr(w15, 3));
            let s1 = xor3(rotr(w2, 17), rotr(w2, 19), shr(w2, 10));
            let next = add(add(w[t % 16], s0), add(w[(t + 9) % 16], s1));
            w[t % 16] = next;
            next
        };
        let t1 = add(
            add(h, xor3(rotr(e, 6), rotr(e, 11), rotr(e, 25))),
            add(add(ch(e, f, g), [*k; LANES]), wt),
        );
        let t2 = add(xor3(rotr(a, 2), rotr(a, 13), rotr(a, 22)), maj(a, b, c));
        h = g;
        g = f;
        f = e;
        e = add(d, t1);
        d = c;
        c = b;
        b = a;
        a = add(t1, t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = add(*s, v);
    }
}

/// The number of 64-byte blocks in the padded message `prefix || data`.
fn block_count(data_len: usize) -> usize {
    // One prefix byte, the data, the 0x80 byte and the 64-bit length, rounded up.
    data_len.saturating_add(1 + 1 + 8).div_ceil(64)
}

/// Block `j` of the padded message `prefix || data` (which has `blocks` blocks).
fn block(prefix: u8, data: &[u8], j: usize, blocks: usize) -> [u8; 64] {
    let mut out = [0u8; 64];
    let start = j.saturating_mul(64);
    let end = start.saturating_add(64);
    // The message's byte p sits at out[p - start]; data byte i is message byte i + 1.
    if start == 0 {
        out[0] = prefix;
    }
    let data_lo = start.max(1);
    let data_hi = end.min(data.len().saturating_add(1));
    if data_lo < data_hi
        && let (Some(dst), Some(src)) = (
            out.get_mut(data_lo - start..data_hi - start),
            data.get(data_lo - 1..data_hi - 1),
        )
    {
        dst.copy_from_slice(src);
    }
    let marker = data.len().saturating_add(1);
    if (start..end).contains(&marker)
        && let Some(b) = out.get_mut(marker - start)
    {
        *b = 0x80;
    }
    if j.saturating_add(1) == blocks {
        let bits = (data.len() as u64).saturating_add(1).saturating_mul(8);
        out[56..].copy_from_slice(&bits.to_be_bytes());
    }
    out
}

/// `SHA-256(prefix || message(i))` for `i` in `0..count`, appended to `out` in order. Works on
/// any target; [`ENABLED`] says whether it is the fast way there.
pub fn hash_prefixed<'a>(
    prefix: u8,
    count: usize,
    message: impl Fn(usize) -> &'a [u8],
    out: &mut Vec<Hash>,
) {
    out.reserve(count);
    let mut first = 0;
    while first < count {
        let n = (count - first).min(LANES);
        let msgs: [&[u8]; LANES] =
            std::array::from_fn(|l| if l < n { message(first + l) } else { &[] });
        let blocks: [usize; LANES] = std::array::from_fn(|l| block_count(msgs[l].len()));
        let most = blocks.iter().take(n).copied().max().unwrap_or(0);
        let mut state: [V; 8] = std::array::from_fn(|w| [H0[w]; LANES]);
        let mut done = [[0u32; 8]; LANES];
        for j in 0..most {
            let mut w = [[0u32; LANES]; 16];
            for (l, msg) in msgs.iter().enumerate() {
                // A lane whose message is finished hashes its last block again; its result
                // was taken already.
                let b = block(prefix, msg, j.min(blocks[l] - 1), blocks[l]);
                for (t, word) in b.chunks_exact(4).enumerate() {
                    w[t][l] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                }
            }
            compress(&mut state, w);
            for (l, d) in done.iter_mut().enumerate() {
                if blocks[l] == j + 1 {
                    *d = std::array::from_fn(|word| state[word][l]);
                }
            }
        }
        for d in done.iter().take(n) {
            let mut h = [0u8; 32];
            for (chunk, word) in h.chunks_exact_mut(4).zip(d) {
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            out.push(h);
        }
        first += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    fn reference(prefix: u8, data: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update([prefix]);
        h.update(data);
        h.finalize().into()
    }

    #[test]
    fn matches_sha2_at_every_padding_boundary_and_count() {
        // Lengths around every block boundary (prefix + data + 9 crosses 64 at 54/55), and
        // counts that leave lanes empty.
        let data: Vec<u8> = (0..700u32).map(|i| (i * 31 + 7) as u8).collect();
        for count in [0usize, 1, 2, 7, 8, 9, 15, 16, 17, 33] {
            for base in [0usize, 53, 54, 55, 56, 63, 64, 118, 119, 127, 128, 255, 600] {
                let lens: Vec<usize> = (0..count).map(|i| (base + i * 13) % 700).collect();
                for prefix in [0u8, 1] {
                    let mut out = Vec::new();
                    hash_prefixed(prefix, count, |i| &data[..lens[i]], &mut out);
                    let want: Vec<Hash> = lens
                        .iter()
                        .map(|&n| reference(prefix, &data[..n]))
                        .collect();
                    assert_eq!(out, want, "count {count}, base {base}, prefix {prefix}");
                }
            }
        }
    }

    #[test]
    fn every_length_up_to_three_blocks() {
        let data: Vec<u8> = (0..200u32).map(|i| (i ^ 0x5a) as u8).collect();
        let mut out = Vec::new();
        hash_prefixed(0, 200, |i| &data[..i], &mut out);
        for (n, h) in out.iter().enumerate() {
            assert_eq!(*h, reference(0, &data[..n]), "length {n}");
        }
    }
}
