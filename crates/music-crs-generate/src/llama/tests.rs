//! Tests of the Llama backend: a tiny random-weight checkpoint written to a temp dir (the
//! safetensors path), and the real SmolLM2-135M GGUF from `shared/` (the GGUF path).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use music_crs_core::shared::shared_path;
use music_crs_core::{GenerationRequest, Track, TurnContext};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::*;
use crate::prompt::ChatRole;

const SMOL_GGUF: &str = "models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOL_TOKENIZER: &str = "models/SmolLM2-135M-Instruct/tokenizer.json";

/// Byte-level BPE over the 256 byte symbols (no merges) plus two ChatML tokens.
fn tiny_tokenizer() -> Tokenizer {
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let mut vocab: Vocab = alphabet
        .into_iter()
        .enumerate()
        .map(|(id, c)| (c.to_string(), id as u32))
        .collect();
    vocab.insert("<|im_start|>".into(), 256);
    vocab.insert("<|im_end|>".into(), 257);
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, vec![])
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    tokenizer
        .add_special_tokens([
            AddedToken::from("<|im_start|>", true),
            AddedToken::from("<|im_end|>", true),
        ])
        .unwrap();
    tokenizer
}

/// Writes a 2-layer random-weight Llama checkpoint and returns its directory.
fn write_tiny_llama(dir: &Path) -> PathBuf {
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 32,
        "intermediate_size": 64,
        "vocab_size": 258,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 2048,
        "bos_token_id": 256,
        "eos_token_id": 257,
        "tie_word_embeddings": false
    });
    fs_err::write(dir.join("config.json"), config.to_string()).unwrap();
    let raw: candle_transformers::models::llama::LlamaConfig =
        serde_json::from_value(config).unwrap();
    let varmap = VarMap::new();
    let builder = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    // Llama::load asks the var map for every tensor, which creates them with random values.
    full::Llama::load(builder, &raw.into_config(false)).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
    tiny_tokenizer()
        .save(dir.join("tokenizer.json"), false)
        .unwrap();
    let tokenizer_config = serde_json::json!({
        "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    });
    fs_err::write(
        dir.join("tokenizer_config.json"),
        tokenizer_config.to_string(),
    )
    .unwrap();
    dir.to_path_buf()
}

fn request(session: &str, message: &str) -> GenerationRequest {
    let mut context = TurnContext::from_message(message);
    context.session_id = session.into();
    let mut track = Track::new("t1", "Peace Piece", "Bill Evans");
    track.album_name = vec!["Everybody Digs Bill Evans".into()];
    track.release_date = Some("1959-01-01".into());
    GenerationRequest {
        context,
        recommended: vec![track],
        played: vec![],
    }
}

#[test]
fn tiny_safetensors_llama_generates_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_llama(dir.path());
    let params = LlamaParams {
        max_new_tokens: 12,
        ..LlamaParams::default()
    };
    let generator = LlamaGenerator::from_dir(&path, params).unwrap();
    // The template of tokenizer_config.json, and its end-of-turn token.
    assert!(matches!(
        generator.chat_template(),
        PromptTemplate::Jinja(_)
    ));
    assert_eq!(generator.end_tokens(), &[257]);
    let req = request("s1", "calm jazz please");
    let first = generator.generate_with_stats(&req).unwrap();
    let second = generator.generate_with_stats(&req).unwrap();
    assert_eq!(first.text, second.text);
    assert!(first.generated_tokens <= 12);
    assert!(first.prompt_tokens > 100, "{}", first.prompt_tokens);
    assert!(!first.text.contains("<|im_"), "{}", first.text);
    // The trait reply is never empty (template fallback when the model ends at once).
    assert!(!generator.generate(&req).unwrap().is_empty());
    // Another session seeds sampling differently; over a few sessions replies differ.
    let replies: std::collections::HashSet<String> = (0..4)
        .map(|i| {
            generator
                .generate_with_stats(&request(&format!("s{i}"), "calm jazz"))
                .unwrap()
                .text
        })
        .collect();
    assert!(replies.len() > 1, "{replies:?}");
    // Greedy decoding ignores the seed.
    let greedy = LlamaGenerator::from_dir(
        &path,
        LlamaParams {
            max_new_tokens: 8,
            ..LlamaParams::greedy()
        },
    )
    .unwrap();
    let a = greedy.generate_with_stats(&request("a", "x")).unwrap();
    let b = greedy.generate_with_stats(&request("b", "x")).unwrap();
    assert_eq!(a.text, b.text);
}

/// The tiny model written in `dir`, greedy, with a 1,600-token context and 4 new tokens:
/// room for the system prompt and a few hundred bytes more (the tiny tokenizer reads a
/// token a byte), so the fitting tests choose what overflows it.
fn fitting_generator(dir: &Path) -> LlamaGenerator {
    let params = LlamaParams {
        max_new_tokens: 4,
        max_context_tokens: 1600,
        ..LlamaParams::greedy()
    };
    LlamaGenerator::from_dir(&write_tiny_llama(dir), params).unwrap()
}

#[test]
fn long_history_is_trimmed_to_fit_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let generator = fitting_generator(dir.path());
    let mut req = request("s", "more");
    req.context.turn_number = 8;
    for turn in 1..8 {
        req.context.history.push(music_crs_core::Message::new(
            turn,
            music_crs_core::Role::User,
            "x".repeat(200),
        ));
    }
    let completion = generator.generate_with_stats(&req).unwrap();
    let mut bare = req.clone();
    bare.context.history.clear();
    let base = generator.generate_with_stats(&bare).unwrap().prompt_tokens;
    assert!(
        completion.prompt_tokens + 4 <= 1600,
        "{}",
        completion.prompt_tokens
    );
    // The newest history that fits is kept (one 200-byte message here).
    assert!(
        completion.prompt_tokens >= base + 200,
        "{} vs {base}",
        completion.prompt_tokens
    );
    // Dropping history is one warning naming the turn, not one per dropped turn.
    let (_, logged) = logged_warnings(|| generator.generate_with_stats(&req).unwrap());
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("session s, turn 8") && logged[0].contains("oldest of 7 earlier turns"),
        "{logged:?}"
    );
}

thread_local! {
    /// What the test subscriber logged on this thread.
    static LOGGED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes into this thread's [`LOGGED`] buffer.
struct ThreadBuffer;

impl std::io::Write for ThreadBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGGED.with(|logged| logged.borrow_mut().extend_from_slice(bytes));
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The warnings logged on this thread while `f` runs, one per line, and what `f` returned.
/// One global subscriber writes each thread's events to that thread's buffer: scoped
/// subscribers (`with_default`) lose events when tests register callsites in parallel.
fn logged_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Another global subscriber may already be set; then nothing is captured and the
        // assertions on warnings say so.
        let _ = tracing_subscriber::fmt()
            .with_writer(|| ThreadBuffer)
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .try_init();
    });
    LOGGED.with(|logged| logged.borrow_mut().clear());
    let out = f();
    let text = LOGGED.with(|logged| String::from_utf8_lossy(&logged.take()).into_owned());
    (out, text.lines().map(str::to_string).collect())
}

/// A turn of `history` earlier turns of 200 bytes each, a user message of `message_bytes`
/// and a recommended track whose name has `track_bytes` (the tiny tokenizer: a token a byte).
fn long_request(history: u32, message_bytes: usize, track_bytes: usize) -> GenerationRequest {
    let mut req = request("long", &"y".repeat(message_bytes));
    req.context.turn_number = history + 1;
    for turn in 1..=history {
        req.context.history.push(music_crs_core::Message::new(
            turn,
            music_crs_core::Role::User,
            "x".repeat(200),
        ));
    }
    req.recommended[0].track_name = vec!["z".repeat(track_bytes)];
    req
}

