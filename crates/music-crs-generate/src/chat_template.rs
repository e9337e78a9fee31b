//! How a chat becomes the prompt text a model was trained on.
//!
//! A model's prompt is rendered from its own Jinja chat template (`tokenizer.chat_template`
//! of a GGUF file, `chat_template` of the `tokenizer_config.json` beside a safetensors
//! checkpoint) with minijinja, the way Hugging Face's `apply_chat_template` renders it
//! (`JinjaTemplate`, feature `llama`). Two built-in templates, [`ChatTemplate`] (Llama 3 and
//! ChatML, token-exact with their Jinja originals), serve a model that carries no template
//! (chosen from its special tokens, logged) or a configuration that names one
//! (`LlamaParams::chat_template`).

#[cfg(feature = "llama")]
mod jinja;

#[cfg(feature = "llama")]
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

#[cfg(feature = "llama")]
#[cfg_attr(docsrs, doc(cfg(feature = "llama")))]
pub use jinja::{JinjaTemplate, PINNED_DATE};

use crate::prompt::{ChatMessage, ChatRole};

/// The date Llama 3.1+ templates write when the caller gives none (their own fallback).
pub const DEFAULT_LLAMA3_DATE: &str = "26 Jul 2024";

/// How a chat is turned into the text a model was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChatTemplate {
    /// Llama 3 header tokens: `<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n
    /// ...<|eot_id|>`, contents trimmed. With `date` (Llama 3.1 and later) the system block
    /// always comes first and starts with the knowledge-cutoff preamble.
    Llama3 {
        /// `Today Date:` of the 3.1+ preamble; `None` for the Llama 3.0 template.
        #[serde(default)]
        date: Option<String>,
    },
    /// ChatML (`<|im_start|>role\n...<|im_end|>\n`), as SmolLM2 and Qwen use it.
    ChatMl {
        /// The system message added when a chat has none (SmolLM2's default).
        #[serde(default)]
        default_system: Option<String>,
    },
}

impl ChatTemplate {
    /// Llama 3.1 / 3.2 with the template's fallback date.
    pub fn llama31() -> Self {
        ChatTemplate::Llama3 {
            date: Some(DEFAULT_LLAMA3_DATE.to_string()),
        }
    }

    /// Picks the template from the special tokens a vocabulary has, when no template text
    /// is available.
    pub fn from_special_tokens(has_token: impl Fn(&str) -> bool) -> Option<Self> {
        if has_token("<|start_header_id|>") {
            Some(ChatTemplate::llama31())
        } else if has_token("<|im_start|>") {
            Some(ChatTemplate::ChatMl {
                default_system: None,
            })
        } else {
            None
        }
    }

    /// Tokens that end an assistant turn under this template.
    pub fn end_tokens(&self) -> &'static [&'static str] {
        match self {
            ChatTemplate::Llama3 { .. } => &["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"],
            ChatTemplate::ChatMl { .. } => &["<|im_end|>", "<|endoftext|>"],
        }
    }

    /// The prompt text, ending with the assistant header when `add_generation_prompt`.
    /// Special tokens are written out; encode it without adding special tokens.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        match self {
            ChatTemplate::Llama3 { date } => {
                render_llama3(messages, date.as_deref(), add_generation_prompt)
            }
            ChatTemplate::ChatMl { default_system } => {
                render_chatml(messages, default_system.as_deref(), add_generation_prompt)
            }
        }
    }
}

fn llama3_turn(out: &mut String, role: &str, content: &str) {
    out.push_str("<|start_header_id|>");
    out.push_str(role);
    out.push_str("<|end_header_id|>\n\n");
    out.push_str(content.trim());
    out.push_str("<|eot_id|>");
}

