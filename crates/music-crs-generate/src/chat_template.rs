//! Chat templates of the model families we run, rendered exactly as their
//! `tokenizer_config.json` templates render them.

use serde::{Deserialize, Serialize};

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

    /// Picks the template from a Jinja chat template source (the `chat_template` of a
    /// `tokenizer_config.json`, or `tokenizer.chat_template` of a GGUF file).
    pub fn from_jinja(source: &str) -> Option<Self> {
        if source.contains("<|start_header_id|>") {
            let dated = source.contains("Cutting Knowledge Date");
            Some(ChatTemplate::Llama3 {
                date: dated.then(|| DEFAULT_LLAMA3_DATE.to_string()),
            })
        } else if source.contains("<|im_start|>") {
            Some(ChatTemplate::ChatMl {
                default_system: default_chatml_system(source),
            })
        } else {
            None
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

/// The literal default system message of a ChatML template, e.g. SmolLM2's
/// `{{ '<|im_start|>system\nYou are ...<|im_end|>\n' }}`.
fn default_chatml_system(source: &str) -> Option<String> {
    let marker = "'<|im_start|>system\n";
    let start = source.find(marker)? + marker.len();
    let end = source[start..].find("<|im_end|>")?;
    Some(source[start..start + end].to_string())
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
    fn detection_from_template_sources() {
        let smol = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}";
        assert_eq!(
            ChatTemplate::from_jinja(smol),
            Some(ChatTemplate::ChatMl {
                default_system: Some(
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into()
                )
            })
        );
        let llama = "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
        assert_eq!(
            ChatTemplate::from_jinja(llama),
            Some(ChatTemplate::llama31())
        );
        assert_eq!(ChatTemplate::from_jinja("{{ messages }}"), None);
        assert_eq!(
            ChatTemplate::from_special_tokens(|t| t == "<|im_start|>"),
            Some(ChatTemplate::ChatMl {
                default_system: None
            })
        );
    }
}