#[test]
fn a_huge_message_and_track_block_are_fitted_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let generator = fitting_generator(dir.path());

    // History alone is enough to give way: the track block and the message stay whole.
    let (completion, logged) =
        logged_warnings(|| generator.generate_with_stats(&long_request(7, 100, 100)));
    let completion = completion.unwrap();
    assert!(completion.prompt_tokens + 4 <= 1600);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("earlier turns"), "{logged:?}");

    // A huge track block: every earlier turn goes, then the track; the message stays whole.
    let (completion, logged) =
        logged_warnings(|| generator.generate_with_stats(&long_request(3, 100, 3000)));
    assert!(completion.unwrap().prompt_tokens + 4 <= 1600);
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(
        logged[0].contains("dropped the 3 oldest of 3 earlier turns"),
        "{logged:?}"
    );
    assert!(
        logged[1].contains("dropped 1 of 1 retrieved tracks"),
        "{logged:?}"
    );

    // A huge message too: history, then the track, then the message is cut, its start kept.
    let huge = long_request(3, 3000, 3000);
    let (completion, logged) = logged_warnings(|| generator.generate_with_stats(&huge));
    let completion = completion.unwrap();
    assert!(completion.prompt_tokens + 4 <= 1600);
    // The cut keeps as much of the message as fits: the prompt fills the context.
    assert!(
        completion.prompt_tokens + 4 > 1600 - 8,
        "{}",
        completion.prompt_tokens
    );
    assert_eq!(logged.len(), 3, "{logged:?}");
    for (line, what) in logged
        .iter()
        .zip(["earlier turns", "retrieved tracks", "user message"])
    {
        assert!(
            line.contains("WARN") && line.contains("session long, turn 4") && line.contains(what),
            "{logged:?}"
        );
    }
    assert!(logged[2].contains("from 3000 to its first"), "{logged:?}");
    // The trait reply (what `run`, `chat` and `serve` call) answers the turn as well.
    assert!(!generator.generate(&huge).unwrap().is_empty());
}

#[test]
fn a_context_too_small_for_the_system_prompt_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_llama(dir.path());
    let params = LlamaParams {
        max_new_tokens: 64,
        max_context_tokens: 600,
        ..LlamaParams::greedy()
    };
    let err = LlamaGenerator::from_dir(&path, params)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_context_tokens")
            && err.contains("system prompt alone")
            && err.contains("max_new_tokens 64"),
        "{err}"
    );
}

#[test]
fn a_cut_message_keeps_whole_characters_and_is_marked() {
    let tokenizer = tiny_tokenizer();
    let message = "héllo wörld";
    let encoding = tokenizer.encode(message, false).unwrap();
    let offsets = encoding.get_offsets();
    // "é" and "ö" are two bytes, so two byte-level tokens each: a cut between them must
    // still give a whole-character prefix.
    for tokens in 0..offsets.len() {
        let cut = cut_message(message, offsets, tokens);
        assert!(cut.ends_with(CUT_MARK), "{cut}");
        let kept = cut.trim_end_matches(CUT_MARK).trim_end();
        assert!(message.starts_with(kept), "{tokens}: {cut:?}");
    }
    assert_eq!(cut_message(message, offsets, 0), CUT_MARK);
    assert_eq!(cut_message(message, offsets, 1), format!("h {CUT_MARK}"));
}

#[test]
fn missing_and_broken_files_name_the_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let err = LlamaGenerator::from_dir(dir.path(), LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains(&dir.path().display().to_string()),
        "{err}"
    );

    let path = write_tiny_llama(dir.path());
    fs_err::remove_file(path.join("tokenizer.json")).unwrap();
    let err = LlamaGenerator::from_dir(&path, LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer.json not found"), "{err}");

    let path = write_tiny_llama(dir.path());
    fs_err::remove_file(path.join("model.safetensors")).unwrap();
    let err = LlamaGenerator::from_dir(&path, LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains(&path.display().to_string()),
        "{err}"
    );

    let path = write_tiny_llama(dir.path());
    fs_err::write(path.join("model.safetensors"), b"not weights").unwrap();
    let err = LlamaGenerator::from_dir(&path, LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("safetensors"),
        "{err}"
    );

    // A tensor of the wrong shape is an error, not a panic inside candle.
    let path = write_tiny_llama(dir.path());
    let mut config: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(path.join("config.json")).unwrap()).unwrap();
    config["intermediate_size"] = 48.into();
    fs_err::write(path.join("config.json"), config.to_string()).unwrap();
    let err = LlamaGenerator::from_dir(&path, LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("mlp") && err.contains("shape"), "{err}");

    let gguf = dir.path().join("nope.gguf");
    let err = LlamaGenerator::from_gguf(&gguf, None, LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GGUF model file not found") && err.contains("nope.gguf"),
        "{err}"
    );

    fs_err::write(&gguf, b"GGUF but not really").unwrap();
    let err = LlamaGenerator::from_gguf(&gguf, None, LlamaParams::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.gguf") && err.contains("GGUF"), "{err}");

    let source = ModelSource::Gguf {
        path: dir.path().join("x.gguf"),
        tokenizer: None,
    };
    assert!(
        crate::build_generator(&crate::GeneratorConfig::Llama(crate::LlamaConfig {
            model: source,
            params: LlamaParams::default(),
        }))
        .is_err()
    );
}

/// The ids of a fixed ChatML conversation, derived independently: the chat template of
/// SmolLM2's tokenizer_config.json rendered with Python jinja2, encoded with the Python
/// `tokenizers` package (add_special_tokens=False) and SmolLM2's tokenizer.json.
const CHATML_IDS: &[u32] = &[
    1, 9690, 198, 2683, 359, 354, 4507, 2477, 12185, 11173, 30, 198, 15939, 357, 1890, 30, 2, 198,
    1, 4093, 198, 20522, 1488, 9071, 327, 253, 24536, 9053, 28, 5196, 32293, 315, 428, 7342, 99,
    47, 2, 198, 1, 520, 9531, 198, 16922, 79, 311, 42, 252, 33, 28, 4320, 79, 1245, 42, 4033, 3800,
    28, 6949, 79, 1245, 42, 3093, 577, 487, 28, 21613, 79, 1245, 42, 14786, 2047, 99, 3093, 577,
    487, 28, 4706, 79, 2759, 42, 216, 33, 41, 37, 41, 29, 32, 33, 29, 32, 33, 2, 198, 1, 520, 9531,
    198,
];

fn chatml_conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            ChatRole::System,
            "You are an expert music recommendation assistant.\nKeep it short.",
        ),
        ChatMessage::new(
            ChatRole::User,
            "Play something calm for a rainy evening, maybe Sigur Rós?",
        ),
        ChatMessage::new(
            ChatRole::Assistant,
            "track_id: t1, track_name: peace piece, artist_name: bill evans, album_name: everybody digs bill evans, release_date: 1959-01-01",
        ),
    ]
}

