//! Tests only: a small GGUF (version 3) writer with full control over every header field, so
//! tests can write well-formed files that declare hostile values.

use crate::model_check::Architecture;

/// A metadata value, written with its GGUF type code.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Meta {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

/// One tensor: candle-order dimensions (outermost first), ggml type code and raw data.
#[derive(Debug, Clone)]
pub(crate) struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub dtype: u32,
    pub offset: Option<u64>,
    pub data: Vec<u8>,
}

/// A GGUF file under construction.
#[derive(Debug, Clone, Default)]
pub(crate) struct GgufFile {
    pub metadata: Vec<(String, Meta)>,
    pub tensors: Vec<TensorSpec>,
}

const ALIGNMENT: usize = 32;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufFile {
    /// Sets (or replaces) a metadata entry.
    pub fn set(&mut self, key: &str, value: Meta) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Removes a metadata entry.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self
    }

    /// The tensor called `name`.
    pub fn tensor_mut(&mut self, name: &str) -> &mut TensorSpec {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    /// Adds an F32 tensor filled with small deterministic values.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], seed: u32) -> &mut Self {
        let count: u64 = dims.iter().product();
        let data = (0..count)
            .flat_map(|i| {
                let x = ((i as f32 + 1.0) * 0.618 + seed as f32 * 1.37).sin() * 0.2;
                x.to_le_bytes()
            })
            .collect();
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            dims: dims.to_vec(),
            dtype: 0,
            offset: None,
            data,
        });
        self
    }

    /// The file's bytes: header, metadata, tensor infos, padding, tensor data.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut out, key);
            let (code, payload) = match value {
                Meta::U32(v) => (4u32, v.to_le_bytes().to_vec()),
                Meta::I32(v) => (5, v.to_le_bytes().to_vec()),
                Meta::U64(v) => (10, v.to_le_bytes().to_vec()),
                Meta::F32(v) => (6, v.to_le_bytes().to_vec()),
                Meta::Str(s) => {
                    let mut p = Vec::new();
                    put_str(&mut p, s);
                    (8, p)
                }
                Meta::Strs(items) => {
                    let mut p = 8u32.to_le_bytes().to_vec();
                    p.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for s in items {
                        put_str(&mut p, s);
                    }
                    (9, p)
                }
                Meta::I32s(items) => {
                    let mut p = 5u32.to_le_bytes().to_vec();
                    p.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for v in items {
                        p.extend_from_slice(&v.to_le_bytes());
                    }
                    (9, p)
                }
            };
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&payload);
        }
        let mut offset = 0usize;
        let mut placed = Vec::new();
        for tensor in &self.tensors {
            put_str(&mut out, &tensor.name);
            out.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for dim in tensor.dims.iter().rev() {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.extend_from_slice(&tensor.dtype.to_le_bytes());
            out.extend_from_slice(&tensor.offset.unwrap_or(offset as u64).to_le_bytes());
            placed.push(offset);
            offset += tensor.data.len().div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
        let start = out.len();
        for (tensor, at) in self.tensors.iter().zip(placed) {
            out.resize(start + at, 0);
            out.extend_from_slice(&tensor.data);
        }
        out.resize(start + offset, 0);
        out
    }
}

/// The byte-level BPE vocabulary of the tiny models: the 256 byte symbols (sorted) and two
/// ChatML tokens.
pub(crate) fn tiny_vocabulary() -> Vec<String> {
    tiny_vocabulary_with(&["<|im_start|>", "<|im_end|>"])
}

/// The 256 byte symbols (GPT-2's byte-to-unicode map, sorted), then `specials` (ids 256...).
pub(crate) fn tiny_vocabulary_with(specials: &[&str]) -> Vec<String> {
    let mut alphabet: Vec<char> = (0u8..=255)
        .map(|b| {
            // GPT-2's byte-to-unicode map.
            let printable = (b'!'..=b'~').contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            if printable {
                char::from(b)
            } else {
                let shifted = (0u8..b)
                    .filter(|c| {
                        !((b'!'..=b'~').contains(c)
                            || (0xA1..=0xAC).contains(c)
                            || (0xAE..=0xFF).contains(c))
                    })
                    .count();
                char::from_u32(256 + shifted as u32).unwrap_or('?')
            }
        })
        .collect();
    alphabet.sort_unstable();
    let mut vocab: Vec<String> = alphabet.into_iter().map(String::from).collect();
    vocab.extend(specials.iter().map(|s| s.to_string()));
    vocab
}

