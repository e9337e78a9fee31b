//! BM25 over JSONL files, timed, and side by side with bm25s from one run.
//!
//! ```text
//! python3 ../shared/bench/make_bm25_bench.py target/bench-data
//! cargo run --release -p music-crs-retrieval --example bm25_jsonl -- \
//!     target/bench-data/corpus.jsonl target/bench-data/queries.jsonl \
//!     [--k 20] [--threads 2] [--repeat 3] [--out HITS.jsonl] [--check] \
//!     [--peer ../bench-venv/bin/python [--backend numba] [--peer-script bm25s_peer.py]
//!      [--rounds 1]]
//! ```
//!
//! `CORPUS` and `QUERIES` hold one `{"id", "text"}` object per line. The program builds a
//! [`Bm25Index`] with bm25s's default settings, answers every query on one thread and then on
//! `--threads` threads (default: all cores), and prints the index time, queries per second
//! and peak resident memory as one JSON line. `--out` writes `{"id", "hits": [[doc_id,
//! score], ...]}` lines (the format of `expected_top20.jsonl`).
//!
//! `--check` compares every query's top `k` with the exhaustive scores
//! ([`Bm25Index::scores`], bm25s's own float32 sums) sorted by score then index: same ids,
//! same order, same f32 bits.
//!
//! `--peer PYTHON` also runs `../shared/bench/bm25s_peer.py` with that interpreter on the
//! same files, on one thread and on `--threads` threads, prints both sides and their ratios
//! in one table, and compares the hits: at every rank the same score (to the peer's 5
//! decimals) and the same document, except where bm25s ordered an exact tie differently (the
//! document it names must then have, here, exactly the score of ours at that rank). With
//! `--rounds R` both sides run R times, alternating, and each keeps its best figures.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use music_crs_core::ScoredTrack;
use music_crs_retrieval::{Bm25Index, Bm25Params};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

const MAKE_DATA: &str = "python3 ../shared/bench/make_bm25_bench.py target/bench-data";
const MAKE_PEER: &str =
    "python3 -m venv ../bench-venv && ../bench-venv/bin/pip install bm25s==0.3.16 numba";

/// The error context of a peer interpreter that cannot be started.
fn cannot_run_peer(python: &Path) -> String {
    format!(
        "cannot run the peer interpreter {}: make it with `{MAKE_PEER}`",
        python.display()
    )
}

