//! The [`Encoder`] trait, catalog encoding with progress, and the on-disk embedding cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use music_crs_core::{Catalog, TrackField};

use super::store::{VectorFile, checksum};
use crate::{Error, Result};

/// Turns texts into fixed-size vectors (a sentence encoder).
///
/// Object-safe, `Send + Sync` and batch-first: implementations encode a whole batch at once.
pub trait Encoder: Send + Sync {
    /// A stable identifier of the model and its settings (e.g. directory or hub id plus
    /// pooling): part of embedding cache keys, so it must change when the vectors would.
    fn model_id(&self) -> &str;

    /// Dimensions of every vector.
    fn dim(&self) -> usize;

    /// Encodes `texts` into a row-major matrix of `texts.len() * dim()` values, one row per
    /// text in input order.
    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<f32>>;

    /// Encodes one text.
    fn encode(&self, text: &str) -> Result<Vec<f32>> {
        self.encode_batch(&[text])
    }

    /// How many batches this encoder runs best side by side, each on its own one-thread pool
    /// ([`EncodeParams::workers`] 0 asks it): 1 (the default) for an encoder that spreads one
    /// batch over the pool itself.
    fn concurrent_batches(&self) -> usize {
        1
    }
}

macro_rules! forward_encoder {
    ($($ty:ty),*) => {$(
        impl<E: Encoder + ?Sized> Encoder for $ty {
            fn model_id(&self) -> &str {
                (**self).model_id()
            }
            fn dim(&self) -> usize {
                (**self).dim()
            }
            fn encode_batch(&self, texts: &[&str]) -> Result<Vec<f32>> {
                (**self).encode_batch(texts)
            }
            fn encode(&self, text: &str) -> Result<Vec<f32>> {
                (**self).encode(text)
            }
            fn concurrent_batches(&self) -> usize {
                (**self).concurrent_batches()
            }
        }
    )*};
}

forward_encoder!(&E, Box<E>, Arc<E>);

/// Default texts per encoder call when encoding a corpus: on two cores MiniLM encodes the
/// sample catalog ~20% faster in batches of 64 than of 32 (bigger matrix products).
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// How a corpus is encoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EncodeParams {
    /// Texts per encoder call (at least 1).
    pub batch_size: usize,
    /// Batches encoded at once, each on its own one-thread pool; 0 (the default) lets the
    /// encoder choose ([`Encoder::concurrent_batches`]), 1 is one batch at a time with the
    /// whole pool.
    pub workers: usize,
}

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            batch_size: DEFAULT_BATCH_SIZE,
            workers: 0,
        }
    }
}

