//! A tiny phrase grammar for the template banks: literal text, `{slot}` placeholders and
//! `[a|b|c]` choices, nestable (`[a|]` makes a part optional).
//!
//! A choice only picks among alternatives whose every slot has a value, so one pattern can
//! mention optional metadata (album, year, a second tag) without ever printing a hole. Slot
//! values are inserted as they are, never parsed, so braces or brackets inside catalog text
//! are not read as syntax. Small independent choices multiply: that, not padding, is where
//! the phrasing variety comes from.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One parsed piece of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Node<'a> {
    Text(&'a str),
    Slot(&'a str),
    Choice(Vec<Vec<Node<'a>>>),
}

/// Where slot values and macros (named sub-patterns) come from.
pub(super) trait Values {
    /// The value of `name`, or `None` when the slot is empty.
    fn value(&self, name: &str) -> Option<&str>;
    /// The pattern a macro slot stands for (`{track}` → the ways to name a track).
    fn pattern(&self, name: &str) -> Option<&'static str>;
    /// True when the value of `name` may get a capital first letter at the start of a
    /// sentence (template-made or typed by the listener; catalog names keep their case).
    fn capitalise(&self, _name: &str) -> bool {
        false
    }
}

/// Parses `pattern` into a sequence of nodes. An unclosed `{` is text; an unclosed choice
/// ends with the pattern.
fn parse(pattern: &str) -> Vec<Node<'_>> {
    let (nodes, _) = parse_sequence(pattern, 0, false);
    nodes
}

/// Parses from byte `start` until the end, or (inside a choice) an unnested `|` or `]`.
/// Returns the nodes and the byte index where parsing stopped.
fn parse_sequence(pattern: &str, start: usize, nested: bool) -> (Vec<Node<'_>>, usize) {
    let bytes = pattern.as_bytes();
    let mut nodes = Vec::new();
    let mut text_start = start;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                if let Some(len) = pattern[i + 1..].find('}') {
                    if text_start < i {
                        nodes.push(Node::Text(&pattern[text_start..i]));
                    }
                    nodes.push(Node::Slot(&pattern[i + 1..i + 1 + len]));
                    i += len + 2;
                    text_start = i;
                } else {
                    i += 1;
                }
            }
            b'[' => {
                if text_start < i {
                    nodes.push(Node::Text(&pattern[text_start..i]));
                }
                let mut alternatives = Vec::new();
                let mut j = i + 1;
                loop {
                    let (alternative, stop) = parse_sequence(pattern, j, true);
                    alternatives.push(alternative);
                    match bytes.get(stop) {
                        Some(b'|') => j = stop + 1,
                        // `]` closes the choice; the end of the pattern closes it too.
                        _ => {
                            i = (stop + 1).min(bytes.len());
                            break;
                        }
                    }
                }
                nodes.push(Node::Choice(alternatives));
                text_start = i;
            }
            b'|' | b']' if nested => {
                if text_start < i {
                    nodes.push(Node::Text(&pattern[text_start..i]));
                }
                return (nodes, i);
            }
            _ => i += 1,
        }
    }
    if text_start < bytes.len() {
        nodes.push(Node::Text(&pattern[text_start..]));
    }
    (nodes, bytes.len())
}

/// True when some expansion of `nodes` has a value for every slot it uses.
fn fillable(nodes: &[Node<'_>], values: &dyn Values, depth: usize) -> bool {
    nodes.iter().all(|node| match node {
        Node::Text(_) => true,
        Node::Slot(name) => slot_fillable(name, values, depth),
        Node::Choice(alternatives) => alternatives
            .iter()
            .any(|alternative| fillable(alternative, values, depth)),
    })
}

/// Macros may refer to other macros; a cycle (a bug in the banks) stops here as unfillable.
const MAX_DEPTH: usize = 8;

fn slot_fillable(name: &str, values: &dyn Values, depth: usize) -> bool {
    match values.pattern(name) {
        Some(pattern) => depth < MAX_DEPTH && fillable(&parse(pattern), values, depth + 1),
        None => values.value(name).is_some(),
    }
}

/// The slot names `pattern` uses, and whether its brackets and braces are balanced.
#[cfg(test)]
pub(super) fn slot_names(pattern: &str) -> (Vec<&str>, bool) {
    fn collect<'a>(nodes: &[Node<'a>], names: &mut Vec<&'a str>) {
        for node in nodes {
            match node {
                Node::Text(_) => {}
                Node::Slot(name) => names.push(name),
                Node::Choice(alternatives) => {
                    alternatives.iter().for_each(|a| collect(a, names));
                }
            }
        }
    }
    let mut names = Vec::new();
    collect(&parse(pattern), &mut names);
    let mut depth = 0i32;
    let mut balanced = true;
    for c in pattern.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '|' if depth == 0 => balanced = false,
            _ => {}
        }
        balanced &= depth >= 0;
    }
    let braces = pattern.matches('{').count() == pattern.matches('}').count();
    (names, balanced && depth == 0 && braces)
}

