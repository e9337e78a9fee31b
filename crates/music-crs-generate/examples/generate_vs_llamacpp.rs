//! Prompt reading and decoding speed beside llama.cpp, on the same GGUF, the same prompt
//! sizes and the same thread counts, from one run.
//!
//! ```text
//! cargo run --release -p music-crs-generate --features llama --example generate_vs_llamacpp -- \
//!     ../shared/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
//!     --peer ../llama-venv/bin/python [--sizes 80,600] [--threads 1,2] [--decode 64] [--runs 3]
//! ```
//!
//! For each thread count the example runs itself again with `RAYON_NUM_THREADS` set (candle's
//! CPU kernels follow it), then `shared/bench/llama_cpp_peer.py --phases N` (llama-cpp-python,
//! `n_threads` the same) for each prompt size. Both sides read the same text (a paragraph
//! repeated, cut to N tokens) cold in one pass, then decode `--decode` greedy tokens one by one
//! without stopping at end tokens. Each figure is the best of `--runs` runs. `--peer-script`
//! overrides the peer script's path (default: `../shared/bench/` beside the workspace).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use music_crs_generate::{LlamaGenerator, LlamaParams, ModelSource};
use serde::Deserialize;

/// The peer's paragraph, repeated until the prompt is long enough.
const PARAGRAPH: &str = "The listener asked for calm piano music for a rainy evening, then for \
                         something by Bill Evans, then for a livelier track with brushes on the \
                         snare and a walking bass line. ";

/// Tokens `llama_cpp_peer.py --phases` decodes.
const PEER_DECODE_TOKENS: usize = 64;

struct Args {
    model: String,
    peer: Option<String>,
    peer_script: PathBuf,
    sizes: Vec<usize>,
    threads: Vec<usize>,
    decode: usize,
    runs: usize,
    child: bool,
}