#[test]
fn smollm2_chatml_prompt_ids_match_the_reference() {
    let Some(gguf) = shared_path(SMOL_GGUF) else {
        return;
    };
    let Some(json) = shared_path(SMOL_TOKENIZER) else {
        return;
    };
    let params = LlamaParams {
        max_new_tokens: 8,
        ..LlamaParams::greedy()
    };
    // Tokenizer and template both rebuilt from the GGUF's own metadata.
    let from_gguf = LlamaGenerator::from_gguf(&gguf, None, params.clone()).unwrap();
    assert!(matches!(
        from_gguf.chat_template(),
        PromptTemplate::Jinja(_)
    ));
    assert_eq!(from_gguf.end_tokens(), &[2]);
    assert_eq!(
        from_gguf.prompt_ids(&chatml_conversation()).unwrap(),
        CHATML_IDS
    );
    // And with the tokenizer.json beside it.
    let with_json = LlamaGenerator::from_gguf(&gguf, Some(&json), params).unwrap();
    assert_eq!(
        with_json.prompt_ids(&chatml_conversation()).unwrap(),
        CHATML_IDS
    );
    // The chat template of the tokenizer_config.json beside it renders the same ids.
    let Some(config) = shared_path("models/SmolLM2-135M-Instruct/tokenizer_config.json") else {
        return;
    };
    let files = weights::DirFiles {
        config: PathBuf::new(),
        tokenizer: json.clone(),
        tokenizer_config: Some(config.clone()),
        generation_config: None,
        weights: Vec::new(),
    };
    let (bos, eos) = files.special_token_texts().unwrap();
    assert_eq!(
        (bos.as_deref(), eos.as_deref()),
        (Some("<|im_start|>"), Some("<|im_end|>"))
    );
    let source = files.chat_template_source().unwrap().unwrap();
    let template = JinjaTemplate::new(&source, &config, "chat_template", bos, eos).unwrap();
    let text = template.render(&chatml_conversation(), true).unwrap();
    let tokenizer = Tokenizer::from_file(&json).unwrap();
    assert_eq!(tokenizer.encode(text, false).unwrap().get_ids(), CHATML_IDS);
}

#[test]
fn smollm2_writes_a_deterministic_english_reply() {
    let Some(gguf) = shared_path(SMOL_GGUF) else {
        return;
    };
    let params = LlamaParams {
        max_new_tokens: 40,
        ..LlamaParams::default()
    };
    let generator = LlamaGenerator::from_gguf(&gguf, None, params).unwrap();
    let req = request(
        "session-1",
        "I want something mellow for a rainy evening, maybe jazz piano.",
    );
    let first = generator.generate_with_stats(&req).unwrap();
    let second = generator.generate_with_stats(&req).unwrap();
    println!(
        "SmolLM2 reply ({} tokens): {}",
        first.generated_tokens, first.text
    );
    assert_eq!(first.text, second.text);
    assert!(!first.text.is_empty());
    assert!(first.generated_tokens <= 40);
    let letters: Vec<char> = first.text.chars().filter(|c| c.is_alphabetic()).collect();
    let ascii = letters.iter().filter(|c| c.is_ascii()).count();
    assert!(
        letters.len() >= 10 && ascii * 10 >= letters.len() * 9,
        "{}",
        first.text
    );
    let lower = format!(" {} ", first.text.to_lowercase());
    let english = [
        " the ", " a ", " you ", " is ", " this ", " and ", " i ", " it ",
    ];
    assert!(english.iter().any(|w| lower.contains(w)), "{}", first.text);
    assert!(!first.text.contains("<|im_"), "{}", first.text);
}

/// Largest absolute difference between two logit vectors.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn repeat_penalty_scales_logits_of_recent_tokens_only() {
    let logits = Tensor::new(&[2.0f32, -1.0, 0.5, 3.0], &Device::Cpu).unwrap();
    let penalized = |generated: &[u32], penalty: f32, last_n: usize| {
        penalize_repeats(logits.clone(), generated, penalty, last_n)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    // Positive logits are divided, negative ones multiplied, a repeated token only once.
    assert_eq!(penalized(&[0, 1, 0], 2.0, 64), [1.0, -2.0, 0.5, 3.0]);
    // Only the last `last_n` generated tokens count.
    assert_eq!(penalized(&[3, 0, 1], 2.0, 2), [1.0, -2.0, 0.5, 3.0]);
    assert_eq!(penalized(&[3, 0, 1], 2.0, 3), [1.0, -2.0, 0.5, 1.5]);
    // Off by default (1.0), and with nothing generated or an empty window.
    assert_eq!(LlamaParams::default().repeat_penalty, 1.0);
    assert_eq!(penalized(&[0, 1], 1.0, 64), [2.0, -1.0, 0.5, 3.0]);
    assert_eq!(penalized(&[], 2.0, 64), [2.0, -1.0, 0.5, 3.0]);
    assert_eq!(penalized(&[0], 2.0, 0), [2.0, -1.0, 0.5, 3.0]);
}

#[test]
fn prefix_cache_keeps_the_longest_usable_and_recent_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_llama(dir.path());
    let generator = LlamaGenerator::from_dir(&path, LlamaParams::greedy()).unwrap();
    let CallState::Owned(state) = generator.network.begin() else {
        panic!("a Llama state is owned by its call");
    };
    let cache = PrefixCache::new(2);
    cache.save(&[1, 2], &state);
    cache.save(&[1, 2, 3, 4], &state);
    cache.save(&[1, 2, 3, 4], &state);
    assert_eq!(cache.len(), 2);
    let found = |prompt: &[u32], points: &[usize]| cache.longest(prompt, points).map(|f| f.0);
    assert_eq!(found(&[1, 2, 3, 4, 5], &[2, 4]), Some(4));
    // Only at a split point of the new prompt, and only when the tokens match.
    assert_eq!(found(&[1, 2, 3, 4, 5], &[2]), Some(2));
    assert_eq!(found(&[1, 2, 9, 4, 5], &[2, 4]), Some(2));
    assert_eq!(found(&[7, 2, 3, 4, 5], &[2, 4]), None);
    // [1, 2] was used last, so a third entry drops [1, 2, 3, 4].
    cache.save(&[5, 6], &state);
    assert_eq!(found(&[1, 2, 3, 4, 5], &[2, 4]), Some(2));
    assert_eq!(found(&[5, 6, 7], &[2]), Some(2));
    cache.clear();
    assert_eq!(cache.len(), 0);
    // Capacity 0 saves nothing.
    let off = PrefixCache::new(0);
    off.save(&[1, 2], &state);
    assert_eq!(off.len(), 0);
}

#[test]
fn tiny_llama_reuses_the_prompt_prefix_with_the_same_reply() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_llama(dir.path());
    let params = LlamaParams {
        max_new_tokens: 8,
        ..LlamaParams::greedy()
    };
    let generator = LlamaGenerator::from_dir(&path, params).unwrap();
    let req = request("s", "calm jazz please");
    let cold = generator.generate_with_stats(&req).unwrap();
    assert_eq!(cold.reused_prompt_tokens, 0);
    let warm = generator.generate_with_stats(&req).unwrap();
    assert!(warm.reused_prompt_tokens > 0);
    assert_eq!(warm.reused_prompt_tokens % PREFILL_ALIGNMENT, 0);
    assert!(warm.reused_prompt_tokens < warm.prompt_tokens);
    assert_eq!(cold.text, warm.text);
    assert_eq!(cold.generated_tokens, warm.generated_tokens);
    // Another user message still shares the system message.
    let other = generator
        .generate_with_stats(&request("t", "loud rock"))
        .unwrap();
    assert!(other.reused_prompt_tokens > 0);
    generator.clear_prefix_cache();
    let cleared = generator.generate_with_stats(&req).unwrap();
    assert_eq!(cleared.reused_prompt_tokens, 0);
    assert_eq!(cleared.text, cold.text);
}

/// Logits after `prompt` read in one pass and read in chunks ending at `ends`.
fn one_pass_and_split(
    generator: &LlamaGenerator,
    prompt: &[u32],
    ends: impl IntoIterator<Item = usize>,
) -> (Tensor, Tensor) {
    let network = &generator.network;
    let mut single = network.begin();
    let one_pass = network
        .forward(&Device::Cpu, &mut single, prompt, 0)
        .unwrap();
    let mut chunked = network.begin();
    let mut position = 0;
    for end in ends {
        network
            .forward(&Device::Cpu, &mut chunked, &prompt[position..end], position)
            .unwrap();
        position = end;
    }
    let in_chunks = network
        .forward(&Device::Cpu, &mut chunked, &prompt[position..], position)
        .unwrap();
    network.finish(single);
    network.finish(chunked);
    (one_pass, in_chunks)
}

