//! Prompt reuse: what each sequence of the generation context holds in the KV cache, and which
//! sequence a new prompt should take so that the longest possible start of it is already there.
//!
//! A finished sequence keeps its KV cells (the prompt it read and the answer it wrote) until its
//! slot is given to another request. A new prompt takes the free sequence whose cells share the
//! longest start with it, and only the rest is decoded: a specialist's instructions, a system
//! prompt, or a conversation's earlier turns are read once, not per request. When another
//! sequence (free or still generating) holds a much longer start than any free one, its cells are
//! copied into a free sequence first (llama.cpp copies a sequence between the per-slot streams
//! as a whole buffer, a memory copy far cheaper than decoding the tokens again).
//!
//! What may be reused, and why it is sound:
//! - The cache is the context's own KV memory (`parallel` × `context_length` cells, allocated at
//!   load): reuse adds no memory, and it is bounded by construction.
//! - Each generation context belongs to one model and at most one adapter (an adapter's engine
//!   has a context of its own), so cells are never shared across models or adapters. Within a
//!   context, reuse is by exact token prefix at the same positions: the cells of those tokens
//!   are the ones decoding them again would compute. A different chat template renders
//!   different tokens, and reuse stops where the tokens first differ.
//! - At least the prompt's last [`REDECODE_TOKENS`] tokens are always decoded, in one batch: so
//!   the hidden state the answer starts from is computed by the batched kernels a prompt read
//!   whole goes through. llama.cpp picks other kernels for one row (and for fewer than 8) whose
//!   rounding differs in the last bits; decoding the last token alone made a repeated greedy
//!   request drift after a few dozen tokens (seen with the 135M model), with 16 it answers as a
//!   fresh engine does.
//! - A model whose memory cannot keep a partial sequence (a sliding-window layer that dropped
//!   old cells, a recurrent state) is detected after the trim, and that prompt is read whole.

use llama_cpp_2::token::LlamaToken;

/// Prompt tokens always decoded, however much of the prompt is cached (see the module docs).
pub const REDECODE_TOKENS: usize = 16;

/// Copy another sequence's cells only when it saves at least this many tokens of decoding
/// over the best free sequence (the copy moves the whole per-slot buffer).
pub(crate) const COPY_MIN_TOKENS: usize = 64;

/// What the KV cache holds for each sequence, and how recently each was given out.
#[derive(Debug)]
pub(crate) struct Holdings {
    seqs: Vec<Held>,
    clock: u64,
}

#[derive(Debug, Default, Clone)]
struct Held {
    /// The tokens whose cells this sequence holds, at positions 0, 1, ...
    tokens: Vec<LlamaToken>,
    /// When this sequence was last given to a request (0: never).
    used: u64,
}

/// Where a new prompt goes and how much of it is already in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The free sequence the prompt takes.
    pub seq: i32,
    /// Copy this sequence's cells into `seq` first.
    pub copy_from: Option<i32>,
    /// Prompt tokens whose cells are kept (not decoded again).
    pub reuse: usize,
}

impl Holdings {
    pub fn new(seqs: u32) -> Self {
        Self {
            seqs: vec![Held::default(); seqs as usize],
            clock: 0,
        }
    }

    /// Chooses a sequence among `free` for `prompt` (not empty; `free` not empty). With reuse
    /// off, the least recently used free sequence, reusing nothing.
    pub fn plan(&self, prompt: &[LlamaToken], free: &[i32], reuse: bool) -> Option<Plan> {
        // The prompt's end is always decoded, in one batch: its logits start the answer.
        let most = prompt.len().saturating_sub(REDECODE_TOKENS);
        let shared = |seq: i32| {
            if !reuse {
                return 0;
            }
            let held = &self.seqs[seq as usize].tokens;
            held.iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count()
                .min(most)
        };
        let oldest = *free.iter().min_by_key(|&&s| self.seqs[s as usize].used)?;
        // The free sequence holding the longest start; among equals the least recently used.
        let best_free = free
            .iter()
            .copied()
            .max_by_key(|&s| (shared(s), std::cmp::Reverse(self.seqs[s as usize].used)))?;
        let free_gain = shared(best_free);
        if free_gain > 0 {
            // A copy from elsewhere must beat this by a margin.
            if let Some((src, gain)) = self.best_other(best_free, &shared)
                && gain >= free_gain + COPY_MIN_TOKENS
            {
                return Some(Plan {
                    seq: best_free,
                    copy_from: Some(src),
                    reuse: gain,
                });
            }
            return Some(Plan {
                seq: best_free,
                copy_from: None,
                reuse: free_gain,
            });
        }
        // No free sequence shares anything: the least recently used one is overwritten, with
        // another sequence's cells if one holds enough of the prompt.
        if let Some((src, gain)) = self.best_other(oldest, &shared)
            && gain >= COPY_MIN_TOKENS
        {
            return Some(Plan {
                seq: oldest,
                copy_from: Some(src),
                reuse: gain,
            });
        }
        Some(Plan {
            seq: oldest,
            copy_from: None,
            reuse: 0,
        })
    }