fn list(value: &str, name: &str) -> anyhow::Result<Vec<usize>> {
    let values = value
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .with_context(|| format!("{name}: {v:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if values.is_empty() || values.contains(&0) {
        bail!("{name} needs positive numbers, got {value:?}");
    }
    Ok(values)
}

fn parse_args() -> anyhow::Result<Args> {
    let usage = "usage: generate_vs_llamacpp MODEL.gguf [--peer PYTHON] [--peer-script PATH] \
                 [--sizes 80,600] [--threads 1,2] [--decode 64] [--runs 3]";
    let mut args = std::env::args().skip(1);
    let model = args.next().context(usage)?;
    let mut parsed = Args {
        model,
        peer: None,
        peer_script: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/bench/llama_cpp_peer.py"),
        sizes: vec![80, 600],
        threads: vec![1, 2],
        decode: PEER_DECODE_TOKENS,
        runs: 3,
        child: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--child" {
            parsed.child = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {usage}"))?;
        match flag.as_str() {
            "--peer" => parsed.peer = Some(value),
            "--peer-script" => parsed.peer_script = value.into(),
            "--sizes" => parsed.sizes = list(&value, "--sizes")?,
            "--threads" => parsed.threads = list(&value, "--threads")?,
            "--decode" => parsed.decode = value.parse().context("--decode")?,
            "--runs" => parsed.runs = value.parse::<usize>().context("--runs")?.max(1),
            other => bail!("unknown option {other}; {usage}"),
        }
    }
    if parsed.peer.is_some() && parsed.decode != PEER_DECODE_TOKENS {
        bail!(
            "the peer always decodes {PEER_DECODE_TOKENS} tokens: compare with --decode {PEER_DECODE_TOKENS}"
        );
    }
    Ok(parsed)
}

/// One side's figures for one prompt size and thread count.
#[derive(Debug, Deserialize, serde::Serialize)]
struct Phases {
    threads: usize,
    prompt_tokens: usize,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
}

/// Runs in the child: this process's rayon pool has the thread count under test.
fn measure_ours(args: &Args) -> anyhow::Result<()> {
    let params = LlamaParams {
        prefix_cache_entries: 0,
        ..LlamaParams::greedy()
    };
    let generator = LlamaGenerator::load(&ModelSource::parse(&args.model)?, params)?;
    let mut text = PARAGRAPH.to_string();
    let longest = args.sizes.iter().copied().max().unwrap_or(1);
    while generator.tokenize(&text)?.len() < longest {
        text.push_str(PARAGRAPH);
    }
    let tokens = generator.tokenize(&text)?;
    // Warms the allocator and the page cache.
    generator.time_phases(&tokens[..args.sizes[0]], 4)?;
    for &size in &args.sizes {
        let mut best = Phases {
            threads: candle_core::utils::get_num_threads(),
            prompt_tokens: size,
            prefill_tokens_per_s: 0.0,
            decode_tokens_per_s: 0.0,
        };
        for _ in 0..args.runs {
            let times = generator.time_phases(&tokens[..size], args.decode)?;
            best.prefill_tokens_per_s = best
                .prefill_tokens_per_s
                .max(times.prompt_tokens_per_second());
            best.decode_tokens_per_s = best
                .decode_tokens_per_s
                .max(times.decode_tokens_per_second());
        }
        println!("{}", serde_json::to_string(&best)?);
    }
    Ok(())
}

fn ours(args: &Args, threads: usize) -> anyhow::Result<Vec<Phases>> {
    let me = std::env::current_exe()?;
    let sizes: Vec<String> = args.sizes.iter().map(usize::to_string).collect();
    let output = Command::new(me)
        .arg(&args.model)
        .args(["--child", "--sizes", &sizes.join(",")])
        .args(["--decode", &args.decode.to_string()])
        .args(["--runs", &args.runs.to_string()])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .context("run this example again as the measuring child")?;
    if !output.status.success() {
        bail!(
            "the measuring child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_lines(&output.stdout)
}

fn parse_lines(stdout: &[u8]) -> anyhow::Result<Vec<Phases>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|line| line.contains("prefill_tokens_per_s"))
        .map(|line| serde_json::from_str(line).with_context(|| format!("parse {line:?}")))
        .collect()
}

fn peer(args: &Args, python: &str, threads: usize, size: usize) -> anyhow::Result<Phases> {
    let mut best: Option<Phases> = None;
    for _ in 0..args.runs {
        let output = Command::new(python)
            .arg(&args.peer_script)
            .arg(&args.model)
            .args(["--threads", &threads.to_string()])
            .args(["--phases", &size.to_string()])
            .args(["--max-tokens", "8"])
            .output()
            .with_context(|| format!("run {python} {}", args.peer_script.display()))?;
        if !output.status.success() {
            bail!(
                "the llama.cpp peer failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let run = parse_lines(&output.stdout)?
            .pop()
            .context("the peer printed no phase timing")?;
        best = Some(match best {
            None => run,
            Some(b) => Phases {
                prefill_tokens_per_s: b.prefill_tokens_per_s.max(run.prefill_tokens_per_s),
                decode_tokens_per_s: b.decode_tokens_per_s.max(run.decode_tokens_per_s),
                ..run
            },
        });
    }
    best.context("no peer run")
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.child {
        return measure_ours(&args);
    }
    println!(
        "{:<8} {:>7} {:>7} {:>12} {:>12} {:>7}",
        "phase", "prompt", "threads", "ours tok/s", "llama.cpp", "ratio"
    );
    for &threads in &args.threads {
        let mine = ours(&args, threads)?;
        for ours in &mine {
            let theirs = match &args.peer {
                Some(python) => Some(peer(&args, python, threads, ours.prompt_tokens)?),
                None => None,
            };
            let rows = [
                (
                    "prefill",
                    ours.prefill_tokens_per_s,
                    theirs.as_ref().map(|t| t.prefill_tokens_per_s),
                ),
                (
                    "decode",
                    ours.decode_tokens_per_s,
                    theirs.as_ref().map(|t| t.decode_tokens_per_s),
                ),
            ];
            for (phase, mine, peer) in rows {
                let (peer_text, ratio) = match peer {
                    Some(p) => (format!("{p:.1}"), format!("{:.2}x", mine / p)),
                    None => ("-".into(), "-".into()),
                };
                println!(
                    "{phase:<8} {:>7} {threads:>7} {mine:>12.1} {peer_text:>12} {ratio:>7}",
                    ours.prompt_tokens
                );
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after the run: {}", load.trim());
    Ok(())
}
