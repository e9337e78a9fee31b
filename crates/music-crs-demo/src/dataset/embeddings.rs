//! Demo embeddings that carry signal: content kinds mix tag-topic, artist and album vectors
//! with noise in per-kind proportions; `cf-bpr` comes from co-listening in train sessions.

use std::collections::HashMap;

use music_crs_core::{EmbeddingTable, Result};
use rand::Rng;

use super::catalog::CatalogModel;
use super::random::{DemoRng, normalize, unit_vector};
use super::vocab::GENRES;
use crate::CHALLENGE_EMBEDDING_DIMS;

/// How one content kind is composed; the weights are relative.
struct Mix {
    kind: &'static str,
    genre_tags: f32,
    mood_tags: f32,
    instrument_tags: f32,
    era_tag: f32,
    artist: f32,
    album: f32,
    noise: f32,
}

const MIXES: [Mix; 5] = [
    Mix {
        kind: "audio-laion_clap",
        genre_tags: 0.5,
        mood_tags: 0.4,
        instrument_tags: 0.5,
        era_tag: 0.1,
        artist: 0.3,
        album: 0.1,
        noise: 0.35,
    },
    Mix {
        kind: "image-siglip2",
        genre_tags: 0.2,
        mood_tags: 0.1,
        instrument_tags: 0.0,
        era_tag: 0.2,
        artist: 0.3,
        album: 0.7,
        noise: 0.25,
    },
    Mix {
        kind: "attributes-qwen3_embedding_0.6b",
        genre_tags: 0.6,
        mood_tags: 0.5,
        instrument_tags: 0.4,
        era_tag: 0.3,
        artist: 0.1,
        album: 0.0,
        noise: 0.25,
    },
    Mix {
        kind: "lyrics-qwen3_embedding_0.6b",
        genre_tags: 0.2,
        mood_tags: 0.6,
        instrument_tags: 0.0,
        era_tag: 0.1,
        artist: 0.35,
        album: 0.1,
        noise: 0.4,
    },
    Mix {
        kind: "metadata-qwen3_embedding_0.6b",
        genre_tags: 0.3,
        mood_tags: 0.1,
        instrument_tags: 0.0,
        era_tag: 0.3,
        artist: 0.5,
        album: 0.3,
        noise: 0.2,
    },
];

/// The `cf-bpr` kind name.
const CF_KIND: &str = "cf-bpr";

/// Rounds to a 1/256 grid: cosine geometry is unchanged for practical purposes and the
/// parquet files compress far better (the low mantissa bytes become zero).
fn quantize(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = (*x * 256.0).round() / 256.0);
}

fn add_scaled(target: &mut [f32], source: &[f32], scale: f32) {
    target
        .iter_mut()
        .zip(source)
        .for_each(|(t, s)| *t += scale * s);
}

/// Lazily drawn random vectors, keyed by name, in first-use order (deterministic per seed).
struct Topics {
    dim: usize,
    vectors: HashMap<String, Vec<f32>>,
}

impl Topics {
    fn new(dim: usize) -> Self {
        Topics {
            dim,
            vectors: HashMap::new(),
        }
    }

    fn get(&mut self, rng: &mut DemoRng, key: &str) -> &[f32] {
        if !self.vectors.contains_key(key) {
            let v = unit_vector(rng, self.dim);
            self.vectors.insert(key.to_string(), v);
        }
        &self.vectors[key]
    }
}

/// The parameters the embedding builder needs.
pub(crate) struct EmbeddingSpec {
    pub content_dim: usize,
    pub cf_dim: usize,
    /// Each kind at its hub dimension ([`CHALLENGE_EMBEDDING_DIMS`]) instead of the two above.
    pub challenge_dims: bool,
    pub missing_rate: f64,
}

impl EmbeddingSpec {
    fn dim_of(&self, kind: &str) -> usize {
        let uniform = if kind == CF_KIND {
            self.cf_dim
        } else {
            self.content_dim
        };
        if !self.challenge_dims {
            return uniform;
        }
        CHALLENGE_EMBEDDING_DIMS
            .iter()
            .find(|(name, _)| *name == kind)
            .map_or(uniform, |&(_, dim)| dim)
    }
}

