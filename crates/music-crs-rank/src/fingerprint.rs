//! Fingerprints of channel configurations and of the feature set, recorded in a model file so
//! that applying the model with a channel or feature set it was not trained with is an error.
//!
//! A fingerprint is the 64-bit FNV-1a hash of a canonical JSON form of the value: object keys
//! sorted, no whitespace, numbers as serde_json writes them (shortest round-trip form). FNV-1a
//! is a fixed algorithm, so the same configuration gives the same fingerprint on every run,
//! platform and Rust version (`std`'s `DefaultHasher` promises none of that).

use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a channel and the fingerprint of its whole configuration, as a model records
/// them beside the channel's name and depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelFingerprint {
    /// The channel's `kind` (`continuity`, `bm25`, `fusion`...), kept apart so that a mismatch
    /// can say the kind changed rather than only that something did.
    pub kind: String,
    /// 16 hex digits: FNV-1a 64 of the canonical JSON of the channel's configuration, its
    /// defaults filled in (spelling out a default value does not change it).
    pub config: String,
}

/// The fingerprint (16 hex digits) of `value`'s canonical JSON form.
pub(crate) fn fingerprint<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising plain config structs cannot fail (string keys, no custom serialisers); a
    // failure still yields a fingerprint that matches nothing real rather than a panic.
    let canonical = match serde_json::to_value(value) {
        Ok(value) => {
            let mut out = String::new();
            write_canonical(&value, &mut out);
            out
        }
        Err(err) => format!("unserialisable: {err}"),
    };
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(canonical.as_bytes());
    format!("{:016x}", hasher.finish())
}

/// Writes `value` as compact JSON with every object's keys in byte order, whatever order the
/// map keeps them in (serde_json's `preserve_order` feature may be on somewhere in the tree).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter_and_values_do() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2.5], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": "s", "y": [1, 2.5]}, "b": 1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a": {"x": "s", "y": [2.5, 1]}, "b": 1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let mut canonical = String::new();
        write_canonical(&b, &mut canonical);
        assert_eq!(canonical, r#"{"a":{"x":"s","y":[1,2.5]},"b":1}"#);
    }

    #[test]
    fn fingerprints_are_fnv1a_of_the_canonical_text() {
        // Pinned values: a fingerprint written by one build must be what every later build
        // computes for the same value, or every saved model would look stale.
        assert_eq!(fingerprint(&Value::Null), "5b9bc4ba528108e4");
        assert_eq!(
            fingerprint(&serde_json::json!({"kind": "continuity", "depth": 3})),
            "ed5bcd9f9242e8cf"
        );
    }
}