#[test]
fn chunked_prefill_matches_one_pass() {
    let Some(gguf) = shared_path(SMOL_GGUF) else {
        return;
    };
    let messages = chatml_conversation();
    // candle's network: exact at multiples of the alignment, where its splits fall.
    let candle =
        LlamaGenerator::from_gguf_with(&gguf, None, LlamaParams::greedy(), LlamaForward::Candle)
            .unwrap();
    let prompt = candle.prompt_ids(&messages).unwrap();
    let split = candle.split(&messages, &prompt).unwrap();
    assert!(!split.points.is_empty(), "{split:?}");
    assert!(
        split.points.iter().all(|p| p % PREFILL_ALIGNMENT == 0),
        "{split:?}"
    );
    let aligned = (PREFILL_ALIGNMENT..prompt.len()).step_by(PREFILL_ALIGNMENT);
    let (one_pass, in_chunks) = one_pass_and_split(&candle, &prompt, aligned);
    assert_eq!(max_abs_diff(&one_pass, &in_chunks), 0.0);
    // For the record: a split off the alignment is not exact in candle 0.11.
    let (one_pass, off) = one_pass_and_split(&candle, &prompt, [18]);
    println!(
        "candle, split at 18 of {}: max logit difference {}",
        prompt.len(),
        max_abs_diff(&one_pass, &off)
    );
    // Our forward pass: exact anywhere, so its splits fall at the messages' own ends.
    let own = LlamaGenerator::from_gguf(&gguf, None, LlamaParams::greedy()).unwrap();
    assert!(matches!(own.network, Network::Fast(_)));
    let split = own.split(&messages, &prompt).unwrap();
    assert!(
        split.points.iter().any(|p| p % PREFILL_ALIGNMENT != 0),
        "{split:?}"
    );
    for ends in [split.points.clone(), vec![18], vec![1, 2, 33, 34]] {
        let (one_pass, in_chunks) = one_pass_and_split(&own, &prompt, ends.clone());
        assert_eq!(max_abs_diff(&one_pass, &in_chunks), 0.0, "{ends:?}");
    }
}

/// A second turn (a user message and a reply in the history) and the same turn with another
/// user message: the two share every prompt token up to the last user message.
fn second_turn_and_sibling() -> [GenerationRequest; 2] {
    let mut first = request(
        "s",
        "I want something mellow for a rainy evening, maybe jazz piano.",
    );
    first.context.turn_number = 2;
    first.context.history = vec![
        music_crs_core::Message::new(1, music_crs_core::Role::User, "Play me some funk."),
        music_crs_core::Message::new(1, music_crs_core::Role::Assistant, "Try this one."),
    ];
    let mut second = first.clone();
    second.context.user_message = "Something with a saxophone, please.".into();
    [first, second]
}

#[test]
fn smollm2_reply_is_the_same_with_and_without_prefix_reuse() {
    let Some(gguf) = shared_path(SMOL_GGUF) else {
        return;
    };
    let params = LlamaParams {
        max_new_tokens: 24,
        ..LlamaParams::greedy()
    };
    let cached = LlamaGenerator::from_gguf(&gguf, None, params.clone()).unwrap();
    let one_pass = LlamaGenerator::from_gguf(
        &gguf,
        None,
        LlamaParams {
            prefix_cache_entries: 0,
            ..params
        },
    )
    .unwrap();
    let [first, second] = second_turn_and_sibling();
    let reference = one_pass.generate_with_stats(&first).unwrap();
    assert_eq!(reference.reused_prompt_tokens, 0);
    let cold = cached.generate_with_stats(&first).unwrap();
    let warm = cached.generate_with_stats(&first).unwrap();
    let sibling = cached.generate_with_stats(&second).unwrap();
    let messages = build_chat(&first, &cached.params.prompt);
    let prompt = cached.prompt_ids(&messages).unwrap();
    println!(
        "prompt {} tokens, {:?}, reused {} (warm) and {} (other message): {}",
        warm.prompt_tokens,
        cached.split(&messages, &prompt).unwrap(),
        warm.reused_prompt_tokens,
        sibling.reused_prompt_tokens,
        warm.text
    );
    assert_eq!(cold.reused_prompt_tokens, 0);
    assert!(
        warm.reused_prompt_tokens >= 100,
        "{}",
        warm.reused_prompt_tokens
    );
    assert!(
        sibling.reused_prompt_tokens >= 100,
        "{}",
        sibling.reused_prompt_tokens
    );
    assert_eq!(cold.text, reference.text);
    assert_eq!(warm.text, reference.text);
    assert_eq!(
        sibling.text,
        one_pass.generate_with_stats(&second).unwrap().text
    );
}

#[test]
fn smollm2_greedy_replies_on_candle_and_on_our_forward() {
    let Some(gguf) = shared_path(SMOL_GGUF) else {
        return;
    };
    let [with_history, sibling] = second_turn_and_sibling();
    // Greedy: sampled replies (temperature 0.6) may part at the first token, since the two
    // quantize activations differently (candle per 256 values for k % 256 == 0).
    let cases = [
        (
            LlamaParams {
                max_new_tokens: 24,
                ..LlamaParams::greedy()
            },
            with_history,
        ),
        (
            LlamaParams {
                max_new_tokens: 24,
                ..LlamaParams::greedy()
            },
            sibling,
        ),
    ];
    for (params, req) in cases {
        let candle =
            LlamaGenerator::from_gguf_with(&gguf, None, params.clone(), LlamaForward::Candle)
                .unwrap();
        assert!(matches!(
            candle.network,
            Network::Quantized(Quantized::Llama(_))
        ));
        let widened = LlamaGenerator::from_gguf_with(
            &gguf,
            None,
            params.clone(),
            LlamaForward::Own { native_q4_1: false },
        )
        .unwrap();
        let native = LlamaGenerator::from_gguf(&gguf, None, params).unwrap();
        assert!(matches!(native.network, Network::Fast(_)));
        let [candle, widened, native] =
            [&candle, &widened, &native].map(|g| g.generate_with_stats(&req).unwrap().text);
        println!("candle:          {candle}\nours (widened): {widened}\nours (Q4_1):    {native}");
        // Not asserted equal: this small model's greedy reply to these chats turns on
        // logit differences of the size two kernels' rounding makes (candle's own path
        // quantizes activations per 256 values in some products, ours per 32); the logits
        // are compared in `fast::tests`.
        for text in [&candle, &widened, &native] {
            assert!(text.split_whitespace().count() >= 5, "{text}");
        }
    }
}

mod hostile_model_files {
    //! Well-formed model files that declare hostile values: each load is an error naming the
    //! file and the field, never a panic, an abort or a huge allocation inside candle.

    use super::*;
    use crate::test_gguf::{GgufFile, Meta, tiny_llama_gguf};

    fn write_gguf(dir: &Path, file: &GgufFile) -> PathBuf {
        let path = dir.join("model.gguf");
        fs_err::write(&path, file.bytes()).unwrap();
        path
    }

