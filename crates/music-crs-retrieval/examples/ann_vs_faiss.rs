//! Exact and HNSW search side by side with faiss, in one run: the Rust side of
//! `../shared/bench/ann_peer.py`, with the peer started by this program on the same files.
//!
//! ```text
//! python3 -m venv ../ann-venv && ../ann-venv/bin/pip install faiss-cpu numpy
//! ../ann-venv/bin/python ../shared/bench/ann_peer.py make target/ann-data
//! ANN_PEER_PYTHON=../ann-venv/bin/python ANN_ROUNDS=2 ANN_EF_SEARCH=16,24,32,64 \
//!     cargo run --release -p music-crs-retrieval --features dense --example ann_vs_faiss
//! ```
//!
//! For each thread count (`ANN_THREADS`, default `1,2`) it runs the peer (`ann_peer.py run`
//! once per efSearch, with `--threads N` and `OMP_NUM_THREADS=N`), then [`ExactIndex`] and
//! [`HnswIndex`] on a rayon pool of N threads, and prints build seconds, HNSW queries/s and
//! recall@20 per efSearch (`ANN_EF_SEARCH`, default `32,64`), exact queries/s, and each ratio
//! beside its goal: build at most 2x faiss's, queries/s at recall@20 >= 0.95 at least 0.5x
//! faiss's, exact queries/s at least 0.8x faiss's flat index.
//!
//! `ANN_ROUNDS` (default 1) repeats everything, alternating the sides, and keeps each side's
//! best figures: on a shared machine the load changes from minute to minute.
//!
//! Both sides use M 16 and efConstruction 200 (`ANN_M`, `ANN_EF_CONSTRUCTION` change both) and
//! score recall against numpy's exact top 20 (`exact_top20.npy`). The peer times one batch of
//! all queries per index; the Rust side times three and reports the median. Peer figures
//! are the best of its runs (fastest build, fastest exact search), so ratios lean toward the
//! peer. `ANN_DATA` (default `target/ann-data`) and `ANN_PEER_SCRIPT` (default
//! `../shared/bench/ann_peer.py`) locate the files. Without the peer the Rust figures are
//! printed alone with what is missing; without the data the program says how to make it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use music_crs_retrieval::dense::{ExactIndex, HnswIndex, HnswParams, VectorIndex};
use serde::Deserialize;

#[path = "../benches/support/ann_data.rs"]
#[allow(dead_code)]
mod ann_data;

use ann_data::{Data, PEER_FILES, load_peer_data, recall, rows};

const K: usize = 20;
const RECALL_GOAL: f64 = 0.95;
const BUILD_GOAL: f64 = 2.0;
const HNSW_QPS_GOAL: f64 = 0.5;
const EXACT_QPS_GOAL: f64 = 0.8;

/// One line of `ann_peer.py run`.
#[derive(Debug, Deserialize)]
struct PeerRun {
    tool: String,
    exact_qps: f64,
    hnsw_build_s: f64,
    hnsw_qps: f64,
    #[serde(rename = "recall@20")]
    recall: f64,
}

/// For one thread count: the peer's figures, if it ran, and the Rust side's.
type ThreadResults = (Option<Figures>, Figures);

/// One side's figures for one thread count.
#[derive(Debug, Default)]
struct Figures {
    build_s: f64,
    exact_qps: f64,
    /// (efSearch, queries/s, recall@20) per efSearch.
    hnsw: Vec<(usize, f64, f64)>,
}

impl Figures {
    /// Keeps the better of two runs of the same side: the faster build and searches, the
    /// lower recall (recall barely moves between runs; the lower one is the cautious figure).
    fn keep_best(&mut self, other: Figures) {
        self.build_s = self.build_s.min(other.build_s);
        self.exact_qps = self.exact_qps.max(other.exact_qps);
        for (mine, theirs) in self.hnsw.iter_mut().zip(other.hnsw) {
            mine.1 = mine.1.max(theirs.1);
            mine.2 = mine.2.min(theirs.2);
        }
    }

