//! Our forward pass against candle's `quantized_llama` on the same weights.

use std::io::Cursor;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama;
use music_crs_core::shared::shared_path;

use super::{FastLlama, KvCache};
use crate::test_gguf::{llama_gguf_sized, tiny_llama_gguf};

/// A GGUF rewritten with every matrix (2-D tensor) in `dtype`, as `requantized` does.
fn with_matrices_in(bytes: &[u8], dtype: GgmlDType) -> Vec<u8> {
    let mut reader = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut tensors = Vec::new();
    for name in content.tensor_infos.keys() {
        let tensor = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
        let tensor = if tensor.shape().rank() == 2 {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu).unwrap(), dtype).unwrap()
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let metadata: Vec<_> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<_> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &refs).unwrap();
    out.into_inner()
}

struct Pair {
    ours: FastLlama,
    candle: quantized_llama::ModelWeights,
}

fn load_both(bytes: &[u8]) -> Pair {
    load_each(bytes, bytes)
}

/// Our model of a GGUF file's bytes (Q4_1 kept native), rotary tables for 512 positions.
fn ours_from(bytes: &[u8]) -> FastLlama {
    let mut reader = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    FastLlama::from_gguf(&content, &mut reader, 512, true).unwrap()
}

/// Ours from `ours`, candle's from `candle`.
fn load_each(ours: &[u8], candle: &[u8]) -> Pair {
    let ours = ours_from(ours);
    let mut reader = Cursor::new(candle);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let candle =
        quantized_llama::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
    Pair { ours, candle }
}

/// Reads `steps` (chunks of tokens, one after another) with both models; returns the
/// largest logit difference over the steps relative to the largest logit.
fn largest_difference(pair: &mut Pair, steps: &[&[u32]]) -> f32 {
    let mut cache: KvCache = pair.ours.empty_cache();
    pair.candle.clear_kv_cache();
    let mut position = 0;
    let mut worst = 0f32;
    for tokens in steps {
        let ours = pair.ours.forward(tokens, position, &mut cache).unwrap();
        let input = Tensor::new(*tokens, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let theirs = pair
            .candle
            .forward(&input, position)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ours.len(), theirs.len());
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = ours
            .iter()
            .zip(&theirs)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        worst = worst.max(diff / scale);
        position += tokens.len();
    }
    worst
}

const TINY_STEPS: &[&[u32]] = &[&[1, 40, 7, 200, 33, 90, 12], &[5, 6, 250], &[17], &[99]];

#[test]
fn tiny_f32_model_matches_candle() {
    let mut pair = load_both(&tiny_llama_gguf().bytes());
    let diff = largest_difference(&mut pair, TINY_STEPS);
    assert!(diff < 1e-5, "relative logit difference {diff}");
}

#[test]
fn tiny_q8_0_model_matches_candle() {
    let mut pair = load_both(&with_matrices_in(
        &tiny_llama_gguf().bytes(),
        GgmlDType::Q8_0,
    ));
    let diff = largest_difference(&mut pair, TINY_STEPS);
    assert!(diff < 1e-4, "relative logit difference {diff}");
}

#[test]
fn tiny_q4_1_model_matches_candle() {
    // candle's Q4_1 kernel needs an even number of blocks per row (this model has one), so
    // it reads them widened to Q8_0, as the generator handed them to it.
    let q4 = with_matrices_in(&tiny_llama_gguf().bytes(), GgmlDType::Q4_1);
    for (step, (to_candle, ours_off, candle_off)) in three_way(&q4, TINY_STEPS).0.iter().enumerate()
    {
        // A random model of 32 dimensions: few values per dot product, so rounding shows.
        println!("step {step}: {to_candle} {ours_off} {candle_off}");
        assert!(*to_candle < 0.15, "step {step}: {to_candle}");
        assert!(*ours_off < 0.04, "step {step}: {ours_off}");
        assert!(
            *ours_off <= candle_off * 1.2,
            "step {step}: {ours_off} vs {candle_off}"
        );
    }
}

