//! The two phases of generation timed apart, for speed comparisons with other engines (the
//! llama.cpp peer's `--phases` measurement): reading a prompt, then decoding token by token.

use std::time::Instant;

use candle_transformers::generation::{LogitsProcessor, Sampling};

use super::{LlamaGenerator, model_error, tokenizer_error};
use crate::{Error, Result};

/// How long each phase of one generation took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseTimes {
    /// Prompt tokens read in one pass.
    pub prompt_tokens: usize,
    /// Seconds spent reading them (the prompt's logits included).
    pub prompt_seconds: f64,
    /// Tokens decoded after the prompt, one forward pass each.
    pub decoded_tokens: usize,
    /// Seconds spent decoding them.
    pub decode_seconds: f64,
}

impl PhaseTimes {
    /// Prompt tokens read per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_seconds.max(f64::MIN_POSITIVE)
    }

    /// Tokens decoded per second.
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.decoded_tokens as f64 / self.decode_seconds.max(f64::MIN_POSITIVE)
    }
}

impl LlamaGenerator {
    /// The token ids of plain text (no chat template, no special tokens added).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(tokenizer_error("encoding text"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Fails when a call of `needed` prompt plus reply tokens exceeds the context limit.
    pub(super) fn check_fits(&self, needed: usize) -> Result<()> {
        if needed > self.context_limit {
            return Err(Error::PromptTooLong {
                session_id: String::new(),
                turn_number: 0,
                tokens: needed,
                limit: self.context_limit,
            });
        }
        Ok(())
    }

    /// Times reading `prompt` cold (no prefix reuse, one pass) and then decoding
    /// `decode_tokens` greedy tokens one at a time, end tokens included: the same work on
    /// every engine, whatever the model would have said.
    pub fn time_phases(&self, prompt: &[u32], decode_tokens: usize) -> Result<PhaseTimes> {
        if prompt.is_empty() {
            return Err(Error::InvalidParameter {
                name: "prompt",
                reason: "a phase timing needs at least one prompt token".into(),
            });
        }
        self.check_fits(prompt.len() + decode_tokens)?;
        let mut sampler = LogitsProcessor::from_sampling(0, Sampling::ArgMax);
        let mut state = self.network.begin();
        let timed = (|| {
            let started = Instant::now();
            let mut logits = self
                .network
                .forward(&self.device, &mut state, prompt, 0)
                .map_err(model_error("reading the prompt"))?;
            let prompt_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            for position in prompt.len()..prompt.len() + decode_tokens {
                let next = sampler
                    .sample(&logits)
                    .map_err(model_error("sampling a token"))?;
                logits = self
                    .network
                    .forward(&self.device, &mut state, &[next], position)
                    .map_err(model_error("decoding"))?;
            }
            Ok::<_, Error>((prompt_seconds, started.elapsed().as_secs_f64()))
        })();
        self.network.finish(state);
        let (prompt_seconds, decode_seconds) = timed?;
        Ok(PhaseTimes {
            prompt_tokens: prompt.len(),
            prompt_seconds,
            decoded_tokens: decode_tokens,
            decode_seconds,
        })
    }
}
