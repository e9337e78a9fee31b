//! The two diversity metrics of the challenge.

use crate::fast_hash::FastHashSet;

/// Catalog diversity: distinct recommended ids ÷ `catalog_size`; 0 for an empty catalog.
///
/// Every id of every list counts (also ids past rank 20 or outside the catalog), as in the
/// official evaluator.
pub fn catalog_diversity<'a, I>(predicted_lists: I, catalog_size: usize) -> f64
where
    I: IntoIterator<Item = &'a [String]>,
{
    if catalog_size == 0 {
        return 0.0;
    }
    distinct_ids(predicted_lists) as f64 / catalog_size as f64
}

/// The number of distinct ids over all lists.
pub fn distinct_ids<'a, I>(predicted_lists: I) -> usize
where
    I: IntoIterator<Item = &'a [String]>,
{
    let mut seen: FastHashSet<&str> = FastHashSet::default();
    // The challenge catalog holds 47,071 ids: room for most of them avoids regrowing.
    seen.reserve(1 << 14);
    for list in predicted_lists {
        seen.extend(list.iter().map(String::as_str));
    }
    seen.len()
}

/// Whitespace as Python's `str.split()` sees it: Unicode `White_Space` plus the ASCII
/// separators U+001C..U+001F, which Python also splits on and Rust does not.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Lexical diversity, Distinct-2: lowercase each response, split it on whitespace, skip
/// responses with fewer than two tokens, then divide the distinct bigrams over all
/// responses by the number of bigrams; 0 when there is no bigram.
pub fn lexical_diversity<'a, I>(responses: I) -> f64
where
    I: IntoIterator<Item = &'a str>,
{
    distinct_n(responses, 2)
}

/// Distinct-n as [`lexical_diversity`] computes Distinct-2; 0 when `n` is 0 or there is
/// no n-gram.
pub fn distinct_n<'a, I>(responses: I, n: usize) -> f64
where
    I: IntoIterator<Item = &'a str>,
{
    if n == 0 {
        return 0.0;
    }
    // Every response lower-cased into one text and split into one token list (two buffers,
    // not two per response); `ends` marks where each response's tokens end.
    let mut lowered = String::new();
    let mut text_ends = Vec::new();
    for response in responses {
        if response.is_ascii() {
            // Same result as `to_lowercase` for ASCII, without a String per response.
            let start = lowered.len();
            lowered.push_str(response);
            lowered[start..].make_ascii_lowercase();
        } else {
            lowered.push_str(&response.to_lowercase());
        }
        text_ends.push(lowered.len());
    }
    let mut all_tokens: Vec<&str> = Vec::new();
    let mut ends = Vec::with_capacity(text_ends.len());
    let mut start = 0;
    for &end in &text_ends {
        all_tokens.extend(tokens(&lowered[start..end]));
        ends.push(all_tokens.len());
        start = end;
    }
    let mut distinct: FastHashSet<&[&str]> = FastHashSet::default();
    let mut total = 0_usize;
    let mut first = 0;
    for &end in &ends {
        let tokens = &all_tokens[first..end];
        first = end;
        if tokens.len() < n {
            continue;
        }
        for window in tokens.windows(n) {
            distinct.insert(window);
            total += 1;
        }
    }
    if total == 0 {
        0.0
    } else {
        distinct.len() as f64 / total as f64
    }
}

/// The tokens of an already lowercased response, split as Python's `str.split()` splits.
pub(crate) fn tokens(lowered: &str) -> impl Iterator<Item = &str> {
    lowered
        .split(is_python_whitespace)
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_two_lowercases_and_skips_short_responses() {
        // Bigrams: "a b", "b a", "a b" (case folded), "b c" → 3 distinct of 4.
        let responses = ["A b A", "a B c", "single", ""];
        assert_eq!(lexical_diversity(responses), 0.75);
        assert_eq!(lexical_diversity(["one", ""]), 0.0);
    }

    #[test]
    fn ascii_and_unicode_responses_fold_case_alike() {
        // "İ" lower-cases to two chars ("i̇"); mixing it with ASCII-only responses checks the
        // ASCII shortcut writes into the same text as the general path.
        assert_eq!(
            lexical_diversity(["ROCK ON", "rock on", "Äh ROCK", "äh rock"]),
            0.5
        );
        assert_eq!(lexical_diversity(["İ X", "i̇ x", "A B"]), 2.0 / 3.0);
    }

    #[test]
    fn bigrams_do_not_cross_responses() {
        assert_eq!(lexical_diversity(["a b", "c d"]), 1.0);
        assert_eq!(lexical_diversity(["a b", "a b"]), 0.5);
    }

    #[test]
    fn python_whitespace_includes_ascii_separators() {
        // U+001F splits in Python's str.split(); tabs and non-breaking spaces too.
        assert_eq!(lexical_diversity(["a\u{1f}b\tc\u{a0}d"]), 1.0);
        assert_eq!(distinct_n(["a\u{1f}b"], 2), 1.0);
    }

    #[test]
    fn catalog_diversity_counts_distinct_ids() {
        let lists = [
            vec!["a".to_string(), "b".to_string()],
            vec!["b".to_string(), "c".to_string()],
        ];
        let value = catalog_diversity(lists.iter().map(Vec::as_slice), 6);
        assert_eq!(value, 0.5);
        assert_eq!(catalog_diversity(lists.iter().map(Vec::as_slice), 0), 0.0);
    }
}