    fn gguf_error(file: &GgufFile) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = write_gguf(dir.path(), file);
        let err = LlamaGenerator::from_gguf(&path, None, LlamaParams::greedy())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        err
    }

    fn with(key: &str, value: Meta) -> GgufFile {
        let mut file = tiny_llama_gguf();
        file.set(key, value);
        file
    }

    #[test]
    fn tiny_gguf_loads_and_replies() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_gguf(dir.path(), &tiny_llama_gguf());
        let params = LlamaParams {
            max_new_tokens: 6,
            ..LlamaParams::greedy()
        };
        let generator = LlamaGenerator::from_gguf(&path, None, params).unwrap();
        assert_eq!(generator.context_limit(), 2048);
        let completion = generator
            .generate_with_stats(&request("s", "jazz"))
            .unwrap();
        assert!(completion.prompt_tokens > 10, "{completion:?}");
    }

    #[test]
    fn zero_or_inconsistent_heads_are_named() {
        let err = gguf_error(&with("llama.attention.head_count", Meta::U32(0)));
        assert!(err.contains("llama.attention.head_count"), "{err}");
        let err = gguf_error(&with("llama.attention.head_count_kv", Meta::U32(0)));
        assert!(err.contains("llama.attention.head_count_kv"), "{err}");
        let err = gguf_error(&with("llama.attention.head_count_kv", Meta::U32(3)));
        assert!(err.contains("llama.attention.head_count_kv"), "{err}");
        let err = gguf_error(&with("llama.attention.head_count", Meta::U32(5)));
        assert!(err.contains("llama.attention.head_count"), "{err}");
        // Stored with another integer type than the u32 candle reads.
        let err = gguf_error(&with("llama.attention.head_count", Meta::U64(4)));
        assert!(err.contains("llama.attention.head_count"), "{err}");
    }

    #[test]
    fn huge_block_count_is_refused_before_allocating() {
        let err = gguf_error(&with("llama.block_count", Meta::U32(u32::MAX)));
        assert!(err.contains("llama.block_count"), "{err}");
        // More layers than the file has tensors for.
        let err = gguf_error(&with("llama.block_count", Meta::U32(3)));
        assert!(err.contains("blk.2"), "{err}");
        let err = gguf_error(&with("llama.block_count", Meta::U32(0)));
        assert!(err.contains("llama.block_count"), "{err}");
    }

    #[test]
    fn absurd_dimensions_and_rope_values_are_named() {
        for (key, value) in [
            ("llama.embedding_length", Meta::U32(u32::MAX)),
            ("llama.embedding_length", Meta::U32(36)),
            ("llama.rope.dimension_count", Meta::U32(4_000_000_000)),
            ("llama.rope.freq_base", Meta::F32(f32::NAN)),
            ("llama.rope.freq_base", Meta::F32(0.0)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                Meta::F32(f32::NAN),
            ),
            ("llama.attention.layer_norm_rms_epsilon", Meta::F32(-1.0)),
            ("llama.context_length", Meta::U32(0)),
            ("llama.feed_forward_length", Meta::U32(48)),
            ("general.alignment", Meta::U32(0)),
            ("llama.expert_count", Meta::U32(100_000)),
        ] {
            let err = gguf_error(&with(key, value.clone()));
            assert!(err.contains(key), "{key} = {value:?}: {err}");
        }
        let mut missing = tiny_llama_gguf();
        missing.remove("llama.attention.layer_norm_rms_epsilon");
        let err = gguf_error(&missing);
        assert!(
            err.contains("llama.attention.layer_norm_rms_epsilon"),
            "{err}"
        );
    }

    #[test]
    fn tensor_shapes_and_extents_are_checked_against_the_file() {
        let mut wrong_shape = tiny_llama_gguf();
        wrong_shape.tensor_mut("blk.1.attn_k.weight").dims = vec![8, 64];
        let err = gguf_error(&wrong_shape);
        assert!(err.contains("blk.1.attn_k.weight"), "{err}");

        let mut past_the_end = tiny_llama_gguf();
        past_the_end.tensor_mut("blk.0.ffn_up.weight").offset = Some(u64::MAX - 16);
        let err = gguf_error(&past_the_end);
        assert!(err.contains("blk.0.ffn_up.weight"), "{err}");

        let mut overflowing = tiny_llama_gguf();
        overflowing.tensor_mut("output_norm.weight").dims = vec![1 << 40, 1 << 40];
        let err = gguf_error(&overflowing);
        assert!(err.contains("output_norm.weight"), "{err}");

        let mut vocabulary = tiny_llama_gguf();
        vocabulary.tensor_mut("token_embd.weight").dims = vec![100, 32];
        vocabulary
            .tensor_mut("token_embd.weight")
            .data
            .truncate(100 * 32 * 4);
        let err = gguf_error(&vocabulary);
        assert!(err.contains("token_embd.weight"), "{err}");

        let mut absent = tiny_llama_gguf();
        absent
            .tensors
            .retain(|t| t.name != "blk.0.attn_norm.weight");
        let err = gguf_error(&absent);
        assert!(err.contains("blk.0.attn_norm.weight"), "{err}");
    }

    fn config_error(change: impl Fn(&mut serde_json::Value)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = write_tiny_llama(dir.path());
        let config_path = path.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&config_path).unwrap()).unwrap();
        change(&mut config);
        fs_err::write(&config_path, config.to_string()).unwrap();
        let err = LlamaGenerator::from_dir(&path, LlamaParams::greedy())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&config_path.display().to_string()), "{err}");
        err
    }

    #[test]
    fn absurd_config_json_values_are_named_before_allocating() {
        for (key, value) in [
            ("num_hidden_layers", serde_json::json!(1_000_000_000u64)),
            ("num_hidden_layers", serde_json::json!(0)),
            (
                "max_position_embeddings",
                serde_json::json!(4_000_000_000u64),
            ),
            ("max_position_embeddings", serde_json::json!(0)),
            ("hidden_size", serde_json::json!(1u64 << 40)),
            ("intermediate_size", serde_json::json!(0)),
            ("vocab_size", serde_json::json!(0)),
            ("vocab_size", serde_json::json!(1u64 << 40)),
            ("rms_norm_eps", serde_json::json!(-1.0)),
            ("rope_theta", serde_json::json!(0.0)),
            ("num_attention_heads", serde_json::json!(100_000)),
        ] {
            let err = config_error(|c| c[key] = value.clone());
            assert!(err.contains(key), "{key} = {value}: {err}");
        }
        let err = config_error(|c| {
            c["rope_scaling"] = serde_json::json!({
                "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192, "rope_type": "llama3"
            })
        });
        assert!(err.contains("rope_scaling"), "{err}");
    }

    #[test]
    fn long_trained_context_does_not_size_the_rope_table() {
        // A context of 2^20 positions is legal; only what a call can use is precomputed.
        let dir = tempfile::tempdir().unwrap();
        let path = write_tiny_llama(dir.path());
        let config_path = path.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&config_path).unwrap()).unwrap();
        config["max_position_embeddings"] = (1u64 << 20).into();
        fs_err::write(&config_path, config.to_string()).unwrap();
        let params = LlamaParams {
            max_new_tokens: 4,
            ..LlamaParams::greedy()
        };
        let generator = LlamaGenerator::from_dir(&path, params.clone()).unwrap();
        assert_eq!(generator.context_limit(), params.max_context_tokens);
        generator.generate_with_stats(&request("s", "x")).unwrap();
    }
}