    /// The highest queries/s among efSearch values reaching the recall goal.
    fn best_at_recall(&self) -> Option<(usize, f64, f64)> {
        self.hnsw
            .iter()
            .copied()
            .filter(|&(_, _, r)| r >= RECALL_GOAL)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

struct Settings {
    data_dir: PathBuf,
    threads: Vec<usize>,
    ef_search: Vec<usize>,
    params: HnswParams,
    peer: Result<(PathBuf, PathBuf), String>,
}

fn env_list(name: &str, default: &str) -> Result<Vec<usize>> {
    let text = std::env::var(name).unwrap_or_else(|_| default.into());
    let list = text
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("{name}={text:?} is not a comma-separated list of numbers"))?;
    if list.is_empty() || list.contains(&0) {
        bail!("{name}={text:?} needs positive numbers");
    }
    Ok(list)
}

fn settings() -> Result<Settings> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data_dir = std::env::var_os("ANN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/ann-data"));
    let defaults = HnswParams::default();
    let m = env_list("ANN_M", &defaults.max_nb_connection.to_string())?[0];
    let ef_construction =
        env_list("ANN_EF_CONSTRUCTION", &defaults.ef_construction.to_string())?[0];
    let params = HnswParams {
        max_nb_connection: m,
        ef_construction,
        ..defaults
    };
    params.validate()?;
    let script = std::env::var_os("ANN_PEER_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench/ann_peer.py"));
    let peer = match std::env::var_os("ANN_PEER_PYTHON") {
        None => Err(
            "ANN_PEER_PYTHON is not set: make a venv with `python3 -m venv ../ann-venv \
             && ../ann-venv/bin/pip install faiss-cpu numpy` and set \
             ANN_PEER_PYTHON=../ann-venv/bin/python"
                .to_string(),
        ),
        Some(_) if !script.is_file() => Err(format!(
            "the peer script {} is missing (set ANN_PEER_SCRIPT)",
            script.display()
        )),
        Some(python) => Ok((PathBuf::from(python), script)),
    };
    Ok(Settings {
        data_dir,
        threads: env_list("ANN_THREADS", "1,2")?,
        ef_search: env_list("ANN_EF_SEARCH", "32,64")?,
        params,
        peer,
    })
}

