//! Fast hashing for the id sets built while scoring (ids come from local files, so
//! DoS-resistant SipHash only costs time here), and repeated-id detection.

pub(crate) use rustc_hash::{FxHashMap as FastHashMap, FxHashSet as FastHashSet};

/// Every repeated id of a list: (its 1-based rank, the rank it first had), by rank.
pub(crate) fn repeats(ids: &[String]) -> Vec<(usize, usize)> {
    // A challenge list holds at most 20 ids: comparing pairs costs less than building a map,
    // and stays bounded since only short lists take this way.
    const SHORT: usize = 32;
    if ids.len() <= SHORT {
        return ids
            .iter()
            .enumerate()
            .filter_map(|(index, id)| {
                let first = ids[..index].iter().position(|earlier| earlier == id)?;
                Some((index + 1, first + 1))
            })
            .collect();
    }
    let mut first_rank: FastHashMap<&str, usize> = FastHashMap::default();
    let mut found = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        match first_rank.get(id.as_str()) {
            Some(&first) => found.push((index + 1, first)),
            None => {
                first_rank.insert(id, index + 1);
            }
        }
    }
    found
}

/// The first of [`repeats`].
pub(crate) fn first_repeat(ids: &[String]) -> Option<(usize, usize)> {
    repeats(ids).first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repeats_are_found_with_their_first_rank() {
        assert_eq!(first_repeat(&strings(&["a", "b", "c", "b"])), Some((4, 2)));
        assert_eq!(first_repeat(&strings(&["a", "b", "c"])), None);
        assert_eq!(repeats(&strings(&["a", "b", "a", "b"])), [(3, 1), (4, 2)]);
        let mut long: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        long.push("t70".to_owned());
        assert_eq!(first_repeat(&long), Some((101, 71)));
    }
}
