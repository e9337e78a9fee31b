//! Encodes a corpus of documents with a BERT sentence encoder, with a progress bar, and
//! reports the time: the cost of building dense catalog vectors.
//!
//! ```text
//! cargo run --release -p music-crs-retrieval --features bert --example encode_corpus -- \
//!     ../shared/models/all-MiniLM-L6-v2 ../shared/fixtures/bm25/corpus.jsonl \
//!     [--batch N] [--repeat N] [--workers N] [--out OUT.vec] [--peer PYTHON]
//! ```
//!
//! The corpus is JSON lines `{"id": ..., "text": ...}` (the shared BM25 fixture holds the 2,520
//! sample tracks stringified as the baseline does). `--repeat N` encodes the corpus N times
//! over, ids suffixed `#i`: a synthetic catalog of the real one's size (19 x 2,520 = 47,880
//! documents). With `--out` the vectors are saved as a `VectorFile`.
//!
//! On a CPU, run it with `CANDLE_NUM_THREADS=1` (candle's element-wise pool on one thread):
//! the encoder then takes one batch per rayon thread, side by side
//! ([`Encoder::concurrent_batches`]), which on 2 cores is about a third faster than one
//! batch at a time over both. `--workers N` overrides the choice (1: one batch at a time).
//!
//! `--peer PYTHON` then runs `scripts/encode_peer.py` (sentence-transformers on CPU torch,
//! installed in that Python's venv) on the same model, documents, batch size and thread count
//! (`RAYON_NUM_THREADS`, which candle follows too), prints its throughput beside ours with the
//! ratio, and the lowest cosine between the two sides' vectors of the same document.

use std::io::BufRead;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use music_crs_retrieval::dense::{
    BertEncoder, BertParams, EncodeParams, Encoder, VectorFile, encode_texts,
};

#[derive(serde::Deserialize)]
struct Doc {
    id: String,
    text: String,
}

struct Args {
    model: String,
    corpus: String,
    batch_size: usize,
    repeat: usize,
    out: Option<String>,
    peer: Option<String>,
    workers: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let usage = "usage: encode_corpus MODEL_DIR_OR_HUB_ID CORPUS.jsonl [--batch N] [--repeat N] \
                 [--workers N] [--out OUT.vec] [--peer PYTHON]";
    let mut positional = Vec::new();
    let mut batch_size = EncodeParams::default().batch_size;
    let mut repeat = 1;
    let mut out = None;
    let mut peer = None;
    let mut workers = EncodeParams::default().workers;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--batch" => batch_size = value("--batch")?.parse().context("--batch")?,
            "--repeat" => repeat = value("--repeat")?.parse().context("--repeat")?,
            "--out" => out = Some(value("--out")?),
            "--peer" => peer = Some(value("--peer")?),
            "--workers" => workers = value("--workers")?.parse().context("--workers")?,
            "-h" | "--help" => bail!("{usage}"),
            _ => positional.push(arg),
        }
    }
    let [model, corpus] =
        <[String; 2]>::try_from(positional).map_err(|_| anyhow::anyhow!(usage))?;
    if repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    Ok(Args {
        model,
        corpus,
        batch_size,
        repeat,
        out,
        peer,
        workers,
    })
}