impl EncodeParams {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidParameter {
                name: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The workers to start for `batches` batches: never more than there are batches.
    fn workers_for(&self, encoder: &dyn Encoder, batches: usize) -> usize {
        let wanted = match self.workers {
            0 => encoder.concurrent_batches(),
            n => n,
        };
        wanted.min(batches).max(1)
    }
}

/// A progress callback: `(texts done, texts in total)`, called after every batch (the
/// binary drives an indicatif bar with it).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Encodes many texts in batches, returning the row-major matrix in input order.
///
/// Texts are batched by length so that a batch pads little; progress goes to `tracing`
/// (debug per batch, info at the end) and to `progress` when given.
///
/// With [`EncodeParams::workers`] above 1, that many batches are encoded at once, each worker on
/// its own one-thread rayon pool, taking the next batch (shortest first) when it finishes one.
/// A small model's elementwise operations run on one thread however many the pool has, so on
/// a CPU whole batches side by side keep every core busy where one batch at a time leaves them
/// waiting at each operation. Each batch's vectors are the same whichever worker encodes it.
pub fn encode_texts(
    encoder: &dyn Encoder,
    texts: &[&str],
    params: &EncodeParams,
    progress: Option<Progress<'_>>,
) -> Result<Vec<f32>> {
    params.validate()?;
    let dim = encoder.dim();
    let started = std::time::Instant::now();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let batches: Vec<&[usize]> = order.chunks(params.batch_size).collect();
    let workers = params.workers_for(encoder, batches.len());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let out = Mutex::new(vec![0f32; texts.len() * dim]);

    // Takes batches until none is left or one fails; the first error stops every worker.
    let work = || -> Result<()> {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(batch) = batches.get(index) else {
                return Ok(());
            };
            let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            let vectors = encoder.encode_batch(&batch_texts).inspect_err(|_| {
                next.store(batches.len(), Ordering::Relaxed);
            })?;
            if vectors.len() != batch.len() * dim {
                next.store(batches.len(), Ordering::Relaxed);
                return Err(Error::DimensionMismatch {
                    what: format!(
                        "encoder {} output for {} texts",
                        encoder.model_id(),
                        batch.len()
                    ),
                    expected: batch.len() * dim,
                    found: vectors.len(),
                });
            }
            {
                let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (&i, row) in batch.iter().zip(vectors.chunks_exact(dim)) {
                    out[i * dim..(i + 1) * dim].copy_from_slice(row);
                }
            }
            let done = done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
            tracing::debug!(done, total = texts.len(), "encoded batch");
            if let Some(progress) = progress {
                progress(done, texts.len());
            }
        }
    };
    if workers <= 1 {
        work()?;
    } else {
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(1)
                            .build()
                            .map_err(|e| Error::Model {
                                model: encoder.model_id().to_string(),
                                reason: format!("cannot start an encoding worker: {e}"),
                            })?;
                        pool.install(work)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        results.into_iter().collect::<Result<()>>()?;
    }
    tracing::info!(
        texts = texts.len(),
        model = encoder.model_id(),
        workers,
        seconds = started.elapsed().as_secs_f64(),
        "encoded texts"
    );
    Ok(out
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// The cache key of catalog embeddings: the model and the document fields.
pub fn catalog_key(model_id: &str, fields: &[TrackField]) -> String {
    let fields: Vec<&str> = fields.iter().map(|f| f.column_name()).collect();
    format!("model={model_id};fields={}", fields.join(","))
}

/// Encodes every catalog track's document text (`field: value` lines of `fields`, as
/// [`music_crs_core::Track::document_text`] writes them), in catalog order.
pub fn encode_catalog(
    encoder: &dyn Encoder,
    catalog: &Catalog,
    fields: &[TrackField],
    params: &EncodeParams,
    progress: Option<Progress<'_>>,
) -> Result<VectorFile> {
    let docs: Vec<String> = catalog
        .tracks()
        .iter()
        .map(|t| t.document_text(fields))
        .collect();
    let texts: Vec<&str> = docs.iter().map(String::as_str).collect();
    let data = encode_texts(encoder, &texts, params, progress)?;
    Ok(VectorFile {
        key: catalog_key(encoder.model_id(), fields),
        dim: encoder.dim(),
        ids: catalog
            .tracks()
            .iter()
            .map(|t| t.track_id.clone())
            .collect(),
        data,
    })
}

/// A directory of catalog embeddings, one file per (model, fields, catalog ids).
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddingCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or will hold) these embeddings: a readable model slug and a hash
    /// of the model id, the fields and the catalog ids.
    pub fn path_for(&self, model_id: &str, fields: &[TrackField], catalog: &Catalog) -> PathBuf {
        let mut keyed = catalog_key(model_id, fields).into_bytes();
        for track in catalog.tracks() {
            keyed.push(b'\n');
            keyed.extend_from_slice(track.track_id.as_bytes());
        }
        let slug: String = model_id
            .rsplit(['/', '\\'])
            .find(|part| !part.is_empty())
            .unwrap_or("model")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        self.dir
            .join(format!("{slug}-{:016x}.vec", checksum(&keyed)))
    }

    /// The catalog embeddings: read from the cache when present (a corrupt or mismatching
    /// file is an error naming it; delete it to re-encode), else encoded and written.
    pub fn load_or_encode(
        &self,
        encoder: &dyn Encoder,
        catalog: &Catalog,
        fields: &[TrackField],
        params: &EncodeParams,
        progress: Option<Progress<'_>>,
    ) -> Result<VectorFile> {
        let path = self.path_for(encoder.model_id(), fields, catalog);
        if path.exists() {
            let file = VectorFile::load(&path)?;
            let expected_key = catalog_key(encoder.model_id(), fields);
            let same_ids = file.ids.len() == catalog.len()
                && file
                    .ids
                    .iter()
                    .zip(catalog.tracks())
                    .all(|(id, t)| *id == t.track_id);
            if file.key != expected_key || file.dim != encoder.dim() || !same_ids {
                return Err(Error::CorruptFile {
                    path,
                    reason: format!(
                        "holds {:?} ({} rows of {}), not {expected_key:?} for this catalog",
                        file.key,
                        file.ids.len(),
                        file.dim
                    ),
                });
            }
            tracing::info!(path = %path.display(), rows = file.ids.len(), "embedding cache hit");
            return Ok(file);
        }
        let file = encode_catalog(encoder, catalog, fields, params, progress)?;
        file.save(&path)?;
        tracing::info!(path = %path.display(), "embedding cache written");
        Ok(file)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use music_crs_core::Track;

    use super::*;

    /// A deterministic toy encoder: letter counts of a few vowels plus length.
    pub(crate) struct CountingEncoder {
        pub calls: AtomicUsize,
    }

    impl Encoder for CountingEncoder {
        fn model_id(&self) -> &str {
            "test/counting"
        }
        fn dim(&self) -> usize {
            4
        }
        fn encode_batch(&self, texts: &[&str]) -> Result<Vec<f32>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(texts
                .iter()
                .flat_map(|t| {
                    let count = |c| t.matches(c).count() as f32;
                    [count('a'), count('e'), count('o'), t.len() as f32 / 10.0]
                })
                .collect())
        }
    }

