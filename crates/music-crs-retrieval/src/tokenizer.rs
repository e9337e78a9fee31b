//! The bm25s tokenizer: lower-case, split on `(?u)\b\w\w+\b`, drop stop words.
//!
//! bm25s (the library of the official BM25 baseline) lower-cases the whole text with Python's
//! `str.lower`, then keeps every maximal run of two or more word characters, then drops the
//! runs found in its stop-word list (so stop words are matched after lower-casing). Python's
//! `\w` on `str` patterns is exactly the Unicode letters and numbers plus `_` (checked against
//! Python 3.11 / Unicode 14 for every code point), so the same runs are `[\p{L}\p{N}_]{2,}`.
//! Unlike Rust's `\w`, that class holds no combining marks: `"café"` written with a combining
//! accent splits into `caf` like it does in bm25s.

use std::collections::HashSet;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::hash::FxBuildHasher;
use crate::{Error, Result};

/// The English stop words of bm25s (`bm25s.stopwords.STOPWORDS_EN`, the NLTK-derived list its
/// `stopwords="en"` default uses), one per line.
pub const STOPWORDS_EN_TEXT: &str = include_str!("bm25/stopwords_en.txt");

/// Which stop words the tokenizer drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "words")]
pub enum StopWords {
    /// Keep every token.
    None,
    /// bm25s's English list ([`STOPWORDS_EN_TEXT`]), its default.
    #[default]
    English,
    /// A custom list; compared with tokens after lower-casing (when enabled).
    Custom(Vec<String>),
}

impl StopWords {
    /// The words of this list.
    pub fn words(&self) -> Vec<String> {
        match self {
            StopWords::None => Vec::new(),
            StopWords::English => STOPWORDS_EN_TEXT
                .lines()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
            StopWords::Custom(words) => words.clone(),
        }
    }
}

/// Tokenizer settings; the default is bm25s's `tokenize` default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerParams {
    /// Lower-case the text before splitting (bm25s: `lower=True`).
    pub lowercase: bool,
    /// The stop words dropped after splitting.
    pub stopwords: StopWords,
}

impl TokenizerParams {
    /// Default for [`TokenizerParams::lowercase`].
    pub const DEFAULT_LOWERCASE: bool = true;
}

impl Default for TokenizerParams {
    fn default() -> Self {
        TokenizerParams {
            lowercase: Self::DEFAULT_LOWERCASE,
            stopwords: StopWords::default(),
        }
    }
}

impl TokenizerParams {
    /// Checks the settings: custom stop words must be non-empty strings.
    pub fn validate(&self) -> Result<()> {
        if let StopWords::Custom(words) = &self.stopwords
            && words.iter().any(|w| w.is_empty())
        {
            return Err(Error::InvalidParameter {
                name: "tokenizer.stopwords",
                reason: "a custom stop word is the empty string".into(),
            });
        }
        Ok(())
    }
}

/// Splits text into BM25 terms exactly like bm25s's default `tokenize`.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    params: TokenizerParams,
    stopwords: HashSet<String, FxBuildHasher>,
    longest_stopword: usize,
    /// One Unicode letter or number: Python's non-ASCII `\w`.
    letter_or_number: Regex,
}

/// Python's `\w` on ASCII: `[A-Za-z0-9_]`.
const fn ascii_word_table() -> [bool; 128] {
    let mut table = [false; 128];
    let mut byte = 0;
    while byte < 128 {
        let c = byte as u8;
        table[byte] = c.is_ascii_alphanumeric() || c == b'_';
        byte += 1;
    }
    table
}

const ASCII_WORD: [bool; 128] = ascii_word_table();

impl Tokenizer {
    /// A tokenizer with these settings (validated).
    pub fn new(params: TokenizerParams) -> Result<Self> {
        params.validate()?;
        let stopwords: HashSet<String, FxBuildHasher> =
            params.stopwords.words().into_iter().collect();
        let longest_stopword = stopwords.iter().map(String::len).max().unwrap_or(0);
        let letter_or_number =
            Regex::new(r"^[\p{L}\p{N}]$").map_err(|e| Error::InvalidParameter {
                name: "tokenizer.pattern",
                reason: e.to_string(),
            })?;
        Ok(Tokenizer {
            params,
            stopwords,
            longest_stopword,
            letter_or_number,
        })
    }

    /// The settings.
    pub fn params(&self) -> &TokenizerParams {
        &self.params
    }

