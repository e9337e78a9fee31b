//! Encodes a corpus of documents with a BERT sentence encoder and reports the time: the
//! cost of building dense catalog vectors.
//!
//! ```text
//! cargo run --release -p music-crs-retrieval --features bert --example encode_corpus -- \
//!     ../shared/models/all-MiniLM-L6-v2 ../shared/fixtures/bm25/corpus.jsonl [BATCH] [OUT.vec]
//! ```
//!
//! The corpus is JSON lines `{"id": ..., "text": ...}` (the shared BM25 fixture holds the 2,520
//! sample tracks stringified as the baseline does). With `OUT.vec` the vectors are saved as a
//! `VectorFile`.

use std::io::BufRead;
use std::time::Instant;

use anyhow::{Context, bail};
use music_crs_retrieval::dense::{
    BertEncoder, BertParams, EncodeParams, Encoder, VectorFile, encode_texts,
};

#[derive(serde::Deserialize)]
struct Doc {
    id: String,
    text: String,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, corpus, rest @ ..] = args.as_slice() else {
        bail!("usage: encode_corpus MODEL_DIR_OR_HUB_ID CORPUS.jsonl [BATCH] [OUT.vec]");
    };
    let batch_size = match rest.first() {
        Some(b) => b.parse().context("BATCH must be a number")?,
        None => EncodeParams::default().batch_size,
    };

    let started = Instant::now();
    let encoder = BertEncoder::load(model, BertParams::default())?;
    println!(
        "loaded {} ({} dims, max {} tokens) in {:.2} s",
        encoder.model_id(),
        encoder.dim(),
        encoder.max_length(),
        started.elapsed().as_secs_f64()
    );

    let file = std::fs::File::open(corpus).with_context(|| format!("open {corpus}"))?;
    let mut docs = Vec::new();
    for (line_no, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {corpus}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: Doc = serde_json::from_str(&line)
            .with_context(|| format!("{corpus}, line {}", line_no + 1))?;
        docs.push(doc);
    }
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();

    // Print progress every tenth of the corpus (the CLI shows an indicatif bar instead).
    let step = (texts.len() / 10).max(1);
    let progress = |done: usize, total: usize| {
        if done % step < batch_size || done == total {
            eprintln!("  {done}/{total}");
        }
    };
    let started = Instant::now();
    let data = encode_texts(
        &encoder,
        &texts,
        &EncodeParams { batch_size },
        Some(&progress),
    )?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "encoded {} documents in {secs:.1} s ({:.1} docs/s, batch {batch_size}, {} rayon threads)",
        texts.len(),
        texts.len() as f64 / secs,
        rayon::current_num_threads()
    );

    if let Some(out) = rest.get(1) {
        VectorFile {
            key: format!("model={};corpus={corpus}", encoder.model_id()),
            dim: encoder.dim(),
            ids: docs.into_iter().map(|d| d.id).collect(),
            data,
        }
        .save(out.as_ref())?;
        println!("saved {out}");
    }
    Ok(())
}