#[derive(Deserialize)]
struct Record {
    id: String,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct HitsLine {
    id: String,
    hits: Vec<(String, f64)>,
}

struct Args {
    corpus: PathBuf,
    queries: PathBuf,
    k: usize,
    threads: usize,
    repeat: usize,
    out: Option<PathBuf>,
    check: bool,
    rounds: usize,
    peer: Option<PathBuf>,
    peer_script: Option<PathBuf>,
    backend: String,
}

const USAGE: &str = "usage: bm25_jsonl CORPUS QUERIES [--k 20] [--threads N] [--repeat 3] \
    [--out HITS] [--check] [--peer PYTHON [--backend numba] [--peer-script PATH] [--rounds 1]]";

fn parse_args() -> Result<Args> {
    let mut positional = Vec::new();
    let mut args = Args {
        corpus: PathBuf::new(),
        queries: PathBuf::new(),
        k: 20,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        repeat: 3,
        out: None,
        check: false,
        rounds: 1,
        peer: None,
        peer_script: None,
        backend: "numba".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--k" => args.k = value("--k")?.parse().context("--k")?,
            "--threads" => args.threads = value("--threads")?.parse().context("--threads")?,
            "--repeat" => args.repeat = value("--repeat")?.parse().context("--repeat")?,
            "--out" => args.out = Some(value("--out")?.into()),
            "--check" => args.check = true,
            "--rounds" => args.rounds = value("--rounds")?.parse().context("--rounds")?,
            "--peer" => args.peer = Some(value("--peer")?.into()),
            "--peer-script" => args.peer_script = Some(value("--peer-script")?.into()),
            "--backend" => args.backend = value("--backend")?,
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{USAGE}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [corpus, queries] =
        <[PathBuf; 2]>::try_from(positional).map_err(|_| anyhow::anyhow!(USAGE))?;
    ensure!(
        args.threads > 0 && args.repeat > 0 && args.k > 0 && args.rounds > 0,
        "--threads, --repeat, --rounds and --k must be at least 1"
    );
    args.corpus = corpus;
    args.queries = queries;
    Ok(args)
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        bail!(
            "{} not found: make the benchmark data with `{MAKE_DATA}` (from the project root)",
            path.display()
        );
    }
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
        let line = serde_json::json!({
            "id": query.id,
            "hits": hits.iter().map(|h| (h.track_id.as_str(), h.score)).collect::<Vec<_>>(),
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// The exact top `k` by exhaustive scoring: every document's bm25s score, sorted by
/// descending score then index, non-matching documents left out.
fn exhaustive_top_k(index: &Bm25Index, query: &str, k: usize) -> Vec<(usize, f32)> {
    let mut matching: Vec<(usize, f32)> = index
        .scores(query)
        .into_iter()
        .enumerate()
        .filter(|&(_, score)| score > 0.0)
        .collect();
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if matching.len() > k {
        matching.select_nth_unstable_by(k, order);
        matching.truncate(k);
    }
    matching.sort_by(order);
    matching
}

/// How many queries' pruned top `k` differ from the exhaustive one (ids, order, f32 bits).
fn check_exhaustive(index: &Bm25Index, texts: &[&str], k: usize) -> usize {
    texts
        .par_iter()
        .filter(|query| {
            let bits = |hits: Vec<(usize, f32)>| -> Vec<(usize, u32)> {
                hits.into_iter().map(|(d, s)| (d, s.to_bits())).collect()
            };
            bits(index.search_indices(query, k)) != bits(exhaustive_top_k(index, query, k))
        })
        .count()
}

/// One run of the peer, as it reports it.
#[derive(Deserialize)]
struct PeerRun {
    tool: String,
    index_s: f64,
    queries_per_s: f64,
    peak_rss_mb: f64,
}

impl PeerRun {
    /// The better figures of two runs (peak memory: the first run's).
    fn best(self, other: PeerRun) -> PeerRun {
        PeerRun {
            index_s: self.index_s.min(other.index_s),
            queries_per_s: self.queries_per_s.max(other.queries_per_s),
            ..self
        }
    }
}

/// Runs `bm25s_peer.py` on the same files; its hits go to `out`.
fn run_peer(
    args: &Args,
    python: &Path,
    script: &Path,
    threads: usize,
    out: &Path,
) -> Result<PeerRun> {
    let output = Command::new(python)
        .arg(script)
        .arg(&args.corpus)
        .arg(&args.queries)
        .args(["--k", &args.k.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--backend", &args.backend])
        .arg("--out")
        .arg(out)
        .output()
        .with_context(|| cannot_run_peer(python))?;
    if !output.status.success() {
        bail!(
            "the peer failed ({}): {}\nis bm25s installed in that interpreter? `{MAKE_PEER}`",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("the peer printed no JSON line: {stdout}"))?;
    serde_json::from_str(line).with_context(|| format!("the peer's line: {line}"))
}

/// A score as the peer writes it: the f32's exact value rounded to 5 decimals.
fn five_decimals(score: f32) -> f64 {
    format!("{:.5}", f64::from(score))
        .parse()
        .unwrap_or(f64::NAN)
}

/// How the peer's hits compare with ours.
#[derive(Default)]
struct HitsComparison {
    queries: usize,
    identical_queries: usize,
    hits: usize,
    /// Ranks where bm25s named another document with exactly our score (an exact tie).
    tie_reorders: usize,
    differences: Vec<String>,
}

fn compare_hits(
    index: &Bm25Index,
    queries: &[Record],
    ours: &[Vec<ScoredTrack>],
    peer_hits: &Path,
) -> Result<HitsComparison> {
    let theirs: Vec<HitsLine> = read_jsonl(peer_hits)?;
    ensure!(
        theirs.len() == queries.len(),
        "the peer wrote {} hit lines for {} queries",
        theirs.len(),
        queries.len()
    );
    let position: std::collections::HashMap<&str, usize> = index
        .doc_ids()
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut report = HitsComparison::default();
    for ((query, ours), theirs) in queries.iter().zip(ours).zip(&theirs) {
        ensure!(
            query.id == theirs.id,
            "peer line for {} where {} was expected",
            theirs.id,
            query.id
        );
        report.queries += 1;
        // bm25s pads its top k with arbitrary zero-score documents; this index does not.
        let theirs: Vec<&(String, f64)> = theirs.hits.iter().filter(|(_, s)| *s > 0.0).collect();
        let mut same = ours.len() == theirs.len();
        if !same {
            report.differences.push(format!(
                "{}: {} matching documents here, {} in bm25s",
                query.id,
                ours.len(),
                theirs.len()
            ));
        }
        let mut exhaustive: Option<Vec<f32>> = None;
        for (rank, (hit, (their_id, their_score))) in ours.iter().zip(&theirs).enumerate() {
            report.hits += 1;
            if five_decimals(hit.score) != *their_score {
                same = false;
                report.differences.push(format!(
                    "{} rank {rank}: score {} here, {their_score} in bm25s",
                    query.id, hit.score
                ));
            } else if &hit.track_id != their_id {
                let scores = exhaustive.get_or_insert_with(|| index.scores(&query.text));
                let theirs_here = position.get(their_id.as_str()).map(|&doc| scores[doc]);
                if theirs_here.map(f32::to_bits) == Some(hit.score.to_bits()) {
                    report.tie_reorders += 1;
                } else {
                    same = false;
                    report.differences.push(format!(
                        "{} rank {rank}: {} here, bm25s has {their_id} (its score here: {theirs_here:?})",
                        query.id, hit.track_id
                    ));
                }
            }
        }
        report.identical_queries += usize::from(same);
    }
    Ok(report)
}

/// Fails, saying what to install, unless `python` imports bm25s (and numba for that backend).
fn check_peer_packages(python: &Path, backend: &str) -> Result<()> {
    let imports = if backend == "numba" {
        "import bm25s, numba"
    } else {
        "import bm25s"
    };
    let output = Command::new(python)
        .args(["-c", imports])
        .output()
        .with_context(|| cannot_run_peer(python))?;
    ensure!(
        output.status.success(),
        "{} cannot `{imports}` ({}): make the peer with `{MAKE_PEER}`",
        python.display(),
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );
    Ok(())
}

fn peer_script(args: &Args) -> Result<PathBuf> {
    let script = match &args.peer_script {
        Some(path) => path.clone(),
        None => music_crs_core::shared::shared_dir()
            .map(|dir| dir.join("bench/bm25s_peer.py"))
            .context(
                "../shared/ not found beside the project root (set MUSIC_CRS_SHARED_DIR), \
                 so the peer script bench/bm25s_peer.py is missing; or pass --peer-script PATH",
            )?,
    };
    ensure!(
        script.is_file(),
        "peer script {} not found (it is shared/bench/bm25s_peer.py; pass --peer-script PATH)",
        script.display()
    );
    Ok(script)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    // Check the peer before spending time on the Rust side.
    let peer = match &args.peer {
        Some(python) => {
            let script = peer_script(&args)?;
            check_peer_packages(python, &args.backend)?;
            Some((python.clone(), script))
        }
        None => None,
    };
    let docs: Vec<Record> = read_jsonl(&args.corpus)?;
    let queries: Vec<Record> = read_jsonl(&args.queries)?;

    let n_docs = docs.len();
    let start = Instant::now();
    let index = Bm25Index::build(
        docs.into_iter().map(|d| (d.id, d.text)),
        Bm25Params::default(),
    )?;
    let index_s = start.elapsed().as_secs_f64();
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();

    // With a peer, each round runs it and this crate alternately (peer 1 thread, rust 1
    // thread, peer n threads, rust n threads), so that a change of load on a shared machine
    // hits both sides alike; each side keeps its best round.
    let scratch = tempfile::tempdir()?;
    let hits_1 = scratch.path().join("bm25s_hits_1.jsonl");
    let mut peer_runs: Option<(PeerRun, PeerRun)> = None;
    let (mut qps_1, mut qps_n, mut results) = (0.0f64, 0.0f64, Vec::new());
    for _ in 0..args.rounds {
        let peer_1 = match &peer {
            Some((python, script)) => Some(run_peer(&args, python, script, 1, &hits_1)?),
            None => None,
        };
        let (qps, hits) = time_batch(&index, &texts, args.k, 1, args.repeat)?;
        qps_1 = qps_1.max(qps);
        results = hits;
        let peer_n = match &peer {
            Some((python, script)) => {
                let out = scratch.path().join("bm25s_hits_n.jsonl");
                Some(run_peer(&args, python, script, args.threads, &out)?)
            }
            None => None,
        };
        qps_n = qps_n.max(time_batch(&index, &texts, args.k, args.threads, args.repeat)?.0);
        if let (Some(new_1), Some(new_n)) = (peer_1, peer_n) {
            peer_runs = Some(match peer_runs {
                None => (new_1, new_n),
                Some((old_1, old_n)) => (old_1.best(new_1), old_n.best(new_n)),
            });
        }
    }
    let peak_mb = peak_rss_mb();
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
        "peak_rss_mb": peak_mb.map(|m| (m * 10.0).round() / 10.0),
    });
    println!("{summary}");

    if args.check {
        let differing = check_exhaustive(&index, &texts, args.k);
        println!(
            "exhaustive check: {}/{} queries with the top {} of exhaustive scoring \
             (same ids, order and f32 bits)",
            texts.len() - differing,
            texts.len(),
            args.k
        );
        ensure!(
            differing == 0,
            "{differing} queries differ from exhaustive scoring"
        );
    }

    let Some((peer_1, peer_n)) = peer_runs else {
        return Ok(());
    };
    let comparison = compare_hits(&index, &queries, &results, &hits_1)?;

    let n = args.threads;
    let rust_mb = peak_mb.unwrap_or(f64::NAN);
    println!();
    println!(
        "{:<26} {:>9} {:>13} {:>13} {:>16}",
        "",
        "index s",
        "q/s 1 thread",
        format!("q/s {n} threads"),
        "peak MB (1t/nt)"
    );
    println!(
        "{:<26} {:>9.3} {:>13.0} {:>13.0} {:>16}",
        peer_1.tool,
        peer_1.index_s,
        peer_1.queries_per_s,
        peer_n.queries_per_s,
        format!("{:.0} / {:.0}", peer_1.peak_rss_mb, peer_n.peak_rss_mb)
    );
    println!(
        "{:<26} {:>9.3} {:>13.0} {:>13.0} {:>16}",
        "music-crs bm25 (rust)",
        index_s,
        qps_1,
        qps_n,
        format!("{rust_mb:.0} (one process)")
    );
    println!(
        "{:<26} {:>8.1}x {:>12.2}x {:>12.2}x {:>16}",
        "rust vs bm25s",
        peer_1.index_s / index_s,
        qps_1 / peer_1.queries_per_s,
        qps_n / peer_n.queries_per_s,
        format!("{:.2}x the memory", rust_mb / peer_1.peak_rss_mb)
    );
    println!(
        "hits vs bm25s: {}/{} queries identical ({} hits: the same score to 5 decimals at every \
         rank, the same document except {} exact-score ties bm25s ordered otherwise)",
        comparison.identical_queries, comparison.queries, comparison.hits, comparison.tie_reorders
    );
    for difference in comparison.differences.iter().take(10) {
        println!("  differs: {difference}");
    }
    ensure!(
        comparison.differences.is_empty(),
        "{} differences from bm25s",
        comparison.differences.len()
    );
    Ok(())
}