fn render_llama3(messages: &[ChatMessage], date: Option<&str>, add_generation: bool) -> String {
    let mut out = String::from("<|begin_of_text|>");
    let mut rest = messages;
    if let Some(date) = date {
        // 3.1+ templates pull a leading system message into a system block that is always
        // written, preceded by the knowledge-cutoff preamble.
        let system = match messages.first() {
            Some(first) if first.role == ChatRole::System => {
                rest = &messages[1..];
                first.content.trim()
            }
            _ => "",
        };
        out.push_str("<|start_header_id|>system<|end_header_id|>\n\n");
        out.push_str("Cutting Knowledge Date: December 2023\nToday Date: ");
        out.push_str(date);
        out.push_str("\n\n");
        out.push_str(system);
        out.push_str("<|eot_id|>");
    }
    for message in rest {
        llama3_turn(&mut out, message.role.as_str(), &message.content);
    }
    if add_generation {
        out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
    out
}

fn render_chatml(messages: &[ChatMessage], default_system: Option<&str>, add: bool) -> String {
    let mut out = String::new();
    let starts_with_system = messages.first().is_some_and(|m| m.role == ChatRole::System);
    if let (false, Some(system), false) = (starts_with_system, default_system, messages.is_empty())
    {
        push_chatml(&mut out, "system", system);
    }
    for message in messages {
        push_chatml(&mut out, message.role.as_str(), &message.content);
    }
    if add {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

fn push_chatml(out: &mut String, role: &str, content: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

/// The template a generator renders its prompts with.
#[cfg(feature = "llama")]
#[cfg_attr(docsrs, doc(cfg(feature = "llama")))]
#[derive(Debug)]
pub enum PromptTemplate {
    /// The model's own Jinja chat template.
    Jinja(Box<JinjaTemplate>),
    /// A built-in template: the one the settings name, or the fallback for a model that
    /// carries no template.
    BuiltIn(ChatTemplate),
}

#[cfg(feature = "llama")]
impl PromptTemplate {
    /// The messages as the template receives them: consecutive messages of one role joined
    /// when the model's template refuses them apart (see [`JinjaTemplate::new`]).
    pub fn prepare<'a>(&self, messages: &'a [ChatMessage]) -> Cow<'a, [ChatMessage]> {
        match self {
            PromptTemplate::Jinja(template) => template.prepare(messages),
            PromptTemplate::BuiltIn(_) => Cow::Borrowed(messages),
        }
    }

    /// The prompt text, ending with the assistant header when `add_generation_prompt`.
    /// Special tokens are written out; encode it without adding special tokens.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> crate::Result<String> {
        match self {
            PromptTemplate::Jinja(template) => template.render(messages, add_generation_prompt),
            PromptTemplate::BuiltIn(template) => {
                Ok(template.render(messages, add_generation_prompt))
            }
        }
    }

    /// The text the template writes right after an assistant message's content (e.g.
    /// `<|im_end|>\\n`, `<end_of_turn>\\n`), found by rendering a short chat; `None` when the
    /// template refuses it.
    pub fn after_assistant_turn(&self) -> Option<String> {
        const MARK: &str = "Mark7Xq";
        let chat = [
            ChatMessage::new(ChatRole::User, "Hello"),
            ChatMessage::new(ChatRole::Assistant, MARK),
        ];
        let text = self.render(&chat, false).ok()?;
        let at = text.rfind(MARK)? + MARK.len();
        Some(text[at..].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new(ChatRole::System, "Be brief. "),
            ChatMessage::new(ChatRole::User, "  jazz please\n"),
            ChatMessage::new(ChatRole::Assistant, "track_id: t1"),
        ]
    }

    #[test]
    fn llama32_renders_preamble_and_trims() {
        let text = ChatTemplate::llama31().render(&chat(), true);
        assert_eq!(
            text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
             Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
             Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n\
             jazz please<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n\
             track_id: t1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn llama30_has_no_preamble() {
        let text = ChatTemplate::Llama3 { date: None }.render(&chat()[..2], false);
        assert_eq!(
            text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\njazz please<|eot_id|>"
        );
    }

    #[test]
    fn chatml_keeps_content_and_adds_default_system_only_when_missing() {
        let template = ChatTemplate::ChatMl {
            default_system: Some("You are helpful".into()),
        };
        assert_eq!(
            template.render(&chat()[..2], true),
            "<|im_start|>system\nBe brief. <|im_end|>\n<|im_start|>user\n  jazz please\n<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(
            template.render(&chat()[1..2], false),
            "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\n  jazz please\n<|im_end|>\n"
        );
    }

    #[test]
    fn detection_from_special_tokens() {
        assert_eq!(
            ChatTemplate::from_special_tokens(|t| t == "<|im_start|>"),
            Some(ChatTemplate::ChatMl {
                default_system: None
            })
        );
        assert_eq!(
            ChatTemplate::from_special_tokens(|t| t == "<|start_header_id|>"),
            Some(ChatTemplate::llama31())
        );
        assert_eq!(ChatTemplate::from_special_tokens(|_| false), None);
    }
}
