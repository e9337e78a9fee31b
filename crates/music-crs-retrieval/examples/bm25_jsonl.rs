//! BM25 over JSONL files, timed: the Rust side of `../shared/bench/bm25s_peer.py`.
//!
//! ```text
//! cargo run --release -p music-crs-retrieval --example bm25_jsonl -- \
//!     CORPUS.jsonl QUERIES.jsonl [--k 20] [--threads N] [--repeat 3] [--out HITS.jsonl]
//! ```
//!
//! `CORPUS` and `QUERIES` hold one `{"id", "text"}` object per line. The program builds a
//! [`Bm25Index`] with bm25s's default settings, answers every query on one thread and then on
//! `N` threads (default: all cores), prints the index time, queries per second and peak
//! resident memory, and with `--out` writes `{"id", "hits": [[doc_id, score], ...]}` lines
//! (the format of `expected_top20.jsonl`).

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use music_crs_core::ScoredTrack;
use music_crs_retrieval::{Bm25Index, Bm25Params};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Record {
    id: String,
    text: String,
}

#[derive(Serialize)]
struct HitsLine<'a> {
    id: &'a str,
    hits: Vec<(&'a str, f32)>,
}

struct Args {
    corpus: PathBuf,
    queries: PathBuf,
    k: usize,
    threads: usize,
    repeat: usize,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut positional = Vec::new();
    let mut args = Args {
        corpus: PathBuf::new(),
        queries: PathBuf::new(),
        k: 20,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        repeat: 3,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--k" => args.k = value("--k")?.parse().context("--k")?,
            "--threads" => args.threads = value("--threads")?.parse().context("--threads")?,
            "--repeat" => args.repeat = value("--repeat")?.parse().context("--repeat")?,
            "--out" => args.out = Some(value("--out")?.into()),
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [corpus, queries] = <[PathBuf; 2]>::try_from(positional).map_err(|_| {
        anyhow::anyhow!(
            "usage: bm25_jsonl CORPUS QUERIES [--k 20] [--threads N] [--repeat 3] [--out HITS]"
        )
    })?;
    if args.threads == 0 || args.repeat == 0 {
        bail!("--threads and --repeat must be at least 1");
    }
    args.corpus = corpus;
    args.queries = queries;
    Ok(args)
}

fn read_jsonl(path: &Path) -> Result<Vec<Record>> {
    let file = fs_err::File::open(path)?;
    std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            let line = line.with_context(|| format!("{} line {}", path.display(), i + 1))?;
            serde_json::from_str(&line)
                .with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// Peak resident memory (VmHWM) in MiB, from /proc (Linux only).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Best-of-`repeat` queries per second of a batch search on a pool of `threads` threads.
fn time_batch(
    index: &Bm25Index,
    texts: &[&str],
    k: usize,
    threads: usize,
    repeat: usize,
) -> Result<(f64, Vec<Vec<ScoredTrack>>)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut best = f64::INFINITY;
    let mut results = Vec::new();
    for _ in 0..repeat {
        let start = Instant::now();
        results = pool.install(|| index.search_batch(texts, k));
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok((texts.len() as f64 / best, results))
}

fn write_hits(path: &Path, queries: &[Record], results: &[Vec<ScoredTrack>]) -> Result<()> {
    // Written beside the target, then renamed: a crash never leaves a half-written file.
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(fs_err::File::create(&tmp)?);
    for (query, hits) in queries.iter().zip(results) {
        let line = HitsLine {
            id: &query.id,
            hits: hits
                .iter()
                .map(|h| (h.track_id.as_str(), h.score))
                .collect(),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let docs = read_jsonl(&args.corpus)?;
    let queries = read_jsonl(&args.queries)?;
    let n_docs = docs.len();

    let start = Instant::now();
    let index = Bm25Index::build(
        docs.into_iter().map(|d| (d.id, d.text)),
        Bm25Params::default(),
    )?;
    let index_s = start.elapsed().as_secs_f64();

    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let (qps_1, results) = time_batch(&index, &texts, args.k, 1, args.repeat)?;
    let (qps_n, _) = time_batch(&index, &texts, args.k, args.threads, args.repeat)?;
    if let Some(out) = &args.out {
        write_hits(out, &queries, &results)?;
    }
    let summary = serde_json::json!({
        "tool": "music-crs-retrieval bm25 (rust)",
        "docs": n_docs,
        "queries": queries.len(),
        "terms": index.vocabulary_len(),
        "postings": index.postings_len(),
        "index_s": (index_s * 1000.0).round() / 1000.0,
        "queries_per_s_1_thread": qps_1.round(),
        "threads": args.threads,
        "queries_per_s_n_threads": qps_n.round(),
        "peak_rss_mb": peak_rss_mb().map(|m| (m * 10.0).round() / 10.0),
    });
    println!("{summary}");
    Ok(())
}