/// Runs the peer once per efSearch on `threads` threads.
fn run_peer(
    python: &Path,
    script: &Path,
    settings: &Settings,
    threads: usize,
) -> Result<(String, Figures)> {
    let mut figures = Figures {
        build_s: f64::INFINITY,
        ..Figures::default()
    };
    let mut tool = String::new();
    for &ef in &settings.ef_search {
        let output = Command::new(python)
            .arg(script)
            .arg("run")
            .arg(&settings.data_dir)
            .args(["--threads", &threads.to_string()])
            .args(["--m", &settings.params.max_nb_connection.to_string()])
            .args([
                "--ef-construction",
                &settings.params.ef_construction.to_string(),
            ])
            .args(["--ef-search", &ef.to_string()])
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("OPENBLAS_NUM_THREADS", threads.to_string())
            .output()
            .with_context(|| format!("start {} {}", python.display(), script.display()))?;
        if !output.status.success() {
            bail!(
                "the peer failed ({}; it needs numpy and faiss-cpu in {}): {}",
                output.status,
                python.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().context("the peer printed nothing")?;
        let run: PeerRun = serde_json::from_str(line)
            .with_context(|| format!("the peer printed {line:?}, not its JSON line"))?;
        figures.build_s = figures.build_s.min(run.hnsw_build_s);
        figures.exact_qps = figures.exact_qps.max(run.exact_qps);
        figures.hnsw.push((ef, run.hnsw_qps, run.recall));
        tool = run.tool;
    }
    Ok((tool, figures))
}

/// Queries per second of the median of three runs of `batch` over `count` queries.
fn median_qps(count: usize, mut batch: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(3);
    for _ in 0..3 {
        let started = Instant::now();
        batch()?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(count as f64 / times[1])
}

/// The Rust indexes on a pool of `threads` threads.
fn run_rust(data: &Data, truth: &[Vec<usize>], settings: &Settings) -> Result<Figures> {
    let ids: Vec<String> = (0..data.rows()).map(|i| i.to_string()).collect();
    let count = data.query_count();
    let exact = ExactIndex::build(ids.clone(), data.base.clone(), data.dim)?;
    let got = rows(exact.search_batch(&data.queries, K)?);
    let exact_recall = recall(&got, truth);
    if exact_recall < 0.99 {
        bail!("exact search has recall@20 {exact_recall:.4} against numpy's top 20");
    }
    let exact_qps = median_qps(count, || {
        exact.search_batch(&data.queries, K)?;
        Ok(())
    })?;
    drop(exact);

    let started = Instant::now();
    let mut hnsw = HnswIndex::build(ids, data.base.clone(), data.dim, settings.params.clone())?;
    let build_s = started.elapsed().as_secs_f64();
    let hnsw_figures = measure_hnsw(&mut hnsw, data, truth, settings)?;
    Ok(Figures {
        build_s,
        exact_qps,
        hnsw: hnsw_figures,
    })
}

/// (efSearch, median queries/s, recall@20) per efSearch.
fn measure_hnsw(
    index: &mut HnswIndex,
    data: &Data,
    truth: &[Vec<usize>],
    settings: &Settings,
) -> Result<Vec<(usize, f64, f64)>> {
    let count = data.query_count();
    let mut out = Vec::new();
    for &ef in &settings.ef_search {
        index.set_ef_search(ef)?;
        let index = &*index;
        let got = rows(index.search_batch(&data.queries, K)?);
        let qps = median_qps(count, || {
            index.search_batch(&data.queries, K)?;
            Ok(())
        })?;
        out.push((ef, qps, recall(&got, truth)));
    }
    Ok(out)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `rust / peer` with its goal: a ratio of at least `goal` when `higher_is_better`, else at
/// most `goal`.
fn verdict(rust: f64, peer: f64, goal: f64, higher_is_better: bool) -> String {
    let ratio = rust / peer;
    let (met, sign) = if higher_is_better {
        (ratio >= goal, ">=")
    } else {
        (ratio <= goal, "<=")
    };
    format!(
        "{ratio:.2}x ({sign}{goal}x: {})",
        if met { "met" } else { "NOT met" }
    )
}

/// What a table row shows beside each Rust figure.
#[derive(Clone, Copy)]
enum Ratio {
    Omitted,
    Plain,
    /// The goal for `rust / faiss` and whether higher is better.
    Goal(f64, bool),
}

/// Prints one thread count's figures: faiss, then each Rust side (`HnswIndex` for the HNSW
/// rows, `ExactIndex` for the exact row) with its ratio to faiss.
fn print_table(peer: Option<&Figures>, sides: &[(&str, &Figures)]) {
    let number = |value: f64, digits: usize| {
        if value.is_nan() {
            format!("{:>10}", "-")
        } else {
            format!("{value:>10.digits$}")
        }
    };
    let mut header = format!("  {:<32}{:>10}", "figure", "faiss");
    for (name, _) in sides {
        header.push_str(&format!("{name:>10}{:>24}", "vs faiss"));
    }
    println!("{header}");
    let line = |label: String,
                peer_value: Option<f64>,
                value: &dyn Fn(&Figures) -> Option<f64>,
                digits: usize,
                ratio: Ratio| {
        let mut text = format!(
            "  {label:<32}{}",
            peer_value.map_or(format!("{:>10}", "-"), |v| number(v, digits))
        );
        for (_, figures) in sides {
            let own = value(figures);
            text.push_str(&own.map_or(format!("{:>10}", "-"), |v| number(v, digits)));
            let shown = match (own, peer_value) {
                (Some(own), Some(peer)) if !own.is_nan() && !peer.is_nan() => match ratio {
                    Ratio::Omitted => String::new(),
                    Ratio::Plain => format!("{:>6.2}x", own / peer),
                    Ratio::Goal(goal, higher) => verdict(own, peer, goal, higher),
                },
                _ => String::new(),
            };
            text.push_str(&format!("{shown:>24}"));
        }
        println!("{}", text.trim_end());
    };
    line(
        "HNSW build s".into(),
        peer.map(|p| p.build_s),
        &|f| Some(f.build_s),
        2,
        Ratio::Goal(BUILD_GOAL, false),
    );
    let efs: Vec<usize> = sides
        .first()
        .map(|(_, f)| f.hnsw.iter().map(|h| h.0).collect())
        .unwrap_or_default();
    for (i, ef) in efs.into_iter().enumerate() {
        line(
            format!("HNSW efSearch {ef} queries/s"),
            peer.and_then(|p| p.hnsw.get(i)).map(|h| h.1),
            &|f| f.hnsw.get(i).map(|h| h.1),
            0,
            Ratio::Plain,
        );
        line(
            format!("HNSW efSearch {ef} recall@20"),
            peer.and_then(|p| p.hnsw.get(i)).map(|h| h.2),
            &|f| f.hnsw.get(i).map(|h| h.2),
            4,
            Ratio::Omitted,
        );
    }
    line(
        "HNSW best q/s, recall@20>=0.95".into(),
        peer.and_then(|p| p.best_at_recall()).map(|b| b.1),
        &|f| f.best_at_recall().map(|b| b.1),
        0,
        Ratio::Goal(HNSW_QPS_GOAL, true),
    );
    let at = |f: &Figures| {
        f.best_at_recall()
            .map_or("none".into(), |b| b.0.to_string())
    };
    let mut which = format!(
        "  {:<32}{:>10}",
        "  (at efSearch)",
        peer.map_or("-".into(), at)
    );
    for (_, figures) in sides {
        which.push_str(&format!("{:>10}{:>24}", at(figures), ""));
    }
    println!("{}", which.trim_end());
    line(
        "exact queries/s".into(),
        peer.map(|p| p.exact_qps),
        &|f| Some(f.exact_qps),
        0,
        Ratio::Goal(EXACT_QPS_GOAL, true),
    );
}

fn main() -> Result<()> {
    let settings = settings()?;
    let (data, truth) = match load_peer_data(&settings.data_dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            let missing: Vec<&str> = PEER_FILES
                .into_iter()
                .filter(|name| !settings.data_dir.join(name).is_file())
                .collect();
            bail!(
                "no benchmark data in {} ({}): make it with \
                 `python3 ../shared/bench/ann_peer.py make {}` (needs numpy), or set ANN_DATA \
                 [{e:#}]",
                settings.data_dir.display(),
                if missing.is_empty() {
                    "unreadable files".to_string()
                } else {
                    format!("missing {}", missing.join(", "))
                },
                settings.data_dir.display()
            );
        }
    };
    println!(
        "data: {} ({} x {}, {} queries, k {K}); HNSW M {}, efConstruction {}",
        settings.data_dir.display(),
        data.rows(),
        data.dim,
        data.query_count(),
        settings.params.max_nb_connection,
        settings.params.ef_construction
    );
    if let Err(missing) = &settings.peer {
        println!("peer: not run, {missing}");
    }
    // Rounds alternate the sides so that both meet the same load; each side keeps its best.
    let rounds = env_list("ANN_ROUNDS", "1")?[0];
    let mut results: Vec<ThreadResults> = Vec::new();
    for round in 1..=rounds {
        for (slot, &threads) in settings.threads.iter().enumerate() {
            println!(
                "round {round}/{rounds}, {threads} thread(s), load average before: {}",
                load_average()
            );
            let peer = match &settings.peer {
                Ok((python, script)) => {
                    let (tool, figures) = run_peer(python, script, &settings, threads)?;
                    println!("  peer: {tool}, build {:.2} s", figures.build_s);
                    Some(figures)
                }
                Err(_) => None,
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .context("rayon pool")?;
            let rust = pool.install(|| run_rust(&data, &truth, &settings))?;
            println!("  HnswIndex: build {:.2} s", rust.build_s);
            if round == 1 {
                results.push((peer, rust));
            } else {
                let (best_peer, best_rust) = &mut results[slot];
                if let (Some(best), Some(new)) = (best_peer.as_mut(), peer) {
                    best.keep_best(new);
                }
                best_rust.keep_best(rust);
            }
        }
    }
    for (&threads, (peer, rust)) in settings.threads.iter().zip(&results) {
        println!(
            "\n{threads} thread(s){}:",
            if rounds > 1 {
                format!(", best of {rounds} rounds per side")
            } else {
                String::new()
            }
        );
        print_table(peer.as_ref(), &[("music-crs", rust)]);
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}