    /// The sequence other than `not` sharing the longest start with the prompt.
    fn best_other(&self, not: i32, shared: &impl Fn(i32) -> usize) -> Option<(i32, usize)> {
        (0..self.seqs.len() as i32)
            .filter(|&s| s != not)
            .map(|s| (s, shared(s)))
            .max_by_key(|&(_, gain)| gain)
    }

    /// Records that `seq` was given a request and now holds `tokens` (the reused start).
    pub fn take(&mut self, seq: i32, copied_from: Option<i32>, keep: usize) {
        self.clock += 1;
        let tokens = match copied_from {
            Some(src) => self.seqs[src as usize].tokens[..keep].to_vec(),
            None => {
                let mut t = std::mem::take(&mut self.seqs[seq as usize].tokens);
                t.truncate(keep);
                t
            }
        };
        self.seqs[seq as usize] = Held {
            tokens,
            used: self.clock,
        };
    }

    /// Records that `tokens` were put into `seq`'s cells, after what it held.
    pub fn extend(&mut self, seq: i32, tokens: &[LlamaToken]) {
        self.seqs[seq as usize].tokens.extend_from_slice(tokens);
    }

    /// Records that `seq` holds nothing any more.
    pub fn forget(&mut self, seq: i32) {
        self.seqs[seq as usize].tokens.clear();
    }

    /// Records that the whole cache was cleared.
    pub fn forget_all(&mut self) {
        for held in &mut self.seqs {
            held.tokens.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(ids: impl IntoIterator<Item = i32>) -> Vec<LlamaToken> {
        ids.into_iter().map(LlamaToken).collect()
    }

    fn holding(seqs: &[Vec<LlamaToken>]) -> Holdings {
        let mut h = Holdings::new(seqs.len() as u32);
        for (i, t) in seqs.iter().enumerate() {
            h.take(i as i32, None, 0);
            h.extend(i as i32, t);
        }
        h
    }

    #[test]
    fn the_free_sequence_with_the_longest_shared_start_is_taken() {
        let h = holding(&[toks(0..10), toks(0..30), toks(100..200)]);
        let prompt = toks(0..60);
        let plan = h.plan(&prompt, &[0, 1, 2], true).unwrap();
        assert_eq!(
            plan,
            Plan {
                seq: 1,
                copy_from: None,
                reuse: 30
            }
        );
    }

    #[test]
    fn the_prompts_end_is_always_decoded() {
        let h = holding(&[toks(0..100)]);
        let plan = h.plan(&toks(0..100), &[0], true).unwrap();
        assert_eq!(plan.reuse, 100 - REDECODE_TOKENS);
        let plan = h
            .plan(&toks(0..REDECODE_TOKENS as i32), &[0], true)
            .unwrap();
        assert_eq!(plan.reuse, 0);
    }

    #[test]
    fn nothing_shared_takes_the_least_recently_used() {
        let mut h = holding(&[toks(0..10), toks(20..30), toks(40..50)]);
        h.take(0, None, 10); // used again: now the most recent
        let plan = h.plan(&toks(500..600), &[0, 1, 2], true).unwrap();
        assert_eq!(plan.seq, 1);
        assert_eq!(plan.reuse, 0);
        assert_eq!(plan.copy_from, None);
    }

    #[test]
    fn a_busy_sequence_holding_much_more_is_copied() {
        // Sequence 0 is generating (not free) and holds the prompt's first 300 tokens.
        let h = holding(&[toks(0..300), toks(0..10), toks(900..950)]);
        let prompt = toks(0..400);
        let plan = h.plan(&prompt, &[1, 2], true).unwrap();
        assert_eq!(
            plan,
            Plan {
                seq: 1,
                copy_from: Some(0),
                reuse: 300
            }
        );
        // Not worth a copy for fewer than COPY_MIN_TOKENS more.
        let h = holding(&[toks(0..50), toks(0..10)]);
        let plan = h.plan(&toks(0..400), &[1], true).unwrap();
        assert_eq!(plan.copy_from, None);
        assert_eq!(plan.reuse, 10);
    }

    #[test]
    fn reuse_off_takes_the_oldest_and_reuses_nothing() {
        let h = holding(&[toks(0..300), toks(0..10)]);
        let plan = h.plan(&toks(0..400), &[0, 1], false).unwrap();
        assert_eq!(
            plan,
            Plan {
                seq: 0,
                copy_from: None,
                reuse: 0
            }
        );
    }

    #[test]
    fn take_keeps_exactly_the_reused_start() {
        let mut h = holding(&[toks(0..300), toks(5..10)]);
        h.take(1, Some(0), 120);
        assert_eq!(h.seqs[1].tokens, toks(0..120));
        h.take(0, None, 3);
        assert_eq!(h.seqs[0].tokens, toks(0..3));
        h.forget_all();
        assert!(h.seqs.iter().all(|s| s.tokens.is_empty()));
    }
}