/// How many distinct wordings `nodes` can produce with `values` (0 when it cannot be filled).
fn variants(nodes: &[Node<'_>], values: &dyn Values, depth: usize) -> f64 {
    nodes.iter().fold(1.0, |product, node| {
        product
            * match node {
                Node::Text(_) => 1.0,
                Node::Slot(name) => match values.pattern(name) {
                    Some(pattern) if depth < MAX_DEPTH => {
                        variants(&parse(pattern), values, depth + 1)
                    }
                    Some(_) => 0.0,
                    None => f64::from(u8::from(values.value(name).is_some())),
                },
                Node::Choice(alternatives) => alternatives
                    .iter()
                    .map(|alternative| variants(alternative, values, depth))
                    .sum(),
            }
    })
}

/// How many distinct wordings `pattern` has with `values` (0 when it cannot be filled).
pub(super) fn variant_count(pattern: &str, values: &dyn Values) -> f64 {
    variants(&parse(pattern), values, 0)
}

/// True when `pattern` can be expanded with `values`.
#[cfg(test)]
fn can_expand(pattern: &str, values: &dyn Values) -> bool {
    fillable(&parse(pattern), values, 0)
}

/// One expansion of `pattern`, choices drawn from `rng`; `None` when a slot has no value on
/// every path.
pub(super) fn expand(pattern: &str, values: &dyn Values, rng: &mut ChaCha8Rng) -> Option<String> {
    let nodes = parse(pattern);
    if !fillable(&nodes, values, 0) {
        return None;
    }
    let mut out = String::with_capacity(pattern.len() + 64);
    write(&nodes, values, rng, &mut out, 0);
    Some(out.trim_end_matches(' ').to_string())
}

fn write(
    nodes: &[Node<'_>],
    values: &dyn Values,
    rng: &mut ChaCha8Rng,
    out: &mut String,
    depth: usize,
) {
    for node in nodes {
        match node {
            Node::Text(text) => push_text(out, text),
            Node::Slot(name) => match values.pattern(name) {
                Some(pattern) if depth < MAX_DEPTH => {
                    write(&parse(pattern), values, rng, out, depth + 1);
                }
                Some(_) => {}
                None => {
                    let value = values.value(name).unwrap_or_default();
                    if out.is_empty() && values.capitalise(name) {
                        let mut chars = value.chars();
                        out.extend(chars.next().into_iter().flat_map(char::to_uppercase));
                        out.push_str(chars.as_str());
                    } else {
                        out.push_str(value);
                    }
                }
            },
            Node::Choice(alternatives) => {
                let open: Vec<&Vec<Node<'_>>> = alternatives
                    .iter()
                    .filter(|alternative| fillable(alternative, values, depth))
                    .collect();
                if !open.is_empty() {
                    let chosen = open[rng.random_range(0..open.len())];
                    write(chosen, values, rng, out, depth);
                }
            }
        }
    }
}

/// Appends template text, dropping the doubled space or the space before punctuation that
/// an empty optional part leaves behind, and a full stop right after one. Slot values are trimmed and never end in a space,
/// so only template spaces are removed and catalog text passes through untouched.
fn push_text(out: &mut String, text: &str) {
    let mut text = text;
    if out.is_empty() || out.ends_with(' ') {
        text = text.trim_start_matches(' ');
    }
    if out.ends_with(' ') && text.starts_with([',', '.', '?', '!', ';', ':']) {
        out.pop();
    }
    // A title ending in "." or "…" already closes the sentence.
    if text.starts_with('.') && out.ends_with(['.', '…', '!', '?']) {
        text = &text[1..];
    }
    out.push_str(text);
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rand::SeedableRng;

    use super::*;

    struct Map(
        HashMap<&'static str, &'static str>,
        Vec<(&'static str, &'static str)>,
    );

    impl Values for Map {
        fn value(&self, name: &str) -> Option<&str> {
            self.0.get(name).copied()
        }
        fn pattern(&self, name: &str) -> Option<&'static str> {
            self.1.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
        }
    }

    fn values() -> Map {
        Map(
            HashMap::from([("title", "Song {x} [y]"), ("artist", "Band")]),
            vec![("track", "[\"{title}\" by {artist}|{artist}: \"{title}\"]")],
        )
    }

    #[test]
    fn choices_skip_alternatives_with_empty_slots() {
        let values = values();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let out = expand("Try {track}[ from {album}| now]!", &values, &mut rng).unwrap();
            assert!(out.ends_with("now!"), "{out}");
            assert!(
                out.contains("Song {x} [y]") && out.contains("Band"),
                "{out}"
            );
        }
        assert_eq!(expand("It's on {album}.", &values, &mut rng), None);
        assert!(!can_expand("[{album}|{year}]", &values));
        assert!(can_expand("[{album}|{artist}]", &values));
        assert_eq!(variant_count("[a|b] [c|d|] {track}", &values), 12.0);
        assert_eq!(variant_count("[a|{album}] {artist}", &values), 1.0);
        assert_eq!(variant_count("{album}", &values), 0.0);
    }

    #[test]
    fn every_alternative_is_reachable_and_optional_parts_leave_no_gaps() {
        let values = values();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let seen: HashSet<String> = (0..200)
            .map(|_| expand("[Hi|Hello [there|you]] [friend|].", &values, &mut rng).unwrap())
            .collect();
        let expected: HashSet<String> = [
            "Hi friend.",
            "Hi.",
            "Hello there friend.",
            "Hello there.",
            "Hello you friend.",
            "Hello you.",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn unbalanced_syntax_is_text() {
        let values = values();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(expand("a {b", &values, &mut rng).as_deref(), Some("a {b"));
        assert_eq!(expand("[a|b", &values, &mut rng).map(|s| s.len()), Some(1));
    }
}
