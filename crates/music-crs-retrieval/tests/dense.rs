//! Dense retrieval through the public API: HNSW recall against exact search on clustered
//! vectors, save/load of both indexes, and (with `bert`) the real MiniLM encoder against
//! reference embeddings and a dense text retriever end to end.
#![cfg(feature = "dense")]

use music_crs_retrieval::dense::{ExactIndex, HnswIndex, HnswParams, VectorIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` unit vectors around `clusters` random centres (deterministic).
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        let mut v: Vec<f32> = (0..dim)
            .map(|d| centres[c * dim + d] + rng.random_range(-0.35f32..0.35))
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        out.extend(v);
    }
    out
}

fn rows(hits: &[Vec<music_crs_retrieval::dense::Neighbour>]) -> Vec<Vec<usize>> {
    hits.iter()
        .map(|h| h.iter().map(|n| n.row).collect())
        .collect()
}

fn recall_at(got: &[Vec<usize>], truth: &[Vec<usize>], k: usize) -> f64 {
    let hits: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| g.iter().take(k).filter(|r| t[..k].contains(r)).count())
        .sum();
    hits as f64 / (truth.len() * k) as f64
}

#[test]
fn hnsw_recall_at_20_against_exact_on_5000_x_32() {
    let (n, dim, k) = (5_000, 32, 20);
    let base = clustered(n, dim, 50, 1);
    let queries = clustered(300, dim, 50, 2);
    let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();

    let exact = ExactIndex::build(ids.clone(), base.clone(), dim).unwrap();
    let truth = rows(&exact.search_batch(&queries, k).unwrap());
    // The exact batch path (tiled kernel) agrees with the single-query path (dot products).
    for (q, expected) in queries.chunks(dim).zip(&truth).take(20) {
        let single: Vec<usize> = exact.search(q, k).unwrap().iter().map(|n| n.row).collect();
        assert_eq!(recall_at(&[single], std::slice::from_ref(expected), k), 1.0);
    }

    // Built on one thread: the levels are seeded and the insertions run in order, so the
    // graph (and the recall: 0.9657 at the default efSearch 64) is the same on every run; a
    // parallel build depends on thread timing, which a loaded CI machine would turn into a
    // recall that varies.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let hnsw = one_thread
        .install(|| HnswIndex::build(ids, base, dim, HnswParams::default()))
        .unwrap();
    let got = rows(&hnsw.search_batch(&queries, k).unwrap());
    let recall = recall_at(&got, &truth, k);
    eprintln!("hnsw recall@20 on {n} x {dim}: {recall:.4}");
    assert!(recall >= 0.95, "recall@20 {recall}");

    // A reloaded index answers exactly as the saved one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.hnsw");
    hnsw.save(&path).unwrap();
    let loaded = HnswIndex::load(&path).unwrap();
    assert_eq!(
        loaded.search_batch(&queries, k).unwrap(),
        hnsw.search_batch(&queries, k).unwrap()
    );
    assert_eq!(loaded.ids()[4_999], "t4999");
}

#[test]
fn truncated_hnsw_file_is_a_clear_error() {
    let dim = 8;
    let base = clustered(300, dim, 5, 3);
    let ids: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let hnsw = HnswIndex::build(ids, base, dim, HnswParams::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.hnsw");
    hnsw.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = HnswIndex::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("index.hnsw") && err.contains("truncated"),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    let err = HnswIndex::load(&path).unwrap_err().to_string();
    assert!(err.contains("index.hnsw"), "{err}");
}

/// The folder an index was saved to before HNSW had its own engine (hnsw_rs's dump beside a
/// manifest) is refused with a hint to rebuild.
#[test]
fn an_hnsw_rs_index_folder_asks_for_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("hnsw");
    std::fs::create_dir(&old).unwrap();
    for name in ["index.manifest", "index.hnsw.graph", "index.hnsw.data"] {
        std::fs::write(old.join(name), b"from hnsw_rs").unwrap();
    }
    let err = HnswIndex::load(&old).unwrap_err().to_string();
    assert!(err.starts_with(&old.display().to_string()), "{err}");
    assert!(err.contains("rebuild the index"), "{err}");
}

#[cfg(feature = "bert")]
mod bert {
    use std::sync::Arc;

    use music_crs_core::shared::shared_path;
    use music_crs_core::{Catalog, Track, TrackField, TurnContext};
    use music_crs_retrieval::dense::{
        BertEncoder, BertParams, EmbeddingCache, EncodeParams, Encoder, IndexParams,
        VectorRetriever, dot,
    };
    use music_crs_retrieval::{QueryRenderParams, QueryRenderer, Retriever};

    #[derive(serde::Deserialize)]
    struct Reference {
        sentences: Vec<String>,
        embeddings: Vec<Vec<f32>>,
    }

    fn minilm() -> Option<BertEncoder> {
        let dir = shared_path("models/all-MiniLM-L6-v2")?;
        Some(BertEncoder::from_dir(&dir, BertParams::default()).unwrap())
    }

    #[test]
    fn minilm_matches_reference_embeddings() {
        let Some(encoder) = minilm() else { return };
        let Some(path) = shared_path("models/all-MiniLM-L6-v2/reference_embeddings.json") else {
            return;
        };
        let reference: Reference = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(encoder.dim(), 384);
        assert_eq!(encoder.max_length(), 256, "from sentence_bert_config.json");
        let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
        // One batch (padded to its longest sentence) and one sentence at a time must agree
        // with the reference.
        let batch = encoder.encode_batch(&texts).unwrap();
        assert_eq!(batch.len(), 384 * reference.embeddings.len());
        let mut worst = f32::MAX;
        for (i, (got, want)) in batch.chunks(384).zip(&reference.embeddings).enumerate() {
            let want_norm = dot(want, want).sqrt();
            let cosine = dot(got, want) / want_norm;
            assert!(cosine >= 0.999, "sentence {i}: cosine {cosine}");
            let alone = encoder.encode(texts[i]).unwrap();
            let cosine_alone = dot(&alone, want) / want_norm;
            assert!(cosine_alone >= 0.999, "sentence {i} alone: {cosine_alone}");
            worst = worst.min(cosine).min(cosine_alone);
        }
        eprintln!("minilm: lowest cosine to the reference {worst:.6}");
        let cos = |a: usize, b: usize| {
            dot(
                &batch[a * 384..(a + 1) * 384],
                &batch[b * 384..(b + 1) * 384],
            )
        };
        assert!((cos(0, 1) - 0.6660).abs() < 2e-3, "{}", cos(0, 1));
        assert!((cos(0, 2) - 0.1046).abs() < 2e-3, "{}", cos(0, 2));
    }

    #[test]
    fn minilm_text_retriever_finds_the_described_track() {
        let Some(encoder) = minilm() else { return };
        let encoder: Arc<dyn Encoder> = Arc::new(encoder);
        let mut jazz = Track::new("jazz", "Blue in Green", "Miles Davis");
        jazz.tag_list = vec!["jazz".into(), "trumpet".into(), "calm".into()];
        let mut metal = Track::new("metal", "Master of Puppets", "Metallica");
        metal.tag_list = vec!["heavy metal".into(), "thrash".into()];
        let mut pop = Track::new("pop", "Wild Ones", "Flo Rida");
        pop.tag_list = vec!["dance".into(), "party".into()];
        let catalog = Arc::new(Catalog::new(vec![jazz, metal, pop]).unwrap());
        let fields = [
            TrackField::TrackName,
            TrackField::ArtistName,
            TrackField::TagList,
        ];

        let cache_dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(cache_dir.path());
        let vectors = cache
            .load_or_encode(
                encoder.as_ref(),
                &catalog,
                &fields,
                &EncodeParams::default(),
                None,
            )
            .unwrap();
        assert!(
            cache
                .path_for(encoder.model_id(), &fields, &catalog)
                .is_file()
        );
        let index = IndexParams::Exact
            .build(vectors.ids, vectors.data, vectors.dim)
            .unwrap();
        let renderer =
            QueryRenderer::new(catalog.clone(), QueryRenderParams::current_message_only()).unwrap();
        let retriever = VectorRetriever::text(index, encoder, renderer).unwrap();
        let hits = retriever
            .retrieve(
                &TurnContext::from_message("some heavy thrash metal for the gym"),
                3,
            )
            .unwrap();
        assert_eq!(hits[0].track_id, "metal", "{hits:?}");
        let hits = retriever
            .retrieve(&TurnContext::from_message("calm jazz with a trumpet"), 1)
            .unwrap();
        assert_eq!(hits[0].track_id, "jazz", "{hits:?}");
    }
}
