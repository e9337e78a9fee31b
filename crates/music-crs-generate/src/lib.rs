//! # music-crs-generate
//!
//! The second stage of the music-crs pipeline: the natural-language reply that explains a
//! recommendation, behind one object-safe, `Send + Sync` [`Generator`] trait.
//!
//! - [`TemplateGenerator`] (always available, the offline default) writes grounded, varied
//!   replies without a model: title and artist, a tag/era/album detail, an echo of what the
//!   listener asked for, an apology when the track plainly misses, and an invitation to go on.
//! - `LlamaGenerator` (feature `llama`) runs a chat model on CPU with Candle: Llama
//!   safetensors checkpoints (e.g. the baseline's `meta-llama/Llama-3.2-1B-Instruct`,
//!   downloaded with the `hub` feature) or GGUF files of the `llama`, `qwen2`, `qwen3`,
//!   `gemma3` and `phi3` architectures (chosen by `general.architecture`; any other is refused
//!   by [`model_check`] before the weights load), prompted with the baseline's chat (see
//!   [`prompt`]) rendered by the model's own Jinja chat template (see [`chat_template`]; a
//!   model without one falls back to a built-in Llama 3 or ChatML template).
//!
//! [`GeneratorConfig`] describes either as serde data and [`build_generator`] builds it.
//!
//! [`Generator::generate_checked`] also says whether a reply is empty or degenerate (a loop
//! or one phrase over and over; [`reply_check`] defines both). The Llama generator reports
//! the check of the model's own text and, as `on_empty` / `on_degenerate` in
//! [`LlamaParams`] say (`"template"` or `"keep"`; defaults: an empty reply is replaced by the
//! template reply, a degenerate one kept), sends the template reply in its place.
//!
//! ```
//! use music_crs_core::{GenerationRequest, Track, TurnContext};
//! use music_crs_generate::{Generator, TemplateGenerator};
//!
//! let mut track = Track::new("t1", "Peace Piece", "Bill Evans");
//! track.tag_list = vec!["jazz".into(), "piano".into()];
//! let request = GenerationRequest {
//!     context: TurnContext::from_message("I want something calm for a rainy evening"),
//!     recommended: vec![track],
//!     played: vec![],
//! };
//! let generator = TemplateGenerator::default();
//! let reply = generator.generate(&request)?;
//! assert!(reply.contains("Peace Piece") && reply.contains("Bill Evans"));
//! assert_eq!(reply, generator.generate(&request)?); // deterministic
//! # Ok::<(), music_crs_generate::Error>(())
//! ```
//!
//! ## Crate features
//!
//! - `llama`: the Candle chat-model backend (`LlamaGenerator`): candle-core, candle-nn,
//!   candle-transformers, tokenizers and minijinja (chat templates). Local safetensors
//!   directories and GGUF files.
//! - `hub`: also download safetensors models from the Hugging Face hub (hf-hub, sync ureq).
//!   Without `llama` it only adds the dependency.
//! - `cuda`, `metal`: with `llama`, Candle's CUDA or Metal backend, so the model can run on an
//!   NVIDIA or Apple GPU (`LlamaParams::device`). Never on by default; `cuda` needs the CUDA
//!   toolkit (nvcc) to build. Without them a GPU device is an error naming the feature.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod chat_template;
mod config;
mod error;
mod generator;
#[cfg(feature = "llama")]
#[cfg_attr(docsrs, doc(cfg(feature = "llama")))]
pub mod llama;
pub mod model_check;
pub mod prompt;
pub mod reply_check;
mod request_cues;
mod template;
#[cfg(test)]
mod test_gguf;

pub use chat_template::ChatTemplate;
#[cfg(feature = "llama")]
#[cfg_attr(docsrs, doc(cfg(feature = "llama")))]
pub use chat_template::{JinjaTemplate, PromptTemplate};
pub use config::{
    DEFAULT_HUB_MODEL, DEFAULT_LLAMA_SEED, DEFAULT_MAX_CONTEXT_TOKENS, DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_PREFIX_CACHE_ENTRIES, DEFAULT_REPEAT_LAST_N, DEFAULT_REPEAT_PENALTY,
    DEFAULT_TEMPERATURE, DEFAULT_TOP_P, GeneratorConfig, LlamaConfig, LlamaParams, ModelSource,
    ReplyFallback, WeightDtype, build_generator,
};
pub use error::{Error, Result};
pub use generator::{CheckedReply, Generator};
#[cfg(feature = "llama")]
#[cfg_attr(docsrs, doc(cfg(feature = "llama")))]
pub use llama::LlamaGenerator;
pub use prompt::{ChatMessage, ChatRole, PromptParams, PromptStyle};
pub use template::{
    DEFAULT_ALTERNATIVE_RATE, DEFAULT_OPENER_RATE, DEFAULT_TEMPLATE_SEED, TemplateGenerator,
    TemplateParams,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn generators_are_send_sync_and_object_safe() {
        assert_send_sync::<TemplateGenerator>();
        assert_send_sync::<Box<dyn Generator>>();
        #[cfg(feature = "llama")]
        assert_send_sync::<LlamaGenerator>();
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
