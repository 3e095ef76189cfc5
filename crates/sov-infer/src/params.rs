//! Sampling parameters and their ranges, checked before any engine sees them.

/// A sampling parameter outside its range: the API's name for it and why it was refused.
///
/// The message is the one the HTTP API answers (`sov-engine` turns this into its
/// `EngineError::InvalidParam`, with the same fields and message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parameter `{param}`: {reason}")]
pub struct InvalidParam {
    /// The parameter's API name.
    pub param: &'static str,
    /// Why it was refused.
    pub reason: String,
}

/// How to pick each next token.
///
/// The defaults are llama.cpp's tuned ones (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05),
/// not OpenAI's (temperature 1, nothing cut): small local models ramble at temperature 1 with the
/// full tail of the distribution, and a request that states a value always gets that value.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 picks the most likely token every time (greedy); higher is more random. 0..=2.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability adds up to this. (0, 1].
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables.
    pub top_k: i32,
    /// Drop tokens less likely than this fraction of the most likely one; 0 disables. [0, 1].
    pub min_p: f32,
    /// Random seed, for repeatable sampling. `None` picks one.
    pub seed: Option<u32>,
    /// The most tokens to generate; `None` means until the context window is full.
    pub max_tokens: Option<u32>,
    /// Generation stops before any of these strings (at most 4, none empty, each at most
    /// [`SamplingParams::MAX_STOP_BYTES`] bytes).
    pub stop: Vec<String>,
    /// Penalty for repeating recent tokens; 1 disables. (0, 10].
    pub repeat_penalty: f32,
    /// Keep generating past the model's end-of-answer token (for benchmarks: a fixed length).
    pub ignore_eos: bool,
    /// A grammar the answer must match, in llguidance's Lark syntax (with `%json` schemas),
    /// enforced while sampling; set by the kernel from a request's tools or response format
    /// ([`crate::functions`]), at most [`SamplingParams::MAX_GRAMMAR_BYTES`].
    pub grammar: Option<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            seed: None,
            max_tokens: None,
            stop: Vec::new(),
            repeat_penalty: 1.0,
            ignore_eos: false,
            grammar: None,
        }
    }
}

impl SamplingParams {
    /// The longest stop sequence accepted, in bytes.
    ///
    /// The stop scanner searches, for every generated token, a window as long as the longest
    /// stop sequence and tests every prefix of every stop sequence against the held-back text:
    /// its work per token grows with their length. Four 1 MB stop strings tripled generation
    /// time; real stop sequences are a few words, so 256 bytes leaves them plenty.
    pub const MAX_STOP_BYTES: usize = 256;

    /// The largest grammar accepted, in bytes.
    pub const MAX_GRAMMAR_BYTES: usize = 256 * 1024;

    /// Checks every field; the error names the first bad one with the API's name for it.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        let bad = |param, reason: &str| InvalidParam {
            param,
            reason: reason.to_owned(),
        };
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(bad("temperature", "must be between 0 and 2"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(bad("top_p", "must be greater than 0 and at most 1"));
        }
        if self.top_k < 0 {
            return Err(bad("top_k", "must be 0 (disabled) or positive"));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(bad("min_p", "must be between 0 and 1"));
        }
        if self.max_tokens == Some(0) {
            return Err(bad("max_tokens", "must be at least 1"));
        }
        if self.stop.len() > 4 {
            return Err(bad("stop", "at most 4 stop sequences are allowed"));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(bad("stop", "stop sequences must not be empty"));
        }
        if self.stop.iter().any(|s| s.len() > Self::MAX_STOP_BYTES) {
            return Err(InvalidParam {
                param: "stop",
                reason: format!(
                    "each stop sequence must be at most {} bytes",
                    Self::MAX_STOP_BYTES
                ),
            });
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty <= 10.0) {
            return Err(bad(
                "repeat_penalty",
                "must be greater than 0 and at most 10",
            ));
        }
        if self
            .grammar
            .as_ref()
            .is_some_and(|g| g.len() > Self::MAX_GRAMMAR_BYTES)
        {
            return Err(InvalidParam {
                param: "tools",
                reason: format!(
                    "the tools' or response format's schemas come to more than {} bytes",
                    Self::MAX_GRAMMAR_BYTES
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SamplingParams::default().validate().unwrap();
    }

    #[test]
    fn the_message_names_the_parameter_and_the_range() {
        let err = SamplingParams {
            min_p: 1.5,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter `min_p`: must be between 0 and 1"
        );
    }

    #[test]
    fn megabyte_stop_strings_are_refused() {
        let at_bound = SamplingParams {
            stop: vec!["x".repeat(SamplingParams::MAX_STOP_BYTES); 4],
            ..Default::default()
        };
        at_bound.validate().unwrap();
        let huge = SamplingParams {
            stop: vec!["x".repeat(1 << 20); 4],
            ..Default::default()
        };
        match huge.validate() {
            Err(InvalidParam { param, reason }) => {
                assert_eq!(param, "stop");
                assert!(reason.contains("256 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(SamplingParams, &str)> = vec![
            (
                SamplingParams {
                    temperature: 3.0,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    top_p: 0.0,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                SamplingParams {
                    top_k: -1,
                    ..Default::default()
                },
                "top_k",
            ),
            (
                SamplingParams {
                    max_tokens: Some(0),
                    ..Default::default()
                },
                "max_tokens",
            ),
            (
                SamplingParams {
                    stop: vec!["".into()],
                    ..Default::default()
                },
                "stop",
            ),
            (
                SamplingParams {
                    stop: vec!["a".into(); 5],
                    ..Default::default()
                },
                "stop",
            ),
            (
                SamplingParams {
                    repeat_penalty: 0.0,
                    ..Default::default()
                },
                "repeat_penalty",
            ),
        ];
        for (p, name) in cases {
            match p.validate() {
                Err(InvalidParam { param, .. }) => assert_eq!(param, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