/// Track embedding tables (five content kinds, then `cf-bpr`) and the user `cf-bpr` table.
pub(crate) fn build_embeddings(
    rng: &mut DemoRng,
    catalog: &CatalogModel,
    train_sessions: &[Vec<usize>],
    train_users: &[usize],
    user_ids: &[String],
    spec: &EmbeddingSpec,
) -> Result<(Vec<EmbeddingTable>, Vec<EmbeddingTable>)> {
    let track_ids: Vec<String> = catalog.tracks.iter().map(|t| t.track_id.clone()).collect();
    let mut track_tables = Vec::with_capacity(MIXES.len() + 1);
    for mix in &MIXES {
        let dim = spec.dim_of(mix.kind);
        let mut topics = Topics::new(dim);
        let mut rows = Vec::with_capacity(catalog.tracks.len());
        for (index, facts) in catalog.facts.iter().enumerate() {
            let instrumental = mix.kind.starts_with("lyrics") && !facts.has_lyrics;
            if instrumental || rng.random_bool(spec.missing_rate) {
                rows.push((track_ids[index].clone(), None));
                continue;
            }
            let mut v = vec![0.0f32; dim];
            add_scaled(
                &mut v,
                topics.get(rng, GENRES[facts.genre].name),
                mix.genre_tags,
            );
            add_scaled(
                &mut v,
                topics.get(rng, facts.subgenre),
                mix.genre_tags * 0.7,
            );
            let mood_share = mix.mood_tags / facts.moods.len().max(1) as f32;
            for mood in &facts.moods {
                add_scaled(&mut v, topics.get(rng, mood), mood_share);
            }
            let instrument_share = mix.instrument_tags / facts.instruments.len().max(1) as f32;
            for instrument in &facts.instruments {
                add_scaled(&mut v, topics.get(rng, instrument), instrument_share);
            }
            add_scaled(&mut v, topics.get(rng, &facts.era), mix.era_tag);
            add_scaled(
                &mut v,
                topics.get(rng, &format!("artist {}", facts.artist)),
                mix.artist,
            );
            add_scaled(
                &mut v,
                topics.get(rng, &format!("album {}", facts.album)),
                mix.album,
            );
            add_scaled(&mut v, &unit_vector(rng, dim), mix.noise);
            normalize(&mut v);
            quantize(&mut v);
            rows.push((track_ids[index].clone(), Some(v)));
        }
        track_tables.push(EmbeddingTable::new(mix.kind, dim, rows)?);
    }

    let cf_dim = spec.dim_of(CF_KIND);
    // cf-bpr: a base taste vector per track (artist + genre + popularity direction), then
    // each track is pulled towards the tracks it was played with in train sessions.
    let mut topics = Topics::new(cf_dim);
    let popular_direction = unit_vector(rng, cf_dim);
    let base: Vec<Vec<f32>> = catalog
        .facts
        .iter()
        .zip(&catalog.tracks)
        .map(|(facts, track)| {
            let mut v = vec![0.0f32; cf_dim];
            add_scaled(
                &mut v,
                topics.get(rng, &format!("artist {}", facts.artist)),
                0.6,
            );
            add_scaled(&mut v, topics.get(rng, GENRES[facts.genre].name), 0.5);
            let popularity = track.popularity.unwrap_or(0.0) as f32 / 100.0;
            add_scaled(&mut v, &popular_direction, 0.4 * popularity);
            add_scaled(&mut v, &unit_vector(rng, cf_dim), 0.3);
            v
        })
        .collect();
    let mut context = vec![vec![0.0f32; cf_dim]; catalog.tracks.len()];
    let mut plays = vec![0usize; catalog.tracks.len()];
    for session in train_sessions {
        let mut mean = vec![0.0f32; cf_dim];
        for &t in session {
            add_scaled(&mut mean, &base[t], 1.0 / session.len() as f32);
        }
        for &t in session {
            add_scaled(&mut context[t], &mean, 1.0);
            plays[t] += 1;
        }
    }
    let mut cf_rows = Vec::with_capacity(catalog.tracks.len());
    let mut cf_vectors: Vec<Option<Vec<f32>>> = Vec::with_capacity(catalog.tracks.len());
    for index in 0..catalog.tracks.len() {
        // Tracks nobody played in train have no interactions: about half get no vector.
        let vector = if plays[index] == 0 && rng.random_bool(0.5) {
            None
        } else {
            let mut v = base[index].clone();
            if plays[index] > 0 {
                add_scaled(&mut v, &context[index], 1.0 / plays[index] as f32);
            }
            normalize(&mut v);
            quantize(&mut v);
            Some(v)
        };
        cf_vectors.push(vector.clone());
        cf_rows.push((track_ids[index].clone(), vector));
    }
    track_tables.push(EmbeddingTable::new(CF_KIND, cf_dim, cf_rows)?);

    // User cf-bpr: the mean of the cf vectors of the tracks the user played in train; cold
    // users (no train sessions) have none.
    let mut user_sum = vec![vec![0.0f32; cf_dim]; user_ids.len()];
    let mut user_plays = vec![0usize; user_ids.len()];
    for (session, &user) in train_sessions.iter().zip(train_users) {
        for &t in session {
            if let Some(v) = &cf_vectors[t] {
                add_scaled(&mut user_sum[user], v, 1.0);
                user_plays[user] += 1;
            }
        }
    }
    let user_rows = user_ids.iter().enumerate().map(|(u, id)| {
        let vector = (user_plays[u] > 0).then(|| {
            let mut v = user_sum[u].clone();
            normalize(&mut v);
            quantize(&mut v);
            v
        });
        (id.clone(), vector)
    });
    let user_table = EmbeddingTable::new(CF_KIND, cf_dim, user_rows)?;
    Ok((track_tables, vec![user_table]))
}
