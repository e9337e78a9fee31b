//! A `tokenizers` tokenizer rebuilt from the vocabulary a GGUF file carries, so a GGUF model
//! runs without a `tokenizer.json`.
//!
//! Supported: byte-level BPE (`tokenizer.ggml.model = "gpt2"`), the kind Llama 3, SmolLM2,
//! Qwen and most recent models use. The pre-tokenizer follows `tokenizer.ggml.pre`.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::{Error, Result};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The Llama 3 pre-tokenization pattern (`tokenizer.ggml.pre = "llama-bpe"`).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn metadata<'a>(content: &'a Content, key: &str, path: &Path) -> Result<&'a Value> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| bad(path, format!("no {key} in the GGUF metadata")))
}

fn strings(content: &Content, key: &str, path: &Path) -> Result<Vec<String>> {
    let values = metadata(content, key, path)?
        .to_vec()
        .map_err(|e| bad(path, format!("{key}: {e}")))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| bad(path, format!("{key}: {e}")))
        })
        .collect()
}

/// Builds the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata.
pub(crate) fn tokenizer_from_gguf(content: &Content, path: &Path) -> Result<Tokenizer> {
    let model = metadata(content, "tokenizer.ggml.model", path)?
        .to_string()
        .map_err(|e| bad(path, format!("tokenizer.ggml.model: {e}")))?;
    if model != "gpt2" {
        return Err(bad(
            path,
            format!(
                "its tokenizer model {model:?} cannot be rebuilt (only byte-level BPE, \"gpt2\"); pass a tokenizer.json"
            ),
        ));
    }
    let tokens = strings(content, "tokenizer.ggml.tokens", path)?;
    let merges = strings(content, "tokenizer.ggml.merges", path)?
        .into_iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| bad(path, format!("merge {merge:?} has no space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let token_types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(value) => value
            .to_vec()
            .map_err(|e| bad(path, format!("tokenizer.ggml.token_type: {e}")))?
            .iter()
            .map(|v| v.to_i32().unwrap_or(1))
            .collect(),
        None => vec![1; tokens.len()],
    };
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("gpt2");

    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), id as u32))
        .collect();
    let llama3 = matches!(pre, "llama-bpe" | "llama3" | "llama-v3");
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(llama3)
        .build()
        .map_err(|e| bad(path, format!("building the BPE model: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        _ if llama3 => {
            let split = Split::new(
                SplitPattern::Regex(LLAMA3_PATTERN.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| bad(path, format!("Llama 3 pre-tokenizer: {e}")))?;
            Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into()
        }
        // SmolLM / StarCoder style: digits one by one, then GPT-2 byte-level splitting.
        "smollm" | "starcoder" | "refact" => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        other => {
            if other != "gpt2" && other != "default" {
                tracing::warn!(
                    "{}: pre-tokenizer {other:?} unknown, using GPT-2 byte-level splitting",
                    path.display()
                );
            }
            ByteLevel::new(false, true, true).into()
        }
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let added = |wanted: i32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&token_types)
            .filter(|(_, kind)| **kind == wanted)
            .map(|(token, _)| AddedToken::from(token.clone(), special).normalized(false))
            .collect()
    };
    tokenizer
        .add_special_tokens(added(TOKEN_TYPE_CONTROL, true))
        .and_then(|_| tokenizer.add_tokens(added(TOKEN_TYPE_USER_DEFINED, false)))
        .map_err(|e| bad(path, format!("adding special tokens: {e}")))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use music_crs_core::shared::shared_path;

    use super::*;

    const SAMPLES: &[&str] = &[
        "Hello world!",
        "I want something mellow for a rainy evening, maybe some jazz piano.",
        "Recommended track: 'Peace Piece' by Bill Evans (1959), tags: jazz, piano, calm.",
        "  leading spaces, tabs\tand\nnew lines\n\n",
        "Numbers 1234567 and 3.14159, years 1990s and '80s.",
        "Ünïcödé: Sigur Rós, Beyoncé, Hoppípolla, 東京事変, 방탄소년단, Ђорђе, émoji 🎶🎸",
        "<|im_start|>user\nplay some rock<|im_end|>\n<|im_start|>assistant\n",
        "code: fn main() { println!(\"{}\", x); } // done",
        "don't won't it's y'all WE'RE",
    ];

    #[test]
    fn gguf_vocabulary_encodes_like_the_reference_tokenizer_json() {
        let Some(gguf) =
            shared_path("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        else {
            return;
        };
        let Some(json) = shared_path("models/SmolLM2-135M-Instruct/tokenizer.json") else {
            return;
        };
        let mut file = fs_err::File::open(&gguf).unwrap();
        let content = Content::read(&mut file).unwrap();
        let rebuilt = tokenizer_from_gguf(&content, &gguf).unwrap();
        let reference = Tokenizer::from_file(&json).unwrap();
        assert_eq!(rebuilt.get_vocab_size(true), reference.get_vocab_size(true));
        for text in SAMPLES {
            let ours = rebuilt.encode(*text, false).unwrap();
            let theirs = reference.encode(*text, false).unwrap();
            assert_eq!(ours.get_ids(), theirs.get_ids(), "{text:?}");
            assert_eq!(
                rebuilt.decode(ours.get_ids(), false).unwrap(),
                reference.decode(theirs.get_ids(), false).unwrap(),
                "{text:?}"
            );
        }
        // Special tokens are single ids and are skipped when decoding.
        let ids = rebuilt.encode("<|im_start|>hi<|im_end|>", false).unwrap();
        assert_eq!(ids.get_ids().first(), Some(&1));
        assert_eq!(ids.get_ids().last(), Some(&2));
        assert_eq!(rebuilt.decode(ids.get_ids(), true).unwrap(), "hi");
    }

    #[test]
    fn unsupported_tokenizer_model_names_the_file() {
        let mut content = Content {
            magic: candle_core::quantized::gguf_file::VersionedMagic::GgufV3,
            metadata: Default::default(),
            tensor_infos: Default::default(),
            tensor_data_offset: 0,
        };
        content
            .metadata
            .insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        let err = tokenizer_from_gguf(&content, Path::new("/m/x.gguf"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/m/x.gguf") && err.contains("tokenizer.json"),
            "{err}"
        );
    }
}
