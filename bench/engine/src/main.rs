//! Measures Sovereign's engine the way llama.cpp's `llama-bench` measures llama.cpp:
//!
//! - **pp** (prompt processing, `pp512`): a prompt of exactly N tokens with `max_tokens = 1`;
//!   tokens/s = N / time from `Engine::generate` to the first event (the prompt is decoded in one
//!   batch of up to `batch_size` tokens, like llama-bench's `n_ubatch = 512`).
//! - **tg** (text generation, `tg128`): a one-token prompt, M tokens generated greedily with
//!   `ignore_eos` and delivered whole; that is exactly M decode steps of one token, as in
//!   llama-bench, so tokens/s = M / time from `Engine::generate_whole` to `Done`.
//!
//! Each test runs once as a warm-up, then `--reps` times; the JSON printed on stdout has every
//! sample, the mean and the standard deviation (as llama-bench reports `avg_ts` and `stddev_ts`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use sov_engine::{Engine, EngineConfig, Event, Prompt, SamplingParams};

/// Prompt processing and generation speed of Sovereign's engine (JSON on stdout).
#[derive(Debug, Parser)]
#[command(name = "sov-bench-engine")]
struct Args {
    /// The GGUF model file.
    #[arg(long, env = "SOV_BENCH_MODEL")]
    model: PathBuf,
    /// CPU threads (0: every core, as `EngineConfig` does).
    #[arg(long, default_value_t = 0, env = "SOV_BENCH_THREADS")]
    threads: usize,
    /// Measured repetitions of each test (after one warm-up).
    #[arg(long, default_value_t = 5, env = "SOV_BENCH_REPS")]
    reps: usize,
    /// Prompt length of the pp test.
    #[arg(long, default_value_t = 512)]
    pp: usize,
    /// Generated tokens of the tg test.
    #[arg(long, default_value_t = 128)]
    tg: u32,
    /// Tokens per decode step (llama-bench's n_ubatch default is 512).
    #[arg(long, default_value_t = 512)]
    batch_size: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.reps == 0 || args.pp == 0 || args.tg < 2 {
        bail!("--reps and --pp must be at least 1, --tg at least 2");
    }
    let config = EngineConfig {
        threads: args.threads,
        parallel: 1,
        batch_size: args
            .batch_size
            .max(u32::try_from(args.pp).unwrap_or(u32::MAX)),
        // llama-bench reads every repetition's prompt whole: so does this bench.
        prompt_reuse: false,
        ..EngineConfig::default()
    };
    let load_start = Instant::now();
    let engine = Engine::load_unverified(&args.model, &config)
        .with_context(|| format!("failed to load {}", args.model.display()))?;
    let load_s = load_start.elapsed().as_secs_f64();
    let threads = engine.info().threads;

    let pp_prompt = prompt_of_length(&engine, args.pp)?;
    // The shortest prompt: one word (plus the start token, for models that use one).
    let tg_prompt = engine.text_prompt("Hello");

    // Warm-up (llama-bench also runs each test once before measuring).
    measure_pp(&engine, &pp_prompt)?;
    measure_tg(&engine, &tg_prompt, args.tg)?;

    let mut pp = Vec::with_capacity(args.reps);
    for _ in 0..args.reps {
        pp.push(measure_pp(&engine, &pp_prompt)?);
    }
    let mut tg = Vec::with_capacity(args.reps);
    for _ in 0..args.reps {
        tg.push(measure_tg(&engine, &tg_prompt, args.tg)?);
    }

    let out = json!({
        "engine": "sov-engine",
        "model": args.model.display().to_string(),
        "threads": threads,
        "reps": args.reps,
        "load_s": load_s,
        "pp": { "test": format!("pp{}", args.pp), "n_tokens": args.pp, "samples_ts": pp, "avg_ts": mean(&pp), "stddev_ts": stddev(&pp) },
        "tg": { "test": format!("tg{}", args.tg), "n_tokens": args.tg, "samples_ts": tg, "avg_ts": mean(&tg), "stddev_ts": stddev(&tg) },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// A prompt of exactly `n` tokens: repeated text, tokenised, grown until long enough, then cut
/// down by characters until the count matches (token counts are not additive across the cut).
fn prompt_of_length(engine: &Engine, n: usize) -> Result<Prompt> {
    const FILLER: &str =
        "The quick brown fox jumps over the lazy dog while the river runs to the sea. ";
    let mut text = String::from("Hello");
    while engine.text_prompt(&text).len() < n {
        text.push_str(FILLER);
    }
    // Shrink one character at a time from the end (the filler is ASCII).
    while engine.text_prompt(&text).len() > n && text.len() > 1 {
        text.pop();
    }
    let prompt = engine.text_prompt(&text);
    if prompt.len() != n {
        // A token boundary can make an exact count unreachable by cutting; pad with single words.
        let mut padded = text.clone();
        for _ in 0..16 {
            padded.push_str(" a");
            let p = engine.text_prompt(&padded);
            if p.len() == n {
                return Ok(p);
            }
            if p.len() > n {
                break;
            }
        }
        bail!(
            "could not build a prompt of exactly {n} tokens (got {})",
            prompt.len()
        );
    }
    Ok(prompt)
}

fn greedy(max_tokens: u32, ignore_eos: bool) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ignore_eos,
        ..SamplingParams::default()
    }
}

/// Prompt tokens per second: prompt length / time to the first event.
fn measure_pp(engine: &Engine, prompt: &Prompt) -> Result<f64> {
    let n = prompt.len();
    let start = Instant::now();
    let mut generation = engine.generate(prompt.clone(), greedy(1, true))?;
    let first = generation.blocking_next().context("the engine stopped")?;
    let elapsed = start.elapsed();
    if let Event::Failed(reason) = &first {
        bail!("generation failed: {reason}");
    }
    // Drain to completion so the slot is free before the next repetition.
    while let Some(event) = generation.blocking_next() {
        match event {
            Event::Done { .. } => break,
            Event::Failed(reason) => bail!("generation failed: {reason}"),
            Event::Text(_) => {}
        }
    }
    Ok(per_second(n, elapsed))
}

/// Generated tokens per second, counted as llama-bench counts tg: one decode step per token.
///
/// The prompt is a single token and the answer is delivered whole (`generate_whole`, no wake-up
/// of this thread per token), so the run is exactly `tokens` decode steps of one token each:
/// the prompt's step produces the first token, and each generated token but the last is decoded
/// to produce the next.
fn measure_tg(engine: &Engine, prompt: &Prompt, tokens: u32) -> Result<f64> {
    if prompt.len() != 1 {
        bail!("the tg prompt must be one token, not {}", prompt.len());
    }
    let start = Instant::now();
    let mut generation = engine.generate_whole(prompt.clone(), greedy(tokens, true))?;
    loop {
        match generation.blocking_next().context("the engine stopped")? {
            Event::Text(_) => {}
            Event::Done {
                completion_tokens, ..
            } => {
                if completion_tokens != tokens as usize {
                    bail!("{completion_tokens} tokens were generated, not {tokens}");
                }
                return Ok(per_second(completion_tokens, start.elapsed()));
            }
            Event::Failed(reason) => bail!("generation failed: {reason}"),
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn per_second(tokens: usize, elapsed: Duration) -> f64 {
    tokens as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[allow(clippy::cast_precision_loss)]
fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

#[allow(clippy::cast_precision_loss)]
fn stddev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}
