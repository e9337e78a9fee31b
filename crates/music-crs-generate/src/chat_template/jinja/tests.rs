use super::*;
use crate::chat_template::{ChatTemplate, PromptTemplate};
use crate::test_gguf::{
    GEMMA3_TEMPLATE, LLAMA32_TEMPLATE, PHI3_TEMPLATE, QWEN3_TEMPLATE, QWEN25_TEMPLATE,
    SMOLLM2_TEMPLATE,
};

const SMOL_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

fn jinja(source: &str, bos: &str, eos: &str) -> JinjaTemplate {
    JinjaTemplate::new(
        source,
        Path::new("/m/model.gguf"),
        "tokenizer.chat_template",
        Some(bos.into()),
        Some(eos.into()),
    )
    .unwrap()
}

/// The crate's chat shape: system, user, a played track and a reply, user, the track.
fn chat() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(ChatRole::System, "Be brief. "),
        ChatMessage::new(ChatRole::User, "  jazz please\n"),
        ChatMessage::new(ChatRole::Assistant, "track_id: t0"),
        ChatMessage::new(ChatRole::Assistant, "Try this."),
        ChatMessage::new(ChatRole::User, "more"),
        ChatMessage::new(ChatRole::Assistant, "track_id: t1"),
    ]
}

#[test]
fn jinja_chatml_and_llama3_render_as_the_built_ins() {
    let smol = jinja(SMOLLM2_TEMPLATE, "<|im_start|>", "<|im_end|>");
    let built_in = ChatTemplate::ChatMl {
        default_system: Some(SMOL_SYSTEM.into()),
    };
    let llama = jinja(LLAMA32_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>");
    for chat in [chat(), chat()[1..].to_vec(), chat()[..2].to_vec()] {
        for add in [true, false] {
            assert_eq!(
                smol.render(&chat, add).unwrap(),
                built_in.render(&chat, add)
            );
            assert_eq!(
                llama.render(&chat, add).unwrap(),
                ChatTemplate::llama31().render(&chat, add)
            );
        }
    }
    assert!(!smol.joins_consecutive_roles() && !llama.joins_consecutive_roles());
}

#[test]
fn gemma_folds_the_system_message_and_joins_consecutive_turns() {
    let gemma = jinja(GEMMA3_TEMPLATE, "<bos>", "<eos>");
    // The template refuses two assistant turns in a row, so they are joined.
    assert!(gemma.joins_consecutive_roles());
    assert_eq!(
        gemma.render(&chat(), true).unwrap(),
        "<bos><start_of_turn>user\nBe brief. \n\njazz please<end_of_turn>\n\
         <start_of_turn>model\ntrack_id: t0\n\nTry this.<end_of_turn>\n\
         <start_of_turn>user\nmore<end_of_turn>\n\
         <start_of_turn>model\ntrack_id: t1<end_of_turn>\n<start_of_turn>model\n"
    );
    let end = PromptTemplate::Jinja(Box::new(gemma)).after_assistant_turn();
    assert_eq!(end.as_deref(), Some("<end_of_turn>\n"));
}

#[test]
fn qwen_and_phi_templates_render_with_python_methods_and_no_thinking() {
    let qwen3 = jinja(QWEN3_TEMPLATE, "", "<|im_end|>");
    let text = qwen3.render(&chat(), true).unwrap();
    assert!(
        text.starts_with("<|im_start|>system\nBe brief. <|im_end|>\n<|im_start|>user\n"),
        "{text}"
    );
    // The assistant turn after the last query carries an (empty) reasoning block, and the
    // generation prompt asks for no thinking.
    assert!(
        text.ends_with(
            "<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n\
             track_id: t1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        ),
        "{text}"
    );
    let qwen25 = jinja(QWEN25_TEMPLATE, "", "<|im_end|>");
    assert!(
        qwen25
            .render(&chat()[1..2], true)
            .unwrap()
            .starts_with("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    );
    let phi3 = jinja(PHI3_TEMPLATE, "<s>", "<|endoftext|>");
    assert_eq!(
        phi3.render(&chat()[..2], false).unwrap(),
        "<|system|>\nBe brief. <|end|>\n<|user|>\n  jazz please\n<|end|>\n<|endoftext|>"
    );
    let end = PromptTemplate::Jinja(Box::new(phi3)).after_assistant_turn();
    assert_eq!(end.as_deref(), Some("<|end|>\n<|endoftext|>"));
}

#[test]
fn template_errors_name_the_file_the_key_and_the_line() {
    let err = JinjaTemplate::new(
        "{{ bos_token }}\n{% for m in messages %}\n{{ m.content }\n{% endfor %}",
        Path::new("/m/model.gguf"),
        "tokenizer.chat_template",
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "/m/model.gguf: chat template (tokenizer.chat_template), line 3: syntax error"
        ),
        "{err}"
    );
    // A template that refuses every chat fails at load, with its own message.
    let err = JinjaTemplate::new(
        "{{ bos_token }}\n\n{{ raise_exception('System role not supported') }}",
        Path::new("/m/tokenizer_config.json"),
        "chat_template",
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/m/tokenizer_config.json: chat template (chat_template), line 3")
            && err.contains("System role not supported"),
        "{err}"
    );
    // One that refuses only some chats fails when rendering them.
    let picky = jinja(
        "{% if messages|length > 9 %}\n{{ raise_exception('too long') }}{% endif %}ok",
        "",
        "",
    );
    let long = vec![ChatMessage::new(ChatRole::User, "x"); 10];
    let err = picky.render(&long, true).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("too long"), "{err}");
}

#[test]
fn strftime_now_loop_controls_and_tojson_work() {
    let template = jinja(
        "{{ strftime_now('%d %b %Y|%Y-%m-%d %A %B %y %j %%') }}|\
         {% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m | tojson }}{% endfor %}|\
         {{ messages[0].content.strip().upper() }}|{{ messages[0].content.startswith('  jazz') }}",
        "",
        "",
    );
    let text = template.render(&chat()[1..], true).unwrap();
    assert_eq!(
        text,
        "26 Jul 2024|2024-07-26 Friday July 24 208 %|\
         {\"role\": \"user\", \"content\": \"  jazz please\\n\"}|JAZZ PLEASE|True"
    );
}
