//! The ANN benchmark's data, shared by `benches/ann.rs` and the dense examples: the `.npy`
//! files written by `../shared/bench/ann_peer.py make DIR`, clustered vectors generated like
//! them, and recall.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Row-major vectors and queries of one dimension.
pub struct Data {
    pub dim: usize,
    pub base: Vec<f32>,
    pub queries: Vec<f32>,
}

impl Data {
    pub fn rows(&self) -> usize {
        self.base.len() / self.dim
    }

    pub fn query_count(&self) -> usize {
        self.queries.len() / self.dim
    }
}

/// One `.npy` array: shape, numpy type string (`<f4`, `<i8`) and raw little-endian values.
struct Npy {
    shape: Vec<usize>,
    descr: String,
    raw: Vec<u8>,
}

fn read_npy(path: &Path) -> Result<Npy> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    ensure!(
        bytes.len() > 10 && bytes.starts_with(b"\x93NUMPY"),
        "{} is not a .npy file",
        path.display()
    );
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ if bytes.len() > 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => bail!("{} is truncated", path.display()),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .with_context(|| format!("{}: bad header", path.display()))?;
    ensure!(
        !header.contains("'fortran_order': True"),
        "{}: Fortran order is not supported",
        path.display()
    );
    let field = |key: &str, end: char| {
        header
            .split(key)
            .nth(1)
            .and_then(|rest| rest.split(end).next())
            .with_context(|| format!("{}: no {key} in the header", path.display()))
    };
    let descr = field("'descr': '", '\'')?.to_string();
    let shape = field("'shape': (", ')')?
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("{}: bad shape", path.display()))?;
    let raw = bytes[start + header_len..].to_vec();
    let width = match descr.as_str() {
        "<f4" => 4,
        "<i8" => 8,
        other => bail!("{}: type {other}, expected <f4 or <i8", path.display()),
    };
    ensure!(
        shape.len() == 2 && raw.len() == shape[0] * shape[1] * width,
        "{}: shape {shape:?} does not match {} bytes",
        path.display(),
        raw.len()
    );
    Ok(Npy { shape, descr, raw })
}

fn f32s(npy: &Npy, path: &Path) -> Result<Vec<f32>> {
    ensure!(npy.descr == "<f4", "{}: expected <f4", path.display());
    Ok(npy
        .raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The files `ann_peer.py make DIR` writes.
pub const PEER_FILES: [&str; 3] = ["base.npy", "queries.npy", "exact_top20.npy"];

/// Reads `base.npy`, `queries.npy` and `exact_top20.npy` (numpy's exact top 20 per query).
pub fn load_peer_data(dir: &Path) -> Result<(Data, Vec<Vec<usize>>)> {
    let paths = PEER_FILES.map(|name| dir.join(name));
    let [base, queries, truth] = [&paths[0], &paths[1], &paths[2]].map(|p| read_npy(p));
    let (base, queries, truth) = (base?, queries?, truth?);
    ensure!(
        base.shape[1] == queries.shape[1],
        "base and queries differ in dimension"
    );
    ensure!(truth.descr == "<i8", "{}: expected <i8", paths[2].display());
    ensure!(
        truth.shape[0] == queries.shape[0],
        "{} has {} rows for {} queries",
        paths[2].display(),
        truth.shape[0],
        queries.shape[0]
    );
    let width = truth.shape[1];
    let truth = truth
        .raw
        .chunks_exact(8 * width)
        .map(|row| {
            row.chunks_exact(8)
                .map(|c| {
                    let id = i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                    usize::try_from(id).context("negative id in the exact top 20")
                })
                .collect()
        })
        .collect::<Result<Vec<Vec<usize>>>>()?;
    Ok((
        Data {
            dim: base.shape[1],
            base: f32s(&base, &paths[0])?,
            queries: f32s(&queries, &paths[1])?,
        },
        truth,
    ))
}

/// Unit vectors around 200 Gaussian centres (spread 0.35 per dimension), like the peer's
/// generator (not bit-identical): `rows` base vectors and `queries` queries.
pub fn generate(rows: usize, queries: usize, dim: usize, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gauss = move || {
        // Box-Muller: rand's normal distribution lives in rand_distr, not a dependency here.
        let u: f32 = rng.random_range(f32::EPSILON..1.0);
        let v: f32 = rng.random();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    };
    let centres: Vec<f32> = (0..200 * dim).map(|_| gauss()).collect();
    let mut pick = ChaCha8Rng::seed_from_u64(seed + 1);
    let mut sample = |count: usize| {
        let mut out = Vec::with_capacity(count * dim);
        for _ in 0..count {
            let c = pick.random_range(0..200);
            let start = out.len();
            out.extend((0..dim).map(|d| centres[c * dim + d] + 0.35 * gauss()));
            let v = &mut out[start..];
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
        }
        out
    };
    let base = sample(rows);
    let queries = sample(queries);
    Data { dim, base, queries }
}

/// Mean share of each truth list found in the matching result list (recall@k for k = the
/// truth lists' length).
pub fn recall(got: &[Vec<usize>], truth: &[Vec<usize>]) -> f64 {
    let wanted: usize = truth.iter().map(Vec::len).sum();
    let hits: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| t.iter().filter(|row| g.contains(row)).count())
        .sum();
    hits as f64 / wanted.max(1) as f64
}

/// The rows of each hit list.
pub fn rows(hits: Vec<Vec<music_crs_retrieval::dense::Neighbour>>) -> Vec<Vec<usize>> {
    hits.into_iter()
        .map(|h| h.into_iter().map(|n| n.row).collect())
        .collect()
}
