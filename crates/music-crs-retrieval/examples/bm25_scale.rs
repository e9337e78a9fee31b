//! How the BM25 index scales: build time, memory and single-thread query latency on
//! synthetic track documents of any count.
//!
//! ```text
//! python3 ../shared/bench/make_bm25_bench.py target/bench-data
//! cargo run --release -p music-crs-retrieval --example bm25_scale -- --docs 500000 \
//!     [--queries target/bench-data/queries.jsonl] [--n-queries 2000] [--k 20] [--check 100] \
//!     [--passes 3]
//! ```
//!
//! Documents look like the catalog's (`track_name: ...\nartist_name: ...\nalbum_name:
//! ...\nrelease_date: YYYY-MM-DD`): names of 1 to 5 words drawn from a Zipf law (exponent 1)
//! over the real words of `../shared/fixtures/bm25/corpus.jsonl` by falling frequency (generated
//! words when it is absent), followed by generated words, so the vocabulary grows with the
//! corpus (a quarter as many words as documents). Queries are the real conversation histories
//! of the benchmark file.
//!
//! Printed as one JSON line: documents, terms, postings, the size of the texts, build seconds
//! (without the time making the documents, measured apart), the resident memory
//! the index added and its saved size, then queries/s and the mean, median and 99th
//! percentile latency of one query on one thread (each query's best of `--passes` runs), and
//! the peak resident memory of the process. `--check N` also compares N queries' top `k` with exhaustive scoring.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use music_crs_retrieval::{Bm25Index, Bm25Params};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Args {
    docs: usize,
    queries: PathBuf,
    n_queries: usize,
    k: usize,
    check: usize,
    passes: usize,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        docs: 50_000,
        queries: PathBuf::from("target/bench-data/queries.jsonl"),
        n_queries: 2_000,
        k: 20,
        check: 0,
        passes: 3,
        seed: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--docs" => args.docs = value("--docs")?.parse().context("--docs")?,
            "--queries" => args.queries = value("--queries")?.into(),
            "--n-queries" => {
                args.n_queries = value("--n-queries")?.parse().context("--n-queries")?
            }
            "--k" => args.k = value("--k")?.parse().context("--k")?,
            "--check" => args.check = value("--check")?.parse().context("--check")?,
            "--seed" => args.seed = value("--seed")?.parse().context("--seed")?,
            "--passes" => args.passes = value("--passes")?.parse().context("--passes")?,
            other => bail!(
                "unknown argument {other}; usage: bm25_scale [--docs N] [--queries PATH] \
                 [--n-queries 2000] [--k 20] [--check 0] [--passes 3] [--seed 7]"
            ),
        }
    }
    ensure!(
        args.docs > 0 && args.n_queries > 0 && args.k > 0,
        "counts must be positive"
    );
    Ok(args)
}