/// A 2-layer Llama GGUF (hidden 32, 4 heads, 2 KV heads, feed-forward 64, vocabulary 258)
/// with F32 weights and a byte-level BPE tokenizer in its metadata.
pub(crate) fn tiny_llama_gguf() -> GgufFile {
    llama_gguf_sized(32, 64)
}

/// [`tiny_llama_gguf`] with another hidden size (a multiple of 4) and feed-forward size.
pub(crate) fn llama_gguf_sized(hidden: u64, ff: u64) -> GgufFile {
    let (vocab, kv) = (258u64, hidden / 2);
    let tokens = tiny_vocabulary();
    let mut types = vec![1i32; 256];
    types.extend([3, 3]);
    let mut file = GgufFile::default();
    file.set("general.architecture", Meta::Str("llama".into()))
        .set("llama.block_count", Meta::U32(2))
        .set("llama.context_length", Meta::U32(2048))
        .set("llama.embedding_length", Meta::U32(hidden as u32))
        .set("llama.feed_forward_length", Meta::U32(ff as u32))
        .set("llama.attention.head_count", Meta::U32(4))
        .set("llama.attention.head_count_kv", Meta::U32(2))
        .set("llama.rope.dimension_count", Meta::U32(hidden as u32 / 4))
        .set("llama.rope.freq_base", Meta::F32(10000.0))
        .set("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5))
        .set("tokenizer.ggml.model", Meta::Str("gpt2".into()))
        .set("tokenizer.ggml.pre", Meta::Str("gpt2".into()))
        .set("tokenizer.ggml.tokens", Meta::Strs(tokens))
        .set("tokenizer.ggml.token_type", Meta::I32s(types))
        .set("tokenizer.ggml.merges", Meta::Strs(Vec::new()))
        .set("tokenizer.ggml.eos_token_id", Meta::U32(257));
    file.add_f32("token_embd.weight", &[vocab, hidden], 1)
        .add_f32("output_norm.weight", &[hidden], 2)
        .add_f32("output.weight", &[vocab, hidden], 3);
    for layer in 0..2u32 {
        let p = format!("blk.{layer}");
        let seed = 10 * (layer + 1);
        file.add_f32(&format!("{p}.attn_q.weight"), &[hidden, hidden], seed)
            .add_f32(&format!("{p}.attn_k.weight"), &[kv, hidden], seed + 1)
            .add_f32(&format!("{p}.attn_v.weight"), &[kv, hidden], seed + 2)
            .add_f32(
                &format!("{p}.attn_output.weight"),
                &[hidden, hidden],
                seed + 3,
            )
            .add_f32(&format!("{p}.ffn_gate.weight"), &[ff, hidden], seed + 4)
            .add_f32(&format!("{p}.ffn_down.weight"), &[hidden, ff], seed + 5)
            .add_f32(&format!("{p}.ffn_up.weight"), &[ff, hidden], seed + 6)
            .add_f32(&format!("{p}.attn_norm.weight"), &[hidden], seed + 7)
            .add_f32(&format!("{p}.ffn_norm.weight"), &[hidden], seed + 8);
    }
    file
}

/// SmolLM2-135M-Instruct's chat template (its tokenizer_config.json): ChatML with a default
/// system message.
pub(crate) const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[cfg_attr(not(feature = "llama"), allow(dead_code))]
/// A Llama 3.1 / 3.2 style template: the system block with the knowledge-cutoff preamble and
/// a date from `strftime_now`, tools ignored (none are passed), contents trimmed.
pub(crate) const LLAMA32_TEMPLATE: &str = r#"{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- The system message goes into the system block. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- else %}
        {{- raise_exception("tool messages are not written by this test template") }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"#;

/// A Qwen2.5 style template: ChatML with Qwen's default system message.
pub(crate) const QWEN25_TEMPLATE: &str = r#"{%- if tools %}
    {{- raise_exception("no tools in this test template") }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- raise_exception("no tool calls in this test template") }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

/// A Qwen3 style template: the last user query found by walking the messages backwards, a
/// namespace, Python string methods, reasoning blocks, and `enable_thinking`.
pub(crate) const QWEN3_TEMPLATE: &str = r#"{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"#;

/// A Gemma 3 style template: no system role (the system message is folded into the first
/// user turn), `model` for the assistant, roles that must alternate.
pub(crate) const GEMMA3_TEMPLATE: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"#;

/// A Phi-3 mini style template: `<|role|>` headers, `<|end|>` closing each turn, and the
/// end-of-text token after the chat when no generation prompt is asked for.
pub(crate) const PHI3_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

/// What a tiny model of each architecture carries: its special tokens (ids from 256), the
/// ids of its BOS and EOS among them, and its chat template.
pub(crate) struct TinyFamily {
    pub specials: &'static [&'static str],
    pub bos: Option<u32>,
    pub eos: u32,
    pub template: &'static str,
}

/// The family of the tiny model of `architecture` (the Llama one is [`tiny_llama_gguf`]).
pub(crate) fn tiny_family(architecture: Architecture) -> TinyFamily {
    const CHATML: &[&str] = &["<|im_start|>", "<|im_end|>", "<|endoftext|>"];
    match architecture {
        Architecture::Qwen2 => TinyFamily {
            specials: CHATML,
            bos: None,
            eos: 257,
            template: QWEN25_TEMPLATE,
        },
        Architecture::Qwen3 => TinyFamily {
            specials: CHATML,
            bos: None,
            eos: 257,
            template: QWEN3_TEMPLATE,
        },
        Architecture::Gemma3 => TinyFamily {
            specials: &["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"],
            bos: Some(256),
            eos: 257,
            template: GEMMA3_TEMPLATE,
        },
        Architecture::Phi3 => TinyFamily {
            specials: &[
                "<s>",
                "<|endoftext|>",
                "<|system|>",
                "<|user|>",
                "<|assistant|>",
                "<|end|>",
            ],
            bos: Some(256),
            eos: 257,
            template: PHI3_TEMPLATE,
        },
        _ => TinyFamily {
            specials: &["<|im_start|>", "<|im_end|>"],
            bos: None,
            eos: 257,
            template: SMOLLM2_TEMPLATE,
        },
    }
}

/// A 2-layer GGUF of `architecture` (hidden 32, 4 heads, 2 KV heads, feed-forward 64; heads
/// of 16 for Qwen3 and Gemma 3, which declare their head size, of 8 otherwise) with F32
/// weights, a byte-level BPE tokenizer, its family's special tokens and chat template, with
/// every metadata key and tensor candle's quantized model of that architecture reads.
pub(crate) fn tiny_gguf(architecture: Architecture) -> GgufFile {
    if architecture == Architecture::Llama {
        return tiny_llama_gguf();
    }
    let arch = architecture.name();
    let family = tiny_family(architecture);
    let tokens = tiny_vocabulary_with(family.specials);
    let vocab = tokens.len() as u64;
    let (hidden, ff, heads, kv_heads) = (32u64, 64u64, 4u64, 2u64);
    let head_dim = match architecture {
        Architecture::Qwen3 | Architecture::Gemma3 => 16u64,
        _ => hidden / heads,
    };
    let (q, kv) = (heads * head_dim, kv_heads * head_dim);
    let mut types = vec![1i32; 256];
    types.extend(std::iter::repeat_n(3, family.specials.len()));
    let key = |name: &str| format!("{arch}.{name}");
    let mut file = GgufFile::default();
    file.set("general.architecture", Meta::Str(arch.into()))
        .set(&key("block_count"), Meta::U32(2))
        .set(&key("context_length"), Meta::U32(2048))
        .set(&key("embedding_length"), Meta::U32(hidden as u32))
        .set(&key("feed_forward_length"), Meta::U32(ff as u32))
        .set(&key("attention.head_count"), Meta::U32(heads as u32))
        .set(&key("attention.head_count_kv"), Meta::U32(kv_heads as u32))
        .set(&key("attention.layer_norm_rms_epsilon"), Meta::F32(1e-6))
        .set("tokenizer.ggml.model", Meta::Str("gpt2".into()))
        .set("tokenizer.ggml.pre", Meta::Str("gpt2".into()))
        .set("tokenizer.ggml.tokens", Meta::Strs(tokens))
        .set("tokenizer.ggml.token_type", Meta::I32s(types))
        .set("tokenizer.ggml.merges", Meta::Strs(Vec::new()))
        .set("tokenizer.ggml.eos_token_id", Meta::U32(family.eos))
        .set("tokenizer.chat_template", Meta::Str(family.template.into()));
    if let Some(bos) = family.bos {
        file.set("tokenizer.ggml.bos_token_id", Meta::U32(bos));
    }
    match architecture {
        Architecture::Qwen2 => {
            file.set(&key("rope.freq_base"), Meta::F32(1_000_000.0));
        }
        Architecture::Qwen3 => {
            file.set(&key("rope.freq_base"), Meta::F32(1_000_000.0))
                .set(&key("attention.key_length"), Meta::U32(head_dim as u32))
                .set(&key("attention.value_length"), Meta::U32(head_dim as u32));
        }
        Architecture::Gemma3 => {
            file.set(&key("rope.freq_base"), Meta::F32(1_000_000.0))
                .set(&key("rope.local_freq_base"), Meta::F32(10_000.0))
                .set(&key("attention.key_length"), Meta::U32(head_dim as u32))
                .set(&key("attention.value_length"), Meta::U32(head_dim as u32))
                .set(&key("attention.sliding_window"), Meta::U32(64));
        }
        Architecture::Phi3 => {
            file.set(&key("rope.dimension_count"), Meta::U32(head_dim as u32));
        }
        _ => {}
    }
    file.add_f32("token_embd.weight", &[vocab, hidden], 1)
        .add_f32("output_norm.weight", &[hidden], 2);
    // Qwen3 and Gemma 3 tie their output to the embedding here (candle falls back to it).
    if !matches!(architecture, Architecture::Qwen3 | Architecture::Gemma3) {
        file.add_f32("output.weight", &[vocab, hidden], 3);
    }
    for layer in 0..2u32 {
        let p = format!("blk.{layer}");
        let seed = 10 * (layer + 1);
        let name = |n: &str| format!("{p}.{n}");
        file.add_f32(&name("attn_norm.weight"), &[hidden], seed + 7)
            .add_f32(&name("ffn_norm.weight"), &[hidden], seed + 8)
            .add_f32(&name("attn_output.weight"), &[hidden, q], seed + 3)
            .add_f32(&name("ffn_down.weight"), &[hidden, ff], seed + 5);
        if architecture == Architecture::Phi3 {
            file.add_f32(&name("attn_qkv.weight"), &[q + 2 * kv, hidden], seed)
                .add_f32(&name("ffn_up.weight"), &[2 * ff, hidden], seed + 6);
            continue;
        }
        file.add_f32(&name("attn_q.weight"), &[q, hidden], seed)
            .add_f32(&name("attn_k.weight"), &[kv, hidden], seed + 1)
            .add_f32(&name("attn_v.weight"), &[kv, hidden], seed + 2)
            .add_f32(&name("ffn_gate.weight"), &[ff, hidden], seed + 4)
            .add_f32(&name("ffn_up.weight"), &[ff, hidden], seed + 6);
        match architecture {
            Architecture::Qwen2 => {
                file.add_f32(&name("attn_q.bias"), &[q], seed + 11)
                    .add_f32(&name("attn_k.bias"), &[kv], seed + 12)
                    .add_f32(&name("attn_v.bias"), &[kv], seed + 13);
            }
            Architecture::Qwen3 | Architecture::Gemma3 => {
                file.add_f32(&name("attn_q_norm.weight"), &[head_dim], seed + 14)
                    .add_f32(&name("attn_k_norm.weight"), &[head_dim], seed + 15);
            }
            _ => {}
        }
        if architecture == Architecture::Gemma3 {
            file.add_f32(&name("post_attention_norm.weight"), &[hidden], seed + 16)
                .add_f32(&name("post_ffw_norm.weight"), &[hidden], seed + 17);
        }
    }
    file
}