#[test]
fn flawed_replies_are_reported_and_replaced_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let params = LlamaParams {
        max_new_tokens: 8,
        ..LlamaParams::greedy()
    };
    let mut generator = LlamaGenerator::from_dir(&write_tiny_llama(dir.path()), params).unwrap();
    // Every token ends the turn, so the model replies with nothing.
    generator.end_tokens = (0..258).collect();
    let req = request("s1", "calm jazz please");
    assert_eq!(generator.generate_with_stats(&req).unwrap().text, "");
    let template_reply = TemplateGenerator::default().reply(&req);

    // The default: an empty reply is replaced, and reported as empty.
    let replaced = generator.generate_checked(&req).unwrap();
    assert_eq!(replaced.check, ReplyCheck::Empty);
    assert!(replaced.replaced);
    assert_eq!(replaced.text, template_reply);
    assert_eq!(generator.generate(&req).unwrap(), template_reply);
    generator.params.on_empty = ReplyFallback::Keep;
    let kept = generator.generate_checked(&req).unwrap();
    assert_eq!(kept.check, ReplyCheck::Empty);
    assert!(!kept.replaced);
    assert_eq!(kept.text, "");
    assert_eq!(generator.generate(&req).unwrap(), "");

    // The default for a loop: kept, and reported as degenerate.
    let looping = "Enjoy the music! ".repeat(5);
    let kept = generator.settle(&req, looping.clone());
    assert!(matches!(kept.check, ReplyCheck::Degenerate(_)), "{kept:?}");
    assert!(!kept.replaced);
    assert_eq!(kept.text, looping);
    generator.params.on_degenerate = ReplyFallback::Template;
    let replaced = generator.settle(&req, looping);
    assert!(matches!(replaced.check, ReplyCheck::Degenerate(_)));
    assert!(replaced.replaced);
    assert_eq!(replaced.text, template_reply);

    // A sound reply is never touched.
    let sound = generator.settle(&req, "Try Peace Piece by Bill Evans.".into());
    assert_eq!(sound.check, ReplyCheck::Ok);
    assert!(!sound.replaced);
    assert_eq!(sound.text, "Try Peace Piece by Bill Evans.");
}

mod architectures {
    //! A tiny random-weight GGUF of every supported architecture, written here with the
    //! tensors and metadata candle's model of it reads, loaded through the real loader.

    use super::*;
    use crate::test_gguf::{GgufFile, Meta, tiny_family, tiny_gguf, tiny_llama_gguf};

    fn write(dir: &Path, file: &GgufFile) -> PathBuf {
        let path = dir.join("model.gguf");
        fs_err::write(&path, file.bytes()).unwrap();
        path
    }

    fn load(dir: &Path, architecture: Architecture, params: LlamaParams) -> LlamaGenerator {
        LlamaGenerator::from_gguf(&write(dir, &tiny_gguf(architecture)), None, params).unwrap()
    }

    fn greedy(max_new_tokens: usize) -> LlamaParams {
        LlamaParams {
            max_new_tokens,
            ..LlamaParams::greedy()
        }
    }

    #[test]
    fn a_batch_of_chats_gets_the_replies_of_one_at_a_time() {
        let chat = |system: &str, user: &str| {
            vec![
                ChatMessage::new(ChatRole::System, system),
                ChatMessage::new(ChatRole::User, user),
            ]
        };
        let chats = vec![
            (chat("Be brief.", "calm jazz please"), 1),
            (
                chat(
                    "You recommend music.",
                    "something loud and fast for a long run, with guitars",
                ),
                2,
            ),
            (chat("Be brief.", "calm jazz please"), 3),
            (chat("Reply in one line.", "piano"), 4),
        ];
        let sampled = LlamaParams {
            max_new_tokens: 8,
            temperature: 0.8,
            ..LlamaParams::greedy()
        };
        for params in [greedy(8), sampled] {
            let dir = tempfile::tempdir().unwrap();
            let generator = load(dir.path(), Architecture::Llama, params);
            let batched = generator.complete_batch(&chats).unwrap();
            assert_eq!(batched.len(), chats.len());
            for ((messages, seed), together) in chats.iter().zip(&batched) {
                generator.clear_prefix_cache();
                let alone = generator.complete(messages, *seed).unwrap();
                assert_eq!(together.text, alone.text, "seed {seed}");
                assert_eq!(together.generated_tokens, alone.generated_tokens);
                assert_eq!(together.stopped, alone.stopped);
                assert_eq!(together.prompt_tokens, alone.prompt_tokens);
            }
        }
    }

    #[test]
    fn a_batch_of_requests_gets_the_checked_replies_of_one_at_a_time() {
        // A session's turns as a run hands them over: the second reuses the first's prefix.
        let [second, sibling] = second_turn_and_sibling();
        let requests = vec![
            request("a", "calm jazz please"),
            second,
            sibling,
            request("b", "something loud and fast for a long run"),
        ];
        for architecture in [Architecture::Llama, Architecture::Qwen2] {
            let dir = tempfile::tempdir().unwrap();
            let generator = load(dir.path(), architecture, greedy(6));
            let whole_batches = architecture == Architecture::Llama;
            assert_eq!(generator.batch_size_hint() == usize::MAX, whole_batches);
            let batched = generator.generate_checked_batch(&requests).unwrap();
            assert_eq!(batched.len(), requests.len());
            for (request, together) in requests.iter().zip(&batched) {
                generator.clear_prefix_cache();
                let alone = generator.generate_checked(request).unwrap();
                assert_eq!(
                    together, &alone,
                    "{architecture:?}, {}",
                    request.context.user_message
                );
            }
            assert!(generator.generate_checked_batch(&[]).unwrap().is_empty());
            // Past the most sequences decoded at once, the later requests start as earlier
            // ones end: the same replies.
            let many: Vec<GenerationRequest> = (0..MAX_DECODE_BATCH + 3)
                .map(|i| requests[i % requests.len()].clone())
                .collect();
            let grouped = generator.generate_checked_batch(&many).unwrap();
            assert_eq!(grouped.len(), many.len());
            for (i, reply) in grouped.iter().enumerate() {
                assert_eq!(reply, &batched[i % batched.len()], "request {i}");
            }
            let texts = generator.generate_batch(&requests).unwrap();
            let expected: Vec<&str> = batched.iter().map(|reply| reply.text.as_str()).collect();
            assert_eq!(texts, expected);
            // One share per thread: one thread, or shares of 2, 1 and 1 on 3, same replies.
            for threads in [1, 3] {
                generator.clear_prefix_cache();
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let on_pool = pool.install(|| generator.generate_checked_batch(&requests));
                assert_eq!(
                    on_pool.unwrap(),
                    batched,
                    "{architecture:?}, {threads} threads"
                );
            }
        }
    }

    /// A second turn: a played track and a reply (two assistant messages) in the history.
    fn second_turn(session: &str, message: &str) -> GenerationRequest {
        let mut req = request(session, message);
        req.context.turn_number = 2;
        req.context.history = vec![
            music_crs_core::Message::new(1, music_crs_core::Role::User, "some funk"),
            music_crs_core::Message::new(1, music_crs_core::Role::Music, "t0"),
            music_crs_core::Message::new(1, music_crs_core::Role::Assistant, "Try this."),
        ];
        req
    }

    #[test]
    fn every_architecture_loads_and_writes_a_deterministic_greedy_reply() {
        for architecture in Architecture::ALL {
            let dir = tempfile::tempdir().unwrap();
            let generator = load(dir.path(), architecture, greedy(6));
            assert!(
                generator.name().starts_with(architecture.name()),
                "{}",
                generator.name()
            );
            let req = second_turn("s", "calm jazz please");
            let first = generator.generate_with_stats(&req).unwrap();
            let second = generator.generate_with_stats(&req).unwrap();
            println!(
                "{architecture}: {} prompt tokens, {} generated, stopped {}: {:?}",
                first.prompt_tokens, first.generated_tokens, first.stopped, first.text
            );
            assert!(first.prompt_tokens > 100, "{architecture}: {first:?}");
            assert!(first.generated_tokens <= 6, "{architecture}: {first:?}");
            assert_eq!(first.text, second.text, "{architecture}");
            assert_eq!(first.generated_tokens, second.generated_tokens);
            // The trait reply is never empty (template fallback when the model ends at once).
            assert!(!generator.generate(&req).unwrap().is_empty());
        }
    }