    fn catalog() -> Catalog {
        Catalog::new(
            (0..10)
                .map(|i| Track::new(format!("t{i}"), "a".repeat(i + 1), "Bob"))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn batches_keep_input_order_and_report_progress() {
        let encoder = CountingEncoder {
            calls: AtomicUsize::new(0),
        };
        let texts = ["aaaa", "e", "oo", "ae"];
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |done: usize, total: usize| seen.lock().unwrap().push((done, total));
        let out = encode_texts(
            &encoder,
            &texts,
            &EncodeParams {
                batch_size: 3,
                workers: 1,
            },
            Some(&progress),
        )
        .unwrap();
        assert_eq!(out, encoder.encode_batch(&texts).unwrap());
        assert_eq!(*seen.lock().unwrap(), vec![(3, 4), (4, 4)]);
        assert!(
            encode_texts(
                &encoder,
                &texts,
                &EncodeParams {
                    batch_size: 0,
                    ..EncodeParams::default()
                },
                None
            )
            .is_err()
        );
    }

    /// Fails on any text that contains "bad"; otherwise encodes as [`CountingEncoder`].
    struct FailingEncoder(CountingEncoder);

    impl Encoder for FailingEncoder {
        fn model_id(&self) -> &str {
            "test/failing"
        }
        fn dim(&self) -> usize {
            4
        }
        fn encode_batch(&self, texts: &[&str]) -> Result<Vec<f32>> {
            if texts.iter().any(|t| t.contains("bad")) {
                return Err(Error::Model {
                    model: "test/failing".into(),
                    reason: "a bad text".into(),
                });
            }
            self.0.encode_batch(texts)
        }
    }

    #[test]
    fn workers_side_by_side_give_the_one_at_a_time_matrix() {
        let encoder = CountingEncoder {
            calls: AtomicUsize::new(0),
        };
        let owned: Vec<String> = (0..103)
            .map(|i| "aeo".repeat(i % 7) + &"e".repeat(i % 5))
            .collect();
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        let one = encode_texts(
            &encoder,
            &texts,
            &EncodeParams {
                batch_size: 4,
                workers: 1,
            },
            None,
        )
        .unwrap();
        let batches = encoder.calls.swap(0, Ordering::SeqCst);
        assert_eq!(batches, 26);
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |done: usize, total: usize| seen.lock().unwrap().push((done, total));
        let three = encode_texts(
            &encoder,
            &texts,
            &EncodeParams {
                batch_size: 4,
                workers: 3,
            },
            Some(&progress),
        )
        .unwrap();
        assert_eq!(three, one);
        assert_eq!(
            encoder.calls.load(Ordering::SeqCst),
            batches,
            "each batch once"
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen.len(), batches);
        assert_eq!(seen.last(), Some(&(103, 103)));
    }

    #[test]
    fn a_failing_batch_stops_every_worker_with_its_error() {
        let encoder = FailingEncoder(CountingEncoder {
            calls: AtomicUsize::new(0),
        });
        let mut texts = vec!["aa"; 40];
        texts[17] = "a bad one";
        for workers in [1, 2, 4] {
            let err = encode_texts(
                &encoder,
                &texts,
                &EncodeParams {
                    batch_size: 2,
                    workers,
                },
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("a bad text"), "{workers} workers: {err}");
        }
    }

    #[test]
    fn cache_reuses_and_keys_by_fields_and_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(dir.path());
        let encoder = CountingEncoder {
            calls: AtomicUsize::new(0),
        };
        let catalog = catalog();
        let fields = [TrackField::TrackName, TrackField::ArtistName];
        let params = EncodeParams::default();
        let first = cache
            .load_or_encode(&encoder, &catalog, &fields, &params, None)
            .unwrap();
        let calls = encoder.calls.load(Ordering::SeqCst);
        let second = cache
            .load_or_encode(&encoder, &catalog, &fields, &params, None)
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(encoder.calls.load(Ordering::SeqCst), calls, "cache hit");
        assert_ne!(
            cache.path_for("test/counting", &fields, &catalog),
            cache.path_for("test/counting", &fields[..1], &catalog)
        );
        let smaller = Catalog::new(catalog.tracks()[..5].to_vec()).unwrap();
        assert_ne!(
            cache.path_for("test/counting", &fields, &catalog),
            cache.path_for("test/counting", &fields, &smaller)
        );

        let path = cache.path_for("test/counting", &fields, &catalog);
        std::fs::write(&path, b"garbage").unwrap();
        let err = cache
            .load_or_encode(&encoder, &catalog, &fields, &params, None)
            .unwrap_err();
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
}