fn read_corpus(path: &str) -> anyhow::Result<Vec<Doc>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {path}"))?;
    let mut docs = Vec::new();
    for (line_no, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {path}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: Doc =
            serde_json::from_str(&line).with_context(|| format!("{path}, line {}", line_no + 1))?;
        docs.push(doc);
    }
    Ok(docs)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;

    let started = Instant::now();
    let encoder = BertEncoder::load(&args.model, BertParams::default())?;
    println!(
        "loaded {} ({} dims, max {} tokens) in {:.2} s",
        encoder.model_id(),
        encoder.dim(),
        encoder.max_length(),
        started.elapsed().as_secs_f64()
    );

    let sample = read_corpus(&args.corpus)?;
    let docs: Vec<Doc> = (0..args.repeat)
        .flat_map(|copy| {
            sample.iter().map(move |doc| Doc {
                id: if args.repeat == 1 {
                    doc.id.clone()
                } else {
                    format!("{}#{copy}", doc.id)
                },
                text: doc.text.clone(),
            })
        })
        .collect();
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();

    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} docs ({per_sec}, ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |done: usize, _total: usize| bar.set_position(done as u64);
    let started = Instant::now();
    let data = encode_texts(
        &encoder,
        &texts,
        &EncodeParams {
            batch_size: args.batch_size,
            workers: args.workers,
        },
        Some(&progress),
    )?;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    println!(
        "encoded {} documents in {secs:.1} s ({:.1} docs/s, batch {}, {} rayon threads, {} \
         batches side by side)",
        texts.len(),
        texts.len() as f64 / secs,
        args.batch_size,
        rayon::current_num_threads(),
        match args.workers {
            0 => encoder.concurrent_batches(),
            n => n,
        }
    );

    if let Some(python) = &args.peer {
        run_peer(
            python,
            &args,
            &data,
            encoder.dim(),
            texts.len() as f64 / secs,
        )?;
    }

    if let Some(out) = &args.out {
        VectorFile {
            key: format!("model={};corpus={}", encoder.model_id(), args.corpus),
            dim: encoder.dim(),
            ids: docs.into_iter().map(|d| d.id).collect(),
            data,
        }
        .save(out.as_ref())?;
        println!("saved {out}");
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct PeerReport {
    tool: String,
    version: String,
    torch: String,
    threads: usize,
    docs: usize,
    docs_per_s: f64,
}

/// Runs the sentence-transformers peer on the same work and prints both sides, the ratio and
/// the vectors' agreement.
fn run_peer(
    python: &str,
    args: &Args,
    ours: &[f32],
    dim: usize,
    our_rate: f64,
) -> anyhow::Result<()> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/encode_peer.py");
    let vectors = tempfile::Builder::new().suffix(".npy").tempfile()?;
    let threads = candle_core::utils::get_num_threads();
    let output = std::process::Command::new(python)
        .arg(&script)
        .args([&args.model, &args.corpus])
        .args(["--repeat", &args.repeat.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--batch", &args.batch_size.to_string()])
        .arg("--out")
        .arg(vectors.path())
        .output()
        .with_context(|| format!("running the peer: {python} {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "the peer failed (is sentence-transformers installed for {python}? see {}):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: PeerReport = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .with_context(|| format!("no report line in the peer's output:\n{stdout}"))?;
    let theirs = read_npy_f32(vectors.path())?;
    if theirs.len() != ours.len() || report.docs * dim != ours.len() {
        bail!(
            "the peer encoded {} values for {} documents, we {}",
            theirs.len(),
            report.docs,
            ours.len()
        );
    }
    let lowest = ours
        .chunks_exact(dim)
        .zip(theirs.chunks_exact(dim))
        .map(|(a, b)| music_crs_retrieval::dense::dot(a, b))
        .fold(f32::INFINITY, f32::min);
    println!(
        "peer {} {} (torch {}), {} threads: {:.1} docs/s; ours / peer = {:.2}x; lowest cosine \
         between the two sides' vectors: {lowest:.5}",
        report.tool,
        report.version,
        report.torch,
        report.threads,
        report.docs_per_s,
        our_rate / report.docs_per_s
    );
    Ok(())
}

/// The values of a little-endian `<f4` `.npy` array (the peer writes a plain C-order matrix).
fn read_npy_f32(path: &std::path::Path) -> anyhow::Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let header_len = match bytes.get(..10) {
        Some([0x93, b'N', b'U', b'M', b'P', b'Y', 1, _, lo, hi]) => {
            10 + u16::from_le_bytes([*lo, *hi]) as usize
        }
        _ => bail!("{} is not a version-1 .npy file", path.display()),
    };
    let header = String::from_utf8_lossy(bytes.get(..header_len).unwrap_or_default());
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        bail!(
            "{}: expected a C-order float32 array, found {header}",
            path.display()
        );
    }
    Ok(bytes[header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}