    /// The terms of `text`, in order, repeats kept.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        self.for_each_term(text, |term| terms.push(term.to_string()));
        terms
    }

    /// Calls `emit` with every term of `text`, in order, repeats kept.
    pub fn for_each_term(&self, text: &str, emit: impl FnMut(&str)) {
        self.for_each_term_in(text, &mut String::new(), emit);
    }

    /// [`Tokenizer::for_each_term`] lower-casing into `buffer`, so a caller tokenizing many
    /// texts (indexing a corpus) reuses one allocation.
    pub fn for_each_term_in(&self, text: &str, buffer: &mut String, mut emit: impl FnMut(&str)) {
        self.for_each_word_in(text, buffer, |word| {
            if !self.is_stopword(word) {
                emit(word);
            }
        });
    }

    /// Whether `word` (already lower-cased when enabled) is one of the dropped stop words.
    pub(crate) fn is_stopword(&self, word: &str) -> bool {
        word.len() <= self.longest_stopword && self.stopwords.contains(word)
    }

    /// Every word of `text` before stop-word removal: [`Tokenizer::for_each_term_in`] for
    /// a caller that drops stop words another way (a vocabulary that holds none).
    pub(crate) fn for_each_word_in(
        &self,
        text: &str,
        buffer: &mut String,
        mut keep: impl FnMut(&str),
    ) {
        let text = if !self.params.lowercase {
            text
        } else if text.is_ascii() {
            buffer.clear();
            buffer.push_str(text);
            buffer.make_ascii_lowercase();
            buffer.as_str()
        } else {
            // Full Unicode lower-casing, like Python's `str.lower` (e.g. final sigma).
            *buffer = text.to_lowercase();
            buffer.as_str()
        };
        // Maximal runs of >= 2 word characters are exactly the matches of `\b\w\w+\b`.
        let bytes = text.as_bytes();
        let mut run_start = None;
        let mut run_chars = 0usize;
        let mut at = 0;
        while at < bytes.len() {
            let byte = bytes[at];
            let (is_word, width) = if byte < 0x80 {
                (ASCII_WORD[usize::from(byte)], 1)
            } else {
                let c = text[at..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                (self.is_non_ascii_word_char(c), c.len_utf8())
            };
            if is_word {
                if run_start.is_none() {
                    run_start = Some(at);
                    run_chars = 0;
                }
                run_chars += 1;
            } else if let Some(start) = run_start.take()
                && run_chars >= 2
            {
                keep(&text[start..at]);
            }
            at += width;
        }
        if let Some(start) = run_start
            && run_chars >= 2
        {
            keep(&text[start..]);
        }
    }

    /// Python's `\w` for a non-ASCII character: a Unicode letter (L*) or number (N*).
    fn is_non_ascii_word_char(&self, c: char) -> bool {
        // Letters and numbers are all alphanumeric in Rust's sense; the converse fails only
        // for marks and symbols with the Other_Alphabetic property (e.g. Indic vowel signs).
        if !c.is_alphanumeric() {
            return false;
        }
        // Latin-1 Supplement and Latin Extended-A/B: every alphanumeric character is a letter.
        if ('\u{c0}'..='\u{24f}').contains(&c) {
            return true;
        }
        let mut buf = [0u8; 4];
        self.letter_or_number.is_match(c.encode_utf8(&mut buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_tokenizer() -> Tokenizer {
        Tokenizer::new(TokenizerParams::default()).unwrap()
    }

    #[test]
    fn splits_lowercases_and_drops_stopwords() {
        let tokens =
            default_tokenizer().tokenize("The Cure's \"A Forest\" (1980) - it's_ok, I love it!");
        assert_eq!(tokens, ["cure", "forest", "1980", "s_ok", "love"]);
    }

    #[test]
    fn stopwords_are_matched_after_lowercasing() {
        // "THE" lower-cases to the stop word "the"; without lower-casing it is kept.
        assert!(default_tokenizer().tokenize("THE And").is_empty());
        let keep_case = Tokenizer::new(TokenizerParams {
            lowercase: false,
            ..TokenizerParams::default()
        })
        .unwrap();
        assert_eq!(keep_case.tokenize("THE And the"), ["THE", "And"]);
    }

    #[test]
    fn unicode_follows_python_word_characters() {
        let tokenizer = default_tokenizer();
        // Letters of any script and numbers are word characters.
        assert_eq!(
            tokenizer.tokenize("Beyoncé ΣΟΦΟΣ 東京 ½½"),
            ["beyoncé", "σοφο\u{3c2}", "東京", "½½"]
        );
        // A combining accent (category Mn) is not a word character in Python: it splits.
        assert_eq!(tokenizer.tokenize("cafe\u{301}s"), ["cafe"]);
        // Indic vowel signs and circled letters are alphabetic in Rust but marks (Mc) and
        // symbols (So) in Python: they split words (outputs checked against bm25s).
        assert_eq!(
            tokenizer.tokenize("हिंदी गाने ελληνικά Ⓐbc ⅫⅫ x²y naïve ﬁne Straße"),
            ["ελληνικά", "bc", "ⅻⅻ", "x²y", "naïve", "ﬁne", "straße"]
        );
        // Emoji and curly quotes separate words.
        assert_eq!(tokenizer.tokenize("“love”🎵songs"), ["love", "songs"]);
    }

    #[test]
    fn single_characters_are_dropped() {
        assert_eq!(default_tokenizer().tokenize("a b c de f"), ["de"]);
        assert!(default_tokenizer().tokenize("").is_empty());
    }

    #[test]
    fn english_list_has_the_bm25s_words() {
        let words = StopWords::English.words();
        assert_eq!(words.len(), 33);
        assert!(words.contains(&"with".to_string()));
    }

    #[test]
    fn empty_custom_stopword_is_rejected() {
        let err = Tokenizer::new(TokenizerParams {
            stopwords: StopWords::Custom(vec![String::new()]),
            ..TokenizerParams::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("tokenizer.stopwords"), "{err}");
    }
}