#[test]
fn q4_1_blocks_dequantize_as_candle_does() {
    let values: Vec<f32> = (0..3 * 64)
        .map(|i| ((i * 7 % 23) as f32 - 9.0) * 0.05)
        .collect();
    let tensor = Tensor::from_vec(values, (3, 64), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&tensor, GgmlDType::Q4_1).unwrap();
    let theirs = q
        .dequantize(&Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let ours = super::Q4Matrix::from_ggml_blocks(3, 64, &q.data().unwrap()).unwrap();
    let mut row = vec![0f32; 64];
    for (r, want) in theirs.iter().enumerate() {
        ours.dequantize_row(r, &mut row);
        assert_eq!(&row, want);
    }
}

/// Our model of the tiny test GGUF with its matrices in `dtype`.
fn tiny_ours(dtype: GgmlDType) -> FastLlama {
    ours_from(&with_matrices_in(&tiny_llama_gguf().bytes(), dtype))
}

/// `count` token ids inside the tiny model's vocabulary, `step` apart (modulo 250).
fn spread_tokens(count: usize, step: usize) -> Vec<u32> {
    (0..count).map(|i| (i * step % 250) as u32 + 1).collect()
}

#[test]
fn a_cloned_cache_reads_on_independently() {
    let model = &tiny_ours(GgmlDType::Q8_0);
    let mut cache = model.empty_cache();
    model.forward(&[1, 40, 7], 0, &mut cache).unwrap();
    let saved = cache.clone();
    let first = model.forward(&[9], 3, &mut cache).unwrap();
    let mut again = saved.clone();
    let second = model.forward(&[9], 3, &mut again).unwrap();
    assert_eq!(first, second);
    // The saved copy still holds three positions; reading elsewhere is an error.
    assert_eq!(saved.len, 3);
    assert!(model.forward(&[9], 5, &mut saved.clone()).is_err());
    assert!(model.forward(&[300], 3, &mut saved.clone()).is_err());
}

#[test]
fn a_row_reads_the_same_in_any_pass_and_after_clones_at_any_position() {
    let model = &tiny_ours(GgmlDType::Q8_0);
    let tokens = spread_tokens(70, 37);
    let mut one_pass = model.empty_cache();
    let last = model.forward(&tokens, 0, &mut one_pass).unwrap();
    // One token at a time; the second cache is cloned now and then (its next append starts
    // a new chunk, mid-block), and read in two sequences at once with the first.
    let mut alone = model.empty_cache();
    let mut cloned = model.empty_cache();
    let mut kept = Vec::new();
    for (position, &token) in tokens.iter().enumerate() {
        if position % 7 == 3 {
            kept.push(cloned.clone());
        }
        let mut both = model
            .forward_many(&[token, token], &[1, 1], &mut [&mut alone, &mut cloned])
            .unwrap();
        assert_eq!(both[0], both[1], "{position}");
        if position + 1 == tokens.len() {
            assert_eq!(both.pop().unwrap(), last);
        }
    }
    // A kept clone reads on as the cache it was cloned from did.
    let kept = &mut kept[3];
    let position = kept.len;
    let mut again = model.empty_cache();
    model.forward(&tokens[..position], 0, &mut again).unwrap();
    let rest = &tokens[position..];
    assert_eq!(
        model.forward(rest, position, kept).unwrap(),
        model.forward(rest, position, &mut again).unwrap()
    );
}

#[test]
fn reading_without_logits_leaves_the_cache_forward_leaves() {
    let model = &tiny_ours(GgmlDType::Q4_1);
    let tokens = spread_tokens(40, 13);
    let (chunk, rest) = tokens.split_at(23);
    let mut forwarded = model.empty_cache();
    model.forward(chunk, 0, &mut forwarded).unwrap();
    let mut read = model.empty_cache();
    model.read(chunk, 0, &mut read).unwrap();
    assert_eq!(read.len, chunk.len());
    assert_eq!(
        model.forward(rest, chunk.len(), &mut read).unwrap(),
        model.forward(rest, chunk.len(), &mut forwarded).unwrap()
    );
    // As `forward`, it reads only at the cache's end.
    assert!(model.read(rest, 3, &mut read).is_err());
}

#[test]
fn a_planned_cache_holds_its_positions_without_growing_and_reads_the_same() {
    let model = &tiny_ours(GgmlDType::Q8_0);
    let tokens = spread_tokens(50, 29);
    let (prompt, reply) = tokens.split_at(21);
    let mut shared = model.empty_cache();
    model.read(&prompt[..9], 0, &mut shared).unwrap();
    // A clone of a shared cache writes a chunk of its own from position 9 on.
    let mut planned = shared.clone();
    planned.plan(tokens.len());
    let mut unplanned = shared.clone();
    let logits = |cache: &mut KvCache| {
        let mut all = vec![model.forward(&prompt[9..], 9, cache).unwrap()];
        for (offset, &token) in reply.iter().enumerate() {
            all.push(
                model
                    .forward(&[token], prompt.len() + offset, cache)
                    .unwrap(),
            );
        }
        all
    };
    let capacities = |chunk: &super::Chunk| -> Vec<(usize, usize)> {
        (chunk.keys.iter().zip(&chunk.values))
            .map(|(keys, values)| (keys.capacity(), values.capacity()))
            .collect()
    };
    let first_planned = {
        let mut probe = planned.clone();
        model.forward(&prompt[9..], 9, &mut probe).unwrap();
        capacities(probe.layers[0].last().unwrap())
    };
    assert_eq!(logits(&mut planned), logits(&mut unplanned));
    let chunk = &planned.layers[0].last().unwrap();
    assert_eq!(chunk.start + chunk.len, tokens.len());
    // The chunk took room for every planned position when it started: it never grew.
    assert_eq!(capacities(chunk), first_planned);
    let head_dim = chunk.values[0].len() / chunk.len;
    for values in &chunk.values {
        assert!(values.capacity() >= (tokens.len() - chunk.start) * head_dim);
    }
}

#[test]
fn passes_of_any_sizes_on_one_thread_give_a_fresh_threads_bits() {
    // A thread's buffers are reused from pass to pass, grown but never cleared: a pass
    // after larger and smaller ones must read nothing they left.
    let model = &tiny_ours(GgmlDType::Q4_1);
    let tokens = spread_tokens(64, 41);
    let run = |sizes: &[usize]| {
        let mut cache = model.empty_cache();
        let mut position = 0;
        let mut logits = Vec::new();
        for &size in sizes {
            let chunk = &tokens[position..position + size];
            logits.push(model.forward(chunk, position, &mut cache).unwrap());
            position += size;
        }
        logits
    };
    let sizes = [40, 1, 7, 1, 15];
    let fresh = std::thread::scope(|scope| scope.spawn(|| run(&sizes)).join().unwrap());
    // This thread first runs other passes of other sizes.
    run(&[64]);
    run(&[2, 3]);
    assert_eq!(run(&sizes), fresh);
}

/// The logits of a prompt read in one pass and then of tokens read one by one, from the
/// calling thread.
fn prompt_then_tokens(model: &FastLlama, prompt: &[u32], tokens: &[u32]) -> Vec<Vec<f32>> {
    let mut cache = model.empty_cache();
    let mut logits = vec![model.forward(prompt, 0, &mut cache).unwrap()];
    for (offset, &token) in tokens.iter().enumerate() {
        logits.push(
            model
                .forward(&[token], prompt.len() + offset, &mut cache)
                .unwrap(),
        );
    }
    logits
}

#[test]
fn the_team_rayon_and_one_thread_give_the_same_bits() {
    // Big enough for every product and attention to split over threads, on the team (this
    // thread is no rayon worker) and on rayon's pools (prompt reading's).
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let bytes = with_matrices_in(&llama_gguf_sized(256, 512).bytes(), dtype);
        let model = ours_from(&bytes);
        let prompt = spread_tokens(300, 37);
        let tokens = spread_tokens(6, 11);
        if super::team::here().spinning() {
            let team = prompt_then_tokens(&model, &prompt, &tokens);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let pooled = pool.install(|| prompt_then_tokens(&model, &prompt, &tokens));
                assert_eq!(team, pooled, "{dtype:?} on {threads} rayon threads");
            }
        } else {
            println!("skipped: rayon has one thread here, so the team never runs");
        }
    }
}