    #[test]
    fn phase_timing_reads_the_whole_prompt_and_decodes_past_end_tokens() {
        for architecture in Architecture::ALL {
            let dir = tempfile::tempdir().unwrap();
            let generator = load(dir.path(), architecture, greedy(6));
            let tokens = generator
                .tokenize("calm jazz piano for a rainy night")
                .unwrap();
            assert!(tokens.len() > 3, "{architecture}: {tokens:?}");
            // Twice: a locked model's state must be handed back after each timing.
            for _ in 0..2 {
                let times = generator.time_phases(&tokens, 9).unwrap();
                assert_eq!(times.prompt_tokens, tokens.len(), "{architecture}");
                assert_eq!(times.decoded_tokens, 9, "{architecture}");
                assert!(times.prompt_seconds > 0.0 && times.decode_seconds > 0.0);
            }
            let err = generator.time_phases(&[], 4).unwrap_err().to_string();
            assert!(err.contains("prompt"), "{architecture}: {err}");
            let too_long = vec![tokens[0]; generator.context_limit()];
            assert!(
                generator.time_phases(&too_long, 1).is_err(),
                "{architecture}: beyond the context limit"
            );
        }
    }

    #[test]
    fn each_model_is_prompted_with_its_own_template_and_stops_at_its_end_of_turn() {
        let expected_end: [(Architecture, &[&str]); 4] = [
            (Architecture::Qwen2, &["<|im_end|>"]),
            (Architecture::Qwen3, &["<|im_end|>"]),
            (Architecture::Gemma3, &["<eos>", "<end_of_turn>"]),
            (Architecture::Phi3, &["<|endoftext|>", "<|end|>"]),
        ];
        for (architecture, ends) in expected_end {
            let dir = tempfile::tempdir().unwrap();
            let generator = load(dir.path(), architecture, greedy(4));
            assert!(
                matches!(generator.chat_template(), PromptTemplate::Jinja(_)),
                "{architecture}"
            );
            let mut want: Vec<u32> = ends
                .iter()
                .map(|t| generator.tokenizer.token_to_id(t).unwrap())
                .collect();
            want.sort_unstable();
            assert_eq!(generator.end_tokens(), want, "{architecture}");
            let family = tiny_family(architecture);
            let req = second_turn("s", "calm jazz please");
            let messages = build_chat(&req, &generator.params.prompt);
            let text = generator.template.render(&messages, true).unwrap();
            let ids = generator.prompt_ids(&messages).unwrap();
            // Special tokens are read as one id each.
            let first_special = family.specials.iter().find(|t| text.contains(**t)).unwrap();
            let id = generator.tokenizer.token_to_id(first_special).unwrap();
            assert!(ids.contains(&id), "{architecture}: {first_special}");
            match architecture {
                // No system role: the system message opens the first user turn, and the two
                // assistant messages of the history are joined into one model turn.
                Architecture::Gemma3 => {
                    assert!(
                        text.starts_with("<bos><start_of_turn>user\nYou are"),
                        "{text}"
                    );
                    assert!(!text.contains("<start_of_turn>system"), "{text}");
                    assert!(
                        text.contains("track_id: t0\n\nTry this.<end_of_turn>"),
                        "{text}"
                    );
                    assert!(text.ends_with("<start_of_turn>model\n"), "{text}");
                }
                Architecture::Phi3 => {
                    assert!(text.starts_with("<|system|>\nYou are"), "{text}");
                    assert!(text.ends_with("<|end|>\n<|assistant|>\n"), "{text}");
                }
                Architecture::Qwen3 => {
                    assert!(
                        text.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
                        "{text}"
                    );
                }
                _ => {
                    assert!(text.starts_with("<|im_start|>system\nYou are"), "{text}");
                    assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
                }
            }
        }
    }

    #[test]
    fn prefix_reuse_is_on_only_where_the_model_allows_it() {
        for architecture in Architecture::ALL {
            let dir = tempfile::tempdir().unwrap();
            let generator = load(dir.path(), architecture, greedy(4));
            assert_eq!(
                generator.reuses_prompt_prefixes(),
                architecture == Architecture::Llama,
                "{architecture}"
            );
            let req = request("s", "calm jazz please");
            let cold = generator.generate_with_stats(&req).unwrap();
            let warm = generator.generate_with_stats(&req).unwrap();
            assert_eq!(cold.text, warm.text, "{architecture}");
            if generator.reuses_prompt_prefixes() {
                assert!(warm.reused_prompt_tokens > 0, "{architecture}");
            } else {
                assert_eq!(warm.reused_prompt_tokens, 0, "{architecture}");
            }
        }
    }

    /// Logits of `prompt` read in one pass, and read in chunks of [`PREFILL_ALIGNMENT`].
    fn one_pass_and_chunked(generator: &LlamaGenerator, prompt: &[u32]) -> (Tensor, Tensor) {
        let aligned = (PREFILL_ALIGNMENT..prompt.len()).step_by(PREFILL_ALIGNMENT);
        super::one_pass_and_split(generator, prompt, aligned)
    }

    /// `file` with its matrices stored as Q8_0 blocks (as a quantized release stores them;
    /// norms stay F32), through candle's own quantizer and writer.
    fn quantized_q8_0(file: &GgufFile) -> Vec<u8> {
        let bytes = file.bytes();
        let mut reader = std::io::Cursor::new(&bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let mut tensors = Vec::new();
        for name in content.tensor_infos.keys() {
            let tensor = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
            let tensor = if tensor.shape().dims().len() == 2 {
                QTensor::quantize(&tensor.dequantize(&Device::Cpu).unwrap(), GgmlDType::Q8_0)
                    .unwrap()
            } else {
                tensor
            };
            tensors.push((name.clone(), tensor));
        }
        let metadata: Vec<(&str, &gguf_file::Value)> = content
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut out, &metadata, &tensors).unwrap();
        out.into_inner()
    }

