//! LLM replies end to end (`--features llama`): SmolLM2-135M-Instruct (GGUF) from
//! `../shared/models` answers a few demo turns through the whole pipeline.

use music_crs::CrsConfig;
use music_crs::build_crs;
use music_crs::config::{GeneratorConfig, LlamaParams, ModelSource, SplitKind};
use music_crs_core::shared::shared_path;

use crate::common::{demo_config, load};

/// The shipped `demo_bm25_smollm2` config on the demo test split, with the SmolLM2 GGUF from
/// `../shared` and `params` adjusted; `None` (the test skips) when `../shared` is absent.
fn smollm2_config(adjust: impl FnOnce(&mut LlamaParams)) -> Option<CrsConfig> {
    let gguf = shared_path("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")?;
    let tokenizer = shared_path("models/SmolLM2-135M-Instruct/tokenizer.json")?;
    let shipped = CrsConfig::load("config/demo_bm25_smollm2.toml").unwrap();
    let GeneratorConfig::Llama(mut llama) = shipped.generator else {
        panic!("demo_bm25_smollm2 is not a llama config");
    };
    llama.model = ModelSource::Gguf {
        path: gguf,
        tokenizer: Some(tokenizer),
    };
    adjust(&mut llama.params);
    Some(CrsConfig {
        generator: GeneratorConfig::Llama(llama),
        ..demo_config("test", SplitKind::Full)
    })
}

#[test]
fn smollm2_config_replies_on_demo_turns() {
    let Some(config) = smollm2_config(|params| params.max_new_tokens = 16) else {
        return;
    };
    let (data, mut turns) = load(&config);
    turns.truncate(2);
    let crs = build_crs(&config, &data).unwrap();
    assert_eq!(crs.retriever_name(), "bm25");
    let predictions = crs.predict(&turns).unwrap();
    assert_eq!(predictions.len(), 2);
    for prediction in &predictions {
        assert!(!prediction.predicted_response.trim().is_empty());
        assert_eq!(prediction.predicted_track_ids.len(), 20);
    }
    // Greedy decoding: the same turn gives the same reply.
    let again = crs.predict(&turns[..1]).unwrap();
    assert_eq!(
        again[0].predicted_response,
        predictions[0].predicted_response
    );
}

#[test]
fn a_turn_too_long_for_the_context_is_answered_in_run_and_chat() {
    // A small context: the system prompt (~230 tokens), a short reply and little else.
    let Some(config) = smollm2_config(|params| {
        params.max_new_tokens = 8;
        params.max_context_tokens = 400;
    }) else {
        return;
    };
    let (data, mut turns) = load(&config);
    turns.truncate(3);
    // One turn far too long for the context: before, it aborted the whole run.
    turns[1].user_message = "play me something calm with soft piano please ".repeat(300);
    let crs = build_crs(&config, &data).unwrap();
    let predictions = crs.predict(&turns).unwrap();
    assert_eq!(predictions.len(), 3);
    for prediction in &predictions {
        assert!(!prediction.predicted_response.trim().is_empty());
    }
    // The chat REPL and the HTTP API answer through `Conversation::say`.
    let mut conversation = music_crs::Conversation::new("chat", "");
    let reply = conversation
        .say(&crs, &"an endless request for jazz ".repeat(300))
        .unwrap();
    assert!(!reply.response.trim().is_empty());
}