/// Where a child run of [`every_simd_level_gives_the_same_logits`] writes its logits.
const LOGITS_OUT: &str = "MUSIC_CRS_TEST_LOGITS_OUT";

#[test]
fn every_simd_level_gives_the_same_logits() {
    // The logits' bits of the tiny model in each weight type, and of SmolLM2-135M (Q4_1):
    // a prompt read in one pass (attention tiles of several rows), then tokens one by one.
    let logits = || -> Vec<u8> {
        let mut models: Vec<FastLlama> = [GgmlDType::F32, GgmlDType::Q8_0, GgmlDType::Q4_1]
            .into_iter()
            .map(tiny_ours)
            .collect();
        if let Some(path) =
            shared_path("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        {
            models.push(ours_from(&fs_err::read(path).unwrap()));
        }
        let mut bytes = Vec::new();
        for model in &models {
            let steps = prompt_then_tokens(model, &spread_tokens(45, 29), &spread_tokens(6, 13));
            bytes.extend(steps.iter().flatten().flat_map(|v| v.to_le_bytes()));
        }
        bytes
    };
    if let Some(out) = std::env::var_os(LOGITS_OUT) {
        fs_err::write(out, logits()).unwrap();
        return;
    }
    // The kernels' level is fixed once per process, so each level runs in a child: this
    // test binary again, this test alone, under `MUSIC_CRS_SIMD`. A level the CPU lacks
    // runs as the widest it has (the comparison still holds, it only proves less). The
    // plain loops' child also hides AVX2 and FMA from glibc, whose `sinf`/`cosf` (the
    // rotary tables) pick a variant by them: as on a CPU without either.
    let this = std::env::current_exe().unwrap();
    let name = "llama::fast::tests::every_simd_level_gives_the_same_logits";
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for level in ["avx512", "avx2", "scalar"] {
        let out = dir.path().join(level);
        let mut child = std::process::Command::new(&this);
        if level == "scalar" {
            child.env("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2,-FMA");
        }
        let status = child
            .args([name, "--exact", "--test-threads=1"])
            .env(super::vector::SIMD_VARIABLE, level)
            .env(LOGITS_OUT, &out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the child run at {level} failed");
        let bytes = fs_err::read(&out).unwrap();
        assert!(!bytes.is_empty());
        runs.push((level, bytes));
    }
    println!("this CPU runs up to {:?}", super::vector::Simd::detect());
    for (level, bytes) in &runs[1..] {
        assert!(
            *bytes == runs[0].1,
            "the logits at {level} differ from {}'s",
            runs[0].0
        );
    }
}

/// Largest difference between two logit vectors relative to the largest of `reference`.
fn relative_difference(ours: &[f32], reference: &[f32]) -> f32 {
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// Logits of candle's model after each step.
fn candle_logits(model: &mut quantized_llama::ModelWeights, steps: &[&[u32]]) -> Vec<Vec<f32>> {
    let mut position = 0;
    steps
        .iter()
        .map(|tokens| {
            let input = Tensor::new(*tokens, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let logits = model.forward(&input, position).unwrap();
            position += tokens.len();
            logits.squeeze(0).unwrap().to_vec1::<f32>().unwrap()
        })
        .collect()
}

#[test]
fn smollm2_logits_match_candle() {
    let Some(path) = shared_path("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    else {
        return;
    };
    let prompt: Vec<u32> = (0..100).map(|i| 100 + (i * 37) % 5000).collect();
    // A prompt in two chunks, then tokens one by one.
    let mut steps: Vec<&[u32]> = vec![&prompt[..64], &prompt[64..70]];
    steps.extend(prompt[70..].chunks(1));
    let original = fs_err::read(&path).unwrap();
    let (differences, agreement) = three_way(&original, &steps);
    // The most likely next token, as the f32 weights pick it: ours picks it about as often
    // as candle does (these made-up token sequences leave the top token unsure at times).
    println!(
        "top token as the f32 weights': ours {} of {}, candle {}",
        agreement.0,
        steps.len(),
        agreement.1
    );
    assert!(
        agreement.0 + 2 >= agreement.1 && agreement.0 * 10 >= steps.len() * 8,
        "{agreement:?}"
    );
    for (step, (to_candle, ours_off, candle_off)) in differences.iter().enumerate() {
        println!(
            "step {step}: ours vs candle {to_candle:.4}; from f32 weights: ours {ours_off:.4}, candle {candle_off:.4}"
        );
        assert!(*to_candle < 0.1, "step {step}: {to_candle}");
        assert!(*ours_off < 0.06, "step {step}: {ours_off}");
    }
    // On average ours is the closer one to the f32 weights (step by step either may be).
    let mean = |pick: fn(&(f32, f32, f32)) -> f32| {
        differences.iter().map(pick).sum::<f32>() / differences.len() as f32
    };
    let (ours, candle) = (mean(|d| d.1), mean(|d| d.2));
    println!("mean difference from f32 weights: ours {ours:.4}, candle {candle:.4}");
    assert!(ours <= candle, "{ours} vs {candle}");
}

/// Per step, relative logit differences: ours (reading `file` as it is) to candle (reading
/// it widened to Q8_0, as the generator handed it), and each to candle on the file's weights
/// in f32 (no quantized activations: the reference). candle's widening rounds every weight
/// again, and it quantizes activations per 256 values for products of k % 256 == 0 (its
/// repacked kernels); ggml and we per 32.
/// Per step: (ours to candle, ours to the reference, candle to the reference).
type Differences = Vec<(f32, f32, f32)>;

/// Also: at how many steps ours and candle's pick the reference's most likely token.
fn three_way(file: &[u8], steps: &[&[u32]]) -> (Differences, (usize, usize)) {
    let widened = with_matrices_in(file, GgmlDType::Q8_0);
    let mut pair = load_each(file, &widened);
    let f32_bytes = with_matrices_in(file, GgmlDType::F32);
    let mut reader = Cursor::new(&f32_bytes[..]);
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut exact =
        quantized_llama::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
    let reference = candle_logits(&mut exact, steps);
    let theirs = candle_logits(&mut pair.candle, steps);
    let mut cache = pair.ours.empty_cache();
    let mut position = 0;
    let mut out = Vec::new();
    let argmax = |v: &[f32]| {
        (0..v.len())
            .max_by(|&a, &b| v[a].total_cmp(&v[b]))
            .unwrap_or(0)
    };
    let mut agreement = (0, 0);
    for (step, tokens) in steps.iter().enumerate() {
        let ours = pair.ours.forward(tokens, position, &mut cache).unwrap();
        position += tokens.len();
        let top = argmax(&reference[step]);
        agreement.0 += usize::from(argmax(&ours) == top);
        agreement.1 += usize::from(argmax(&theirs[step]) == top);
        out.push((
            relative_difference(&ours, &theirs[step]),
            relative_difference(&ours, &reference[step]),
            relative_difference(&theirs[step], &reference[step]),
        ));
    }
    (out, agreement)
}