    #[test]
    fn chunked_prefill_matches_one_pass_where_prefixes_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q8.gguf");
        fs_err::write(&path, quantized_q8_0(&tiny_llama_gguf())).unwrap();
        let generator = LlamaGenerator::from_gguf(&path, None, greedy(4)).unwrap();
        assert!(generator.reuses_prompt_prefixes());
        let messages = build_chat(&second_turn("s", "calm jazz"), &generator.params.prompt);
        let prompt = generator.prompt_ids(&messages).unwrap();
        assert!(prompt.len() > 3 * PREFILL_ALIGNMENT, "{}", prompt.len());
        let (one_pass, in_chunks) = one_pass_and_chunked(&generator, &prompt);
        assert_eq!(max_abs_diff(&one_pass, &in_chunks), 0.0);
        // The split the generator uses ends at message boundaries (anywhere, with our own
        // forward pass), where reading is exact too.
        assert!(matches!(generator.network, Network::Fast(_)));
        let split = generator.split(&messages, &prompt).unwrap();
        assert!(!split.points.is_empty(), "{split:?}");
        let (one_pass, at_messages) =
            super::one_pass_and_split(&generator, &prompt, split.points.clone());
        assert_eq!(max_abs_diff(&one_pass, &at_messages), 0.0);
        // For the record: with F32 matrices candle's matmul groups sums by the rows of a
        // pass, so chunks match one pass only to rounding.
        let f32_model = load(dir.path(), Architecture::Llama, greedy(4));
        let (one_pass, in_chunks) = one_pass_and_chunked(&f32_model, &prompt);
        let difference = max_abs_diff(&one_pass, &in_chunks);
        println!("F32 tiny Llama: chunked prefill vs one pass, max logit difference {difference}");
        assert!(difference < 1e-4, "{difference}");
    }

    #[test]
    fn gemma3_cannot_read_a_chunk_after_a_prefix_so_its_reuse_stays_off() {
        // If candle's Gemma 3 learns to (this fails then), its prefix reuse can be turned on.
        let dir = tempfile::tempdir().unwrap();
        let generator = load(dir.path(), Architecture::Gemma3, greedy(4));
        let prompt = generator
            .prompt_ids(&build_chat(&request("s", "jazz"), &generator.params.prompt))
            .unwrap();
        let network = &generator.network;
        let mut state = network.begin();
        network
            .forward(&Device::Cpu, &mut state, &prompt[..PREFILL_ALIGNMENT], 0)
            .unwrap();
        let chunk = network.forward(
            &Device::Cpu,
            &mut state,
            &prompt[PREFILL_ALIGNMENT..],
            PREFILL_ALIGNMENT,
        );
        assert!(chunk.is_err(), "candle's Gemma 3 now reads chunks");
    }

    #[test]
    fn a_locked_model_answers_concurrent_calls_as_sequential_ones() {
        let dir = tempfile::tempdir().unwrap();
        let generator = load(dir.path(), Architecture::Qwen2, greedy(5));
        let requests: Vec<GenerationRequest> = (0..4)
            .map(|i| request(&format!("s{i}"), &format!("song number {i}")))
            .collect();
        let sequential: Vec<String> = requests
            .iter()
            .map(|r| generator.generate_with_stats(r).unwrap().text)
            .collect();
        let concurrent: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = requests
                .iter()
                .map(|r| scope.spawn(|| generator.generate_with_stats(r).unwrap().text))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(sequential, concurrent);
    }

    #[test]
    fn an_unsupported_architecture_is_named_with_the_file_and_the_supported_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = tiny_llama_gguf();
        file.set("general.architecture", Meta::Str("mamba".into()));
        let path = write(dir.path(), &file);
        let err = LlamaGenerator::from_gguf(&path, None, LlamaParams::greedy())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: general.architecture: \"mamba\" is not supported (supported: llama, qwen2, \
                 qwen3, gemma3, phi3)",
                path.display()
            )
        );
    }

    #[test]
    fn a_model_without_a_template_falls_back_to_a_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let generator = load(dir.path(), Architecture::Llama, greedy(4));
        assert!(matches!(
            generator.chat_template(),
            PromptTemplate::BuiltIn(ChatTemplate::ChatMl { .. })
        ));
        // A broken template is an error naming the file and the line, not a fallback.
        let mut file = tiny_gguf(Architecture::Qwen2);
        file.set(
            "tokenizer.chat_template",
            Meta::Str("{% for m in messages %}\n{{ m.content }\n{% endfor %}".into()),
        );
        let path = write(dir.path(), &file);
        let err = LlamaGenerator::from_gguf(&path, None, LlamaParams::greedy())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("tokenizer.chat_template")
                && err.contains("line 2"),
            "{err}"
        );
    }

    /// The tiny tokenizer with Llama 3's header tokens.
    fn llama3_tokenizer() -> Tokenizer {
        let mut tokenizer = tiny_tokenizer();
        tokenizer
            .add_special_tokens(
                [
                    "<|begin_of_text|>",
                    "<|start_header_id|>",
                    "<|end_header_id|>",
                    "<|eot_id|>",
                ]
                .map(|t| AddedToken::from(t, true)),
            )
            .unwrap();
        tokenizer
    }

    #[test]
    fn jinja_llama3_and_chatml_templates_give_the_built_ins_tokens() {
        let dir = Path::new("/m");
        let messages = chatml_conversation();
        let llama = JinjaTemplate::new(
            crate::test_gguf::LLAMA32_TEMPLATE,
            &dir.join("tokenizer_config.json"),
            "chat_template",
            Some("<|begin_of_text|>".into()),
            Some("<|eot_id|>".into()),
        )
        .unwrap();
        let tokenizer = llama3_tokenizer();
        let ids = |text: String| tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        for add in [true, false] {
            let built_in = ids(ChatTemplate::llama31().render(&messages, add));
            assert_eq!(ids(llama.render(&messages, add).unwrap()), built_in);
            assert!(built_in.contains(&tokenizer.token_to_id("<|eot_id|>").unwrap()));
        }
        // ChatML with SmolLM2's real tokenizer, when shared/ has it.
        let Some(json) = shared_path(SMOL_TOKENIZER) else {
            return;
        };
        let tokenizer = Tokenizer::from_file(&json).unwrap();
        let chatml = JinjaTemplate::new(
            crate::test_gguf::SMOLLM2_TEMPLATE,
            &dir.join("tokenizer_config.json"),
            "chat_template",
            Some("<|im_start|>".into()),
            Some("<|im_end|>".into()),
        )
        .unwrap();
        let built_in = ChatTemplate::ChatMl {
            default_system: Some(
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into(),
            ),
        };
        let ids = |text: String| tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        for chat in [&messages[..], &messages[1..]] {
            assert_eq!(
                ids(chatml.render(chat, true).unwrap()),
                ids(built_in.render(chat, true))
            );
        }
        assert_eq!(ids(chatml.render(&messages, true).unwrap()), CHATML_IDS);
    }

    #[test]
    fn per_architecture_fields_are_checked_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        for (architecture, key, value) in [
            (Architecture::Qwen3, "qwen3.attention.key_length", None),
            (Architecture::Qwen3, "qwen3.rope.freq_base", None),
            (Architecture::Qwen2, "qwen2.context_length", None),
            (
                Architecture::Gemma3,
                "gemma3.attention.sliding_window_type",
                Some(Meta::U32(0)),
            ),
            (
                Architecture::Gemma3,
                "gemma3.attention.value_length",
                Some(Meta::U32(8)),
            ),
            (
                Architecture::Phi3,
                "phi3.rope.dimension_count",
                Some(Meta::U32(4)),
            ),
            (
                Architecture::Phi3,
                "phi3.feed_forward_length",
                Some(Meta::U32(48)),
            ),
        ] {
            let mut file = tiny_gguf(architecture);
            match value {
                Some(value) => file.set(key, value),
                None => file.remove(key),
            };
            let path = write(dir.path(), &file);
            let err = LlamaGenerator::from_gguf(&path, None, LlamaParams::greedy())
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains(&path.display().to_string()),
                "{architecture} {key}: {err}"
            );
        }
        for (architecture, tensor) in [
            (Architecture::Qwen2, "blk.1.attn_k.bias"),
            (Architecture::Qwen3, "blk.0.attn_q_norm.weight"),
            (Architecture::Gemma3, "blk.1.post_ffw_norm.weight"),
            (Architecture::Phi3, "output.weight"),
        ] {
            let mut file = tiny_gguf(architecture);
            file.tensors.retain(|t| t.name != tensor);
            let path = write(dir.path(), &file);
            let err = LlamaGenerator::from_gguf(&path, None, LlamaParams::greedy())
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(tensor) && err.contains("missing"),
                "{architecture} {tensor}: {err}"
            );
        }
    }
}

#[test]
fn decode_slots_follow_the_kv_budget() {
    // Small caches (the demo's ~12 MB): the most sequences, split between the threads.
    assert_eq!(decode_slots_per_thread(12 << 20, 2), MAX_DECODE_BATCH / 2);
    // Caches of a twentieth of the budget: 20 in all.
    assert_eq!(decode_slots_per_thread(DECODE_KV_BUDGET / 20, 2), 10);
    // A cache past the budget, or more threads than sequences: still one a thread.
    assert_eq!(decode_slots_per_thread(DECODE_KV_BUDGET * 2, 2), 1);
    assert_eq!(decode_slots_per_thread(1, 4 * MAX_DECODE_BATCH), 1);
    assert_eq!(decode_slots_per_thread(0, 1), MAX_DECODE_BATCH);
}