/// `(VmRSS, VmHWM)` of this process in MiB (Linux only).
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The real words of the fixture's track, artist and album names, most frequent first.
fn real_words() -> Vec<String> {
    let Some(path) = music_crs_core::shared::shared_dir()
        .map(|dir| dir.join("fixtures/bm25/corpus.jsonl"))
        .filter(|path| path.is_file())
    else {
        eprintln!("shared/fixtures/bm25/corpus.jsonl not found: generated words only");
        return Vec::new();
    };
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for field_line in record["text"].as_str().unwrap_or_default().lines() {
            let Some((field, value)) = field_line.split_once(": ") else {
                continue;
            };
            if field == "release_date" {
                continue;
            }
            for word in value.split_whitespace() {
                *counts.entry(word.to_string()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.into_iter().map(|(word, _)| word).collect()
}

/// A pronounceable word for a rank past the real words: its base-20 digits as syllables.
fn generated_word(mut rank: usize) -> String {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "su", "ra", "to", "vi", "de", "po", "ga", "fu", "ze", "bo", "ly",
        "ch", "wa", "re", "xi", "nu",
    ];
    let mut word = String::from("q");
    loop {
        word.push_str(SYLLABLES[rank % 20]);
        rank /= 20;
        if rank == 0 {
            return word;
        }
    }
}

/// Synthetic track documents: Zipf-distributed name words, random release dates.
struct Documents {
    words: Vec<String>,
    vocabulary: usize,
    rng: ChaCha8Rng,
}

impl Documents {
    fn new(real: Vec<String>, n_docs: usize, seed: u64) -> Self {
        Documents {
            vocabulary: real.len() + n_docs / 4 + 1,
            words: real,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Zipf with exponent 1 over `vocabulary` ranks, by inverting its continuous CDF.
    fn word(&mut self) -> String {
        let u: f64 = self.rng.random();
        let rank = ((self.vocabulary as f64 + 1.0).powf(u) - 1.0) as usize;
        let rank = rank.min(self.vocabulary - 1);
        match self.words.get(rank) {
            Some(word) => word.clone(),
            None => generated_word(rank),
        }
    }

    fn name(&mut self, most: usize) -> String {
        let count = self.rng.random_range(1..=most);
        (0..count)
            .map(|_| self.word())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn document(&mut self) -> String {
        let track = self.name(5);
        let artist = self.name(3);
        let album = self.name(4);
        let year = self.rng.random_range(1960..=2024);
        let month = self.rng.random_range(1..=12);
        let day = self.rng.random_range(1..=28);
        format!(
            "track_name: {track}\nartist_name: {artist}\nalbum_name: {album}\n\
             release_date: {year}-{month:02}-{day:02}\n"
        )
    }
}

fn read_queries(path: &Path, limit: usize) -> Result<Vec<String>> {
    if !path.is_file() {
        bail!(
            "{} not found: make it with `python3 ../shared/bench/make_bm25_bench.py \
             target/bench-data` (from the project root) or pass --queries PATH",
            path.display()
        );
    }
    let file = fs_err::File::open(path)?;
    let mut queries = Vec::new();
    for line in std::io::BufReader::new(file).lines().take(limit) {
        let record: serde_json::Value = serde_json::from_str(&line?)?;
        queries.push(
            record["text"]
                .as_str()
                .context("query without text")?
                .to_string(),
        );
    }
    Ok(queries)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let queries = read_queries(&args.queries, args.n_queries)?;
    let real = real_words();

    // Documents are made while the index reads them (so that the memory the index adds is
    // all that grows); making them alone, from the same seed, is timed first and subtracted.
    let mut documents = Documents::new(real.clone(), args.docs, args.seed);
    let start = Instant::now();
    let text_bytes: usize = (0..args.docs)
        .map(|i| format!("doc{i}").len() + documents.document().len())
        .sum();
    let synthesis_s = start.elapsed().as_secs_f64();

    let mut documents = Documents::new(real, args.docs, args.seed);
    let (rss_before, _) = rss_mb();
    let start = Instant::now();
    let index = Bm25Index::build(
        (0..args.docs).map(|i| (format!("doc{i}"), documents.document())),
        Bm25Params::default(),
    )?;
    let build_s = (start.elapsed().as_secs_f64() - synthesis_s).max(0.0);
    drop(documents);
    let (rss_after, _) = rss_mb();

    let dir = tempfile::tempdir()?;
    let saved = index.save(dir.path())?;
    let saved_mb = fs_err::metadata(&saved)?.len() as f64 / (1024.0 * 1024.0);
    drop(dir);

    // Single-thread latency: one query at a time, on this thread. Each query keeps its best
    // of `passes` runs, so that a time slice lost to another process on a shared machine
    // does not pass for a slow query.
    let mut latencies_us = vec![f64::INFINITY; queries.len()];
    let mut hits = 0usize;
    for _ in 0..args.passes {
        hits = 0;
        for (query, best) in queries.iter().zip(&mut latencies_us) {
            let one = Instant::now();
            hits += index.search(query, args.k).len();
            *best = best.min(one.elapsed().as_secs_f64() * 1e6);
        }
    }
    let total_s = latencies_us.iter().sum::<f64>() / 1e6;
    latencies_us.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies_us[((latencies_us.len() - 1) as f64 * p).round() as usize];
    let mean_us = latencies_us.iter().sum::<f64>() / latencies_us.len() as f64;

    let mut checked = 0;
    for query in queries.iter().take(args.check) {
        let mut exhaustive: Vec<(usize, f32)> = index
            .scores(query)
            .into_iter()
            .enumerate()
            .filter(|&(_, s)| s > 0.0)
            .collect();
        exhaustive.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        exhaustive.truncate(args.k);
        let bits =
            |v: &[(usize, f32)]| v.iter().map(|&(d, s)| (d, s.to_bits())).collect::<Vec<_>>();
        ensure!(
            bits(&index.search_indices(query, args.k)) == bits(&exhaustive),
            "query {checked} differs from exhaustive scoring"
        );
        checked += 1;
    }

    let (_, peak) = rss_mb();
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    println!(
        "{}",
        serde_json::json!({
            "docs": index.len(),
            "terms": index.vocabulary_len(),
            "postings": index.postings_len(),
            "text_mb": round(text_bytes as f64 / (1024.0 * 1024.0), 1),
            "build_s": round(build_s, 2),
            "synthesis_s": round(synthesis_s, 2),
            "index_resident_mb": round(rss_after - rss_before, 1),
            "saved_mb": round(saved_mb, 1),
            "queries": queries.len(),
            "mean_hits": round(hits as f64 / queries.len() as f64, 1),
            "queries_per_s_1_thread": round(queries.len() as f64 / total_s, 0),
            "latency_mean_us": round(mean_us, 1),
            "latency_p50_us": round(percentile(0.5), 1),
            "latency_p99_us": round(percentile(0.99), 1),
            "checked_against_exhaustive": checked,
            "peak_rss_mb": round(peak, 1),
        })
    );
    Ok(())
}
