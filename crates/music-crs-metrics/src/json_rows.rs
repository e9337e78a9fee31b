//! Prediction and ground-truth files read straight into typed rows: one pass of serde over
//! the text, no `serde_json::Value` tree (whose per-row maps dominated the time on large
//! files). A field of the wrong type is kept as a [`Loose`] value, so that every problem of
//! every row can still be reported with what was found.

use std::fmt;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::{Error, Result};

/// A JSON value a row field holds, whatever its type; objects are skipped, not kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Loose {
    Null,
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer.
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Loose>),
    Object,
}

impl Loose {
    /// The JSON type, as a user would name it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Loose::Null => "null",
            Loose::Bool(_) => "a boolean",
            Loose::UInt(_) | Loose::Int(_) => "an integer",
            Loose::Float(_) => "a number",
            Loose::Str(_) => "a string",
            Loose::Array(_) => "an array",
            Loose::Object => "an object",
        }
    }

    /// A number as JSON writes it (`None` for other types).
    fn number_text(&self) -> Option<String> {
        match self {
            Loose::UInt(n) => Some(n.to_string()),
            Loose::Int(n) => Some(n.to_string()),
            Loose::Float(x) => Some(
                serde_json::Number::from_f64(*x).map_or_else(|| x.to_string(), |n| n.to_string()),
            ),
            _ => None,
        }
    }

    /// A short description of a wrong value: its type, and the value when it is small.
    pub(crate) fn describe(&self) -> String {
        match self {
            Loose::Str(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
            other => match other.number_text() {
                Some(n) => format!("{} {n}", other.type_name()),
                None => other.type_name().to_owned(),
            },
        }
    }

    /// A turn number: a non-negative integer that fits in `u32`.
    pub(crate) fn turn_number(&self) -> std::result::Result<u32, String> {
        if let Loose::UInt(n) = self
            && let Ok(turn) = u32::try_from(*n)
        {
            return Ok(turn);
        }
        Err(match self.number_text() {
            Some(n) => format!("turn_number must be a non-negative integer, found {n}"),
            None => format!("turn_number must be an integer, found {}", self.type_name()),
        })
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Loose, E> {
        Ok(Loose::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Loose, E> {
        Ok(Loose::UInt(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Loose, E> {
        Ok(u64::try_from(v).map_or(Loose::Int(v), Loose::UInt))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Loose, E> {
        Ok(Loose::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Loose, E> {
        Ok(Loose::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Loose, E> {
        Ok(Loose::Str(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Loose, E> {
        Ok(Loose::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Loose, E> {
        Ok(Loose::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Loose, D::Error> {
        Loose::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Loose, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Loose::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// The fields a prediction or ground-truth row may hold; others are skipped. A repeated key
/// keeps its last value, as a JSON object read into a map does.
#[derive(Debug, Default)]
pub(crate) struct RowFields {
    pub(crate) session_id: Option<Loose>,
    pub(crate) user_id: Option<Loose>,
    pub(crate) turn_number: Option<Loose>,
    pub(crate) predicted_track_ids: Option<Loose>,
    pub(crate) predicted_response: Option<Loose>,
    pub(crate) ground_truth_track_id: Option<Loose>,
}

/// One element of the top-level array: an object's fields, or the type of anything else.
#[derive(Debug)]
pub(crate) enum JsonRow {
    Object(RowFields),
    NotObject(&'static str),
}

enum Key {
    SessionId,
    UserId,
    TurnNumber,
    PredictedTrackIds,
    PredictedResponse,
    GroundTruthTrackId,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Key, E> {
                Ok(match v {
                    "session_id" => Key::SessionId,
                    "user_id" => Key::UserId,
                    "turn_number" => Key::TurnNumber,
                    "predicted_track_ids" => Key::PredictedTrackIds,
                    "predicted_response" => Key::PredictedResponse,
                    "ground_truth_track_id" => Key::GroundTruthTrackId,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = JsonRow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonRow, A::Error> {
        let mut fields = RowFields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::SessionId => &mut fields.session_id,
                Key::UserId => &mut fields.user_id,
                Key::TurnNumber => &mut fields.turn_number,
                Key::PredictedTrackIds => &mut fields.predicted_track_ids,
                Key::PredictedResponse => &mut fields.predicted_response,
                Key::GroundTruthTrackId => &mut fields.ground_truth_track_id,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(JsonRow::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<JsonRow, A::Error> {
        LooseVisitor
            .visit_seq(seq)
            .map(|v| JsonRow::NotObject(v.type_name()))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<JsonRow, E> {
        Ok(JsonRow::NotObject("a boolean"))
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<JsonRow, E> {
        Ok(JsonRow::NotObject("an integer"))
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<JsonRow, E> {
        Ok(JsonRow::NotObject("an integer"))
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<JsonRow, E> {
        Ok(JsonRow::NotObject("a number"))
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<JsonRow, E> {
        Ok(JsonRow::NotObject("a string"))
    }

    fn visit_unit<E>(self) -> std::result::Result<JsonRow, E> {
        Ok(JsonRow::NotObject("null"))
    }
}

impl<'de> Deserialize<'de> for JsonRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(RowVisitor)
    }
}

/// The top level: an array whose rows are handed to `each` as they are read (no tree of the
/// whole file is built), or the type found instead.
struct TopLevel<F>(F);

impl<'de, F: FnMut(JsonRow)> DeserializeSeed<'de> for TopLevel<F> {
    /// `Ok(rows)` for an array, `Err(type)` for anything else.
    type Value = std::result::Result<usize, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(JsonRow)> Visitor<'de> for TopLevel<F> {
    type Value = std::result::Result<usize, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(
        mut self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut rows = 0;
        while let Some(row) = seq.next_element()? {
            (self.0)(row);
            rows += 1;
        }
        Ok(Ok(rows))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
        LooseVisitor.visit_map(map).map(|_| Err("an object"))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(Err("an integer"))
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(Err("an integer"))
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(Err("a string"))
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(Err("null"))
    }
}

/// Reads `text` as a JSON array of rows, handing each row to `each` in order; returns the
/// number of rows. Errors name `source_name` (and serde_json's line and column).
pub(crate) fn for_each_row(
    text: &str,
    source_name: &str,
    each: impl FnMut(JsonRow),
) -> Result<usize> {
    if text.trim().is_empty() {
        return Err(Error::EmptyJson {
            source_name: source_name.to_owned(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let json_error = |err: serde_json::Error| Error::json(source_name, &err);
    let top = TopLevel(each)
        .deserialize(&mut deserializer)
        .map_err(json_error)?;
    deserializer.end().map_err(json_error)?;
    top.map_err(|found| Error::NotAnArray {
        source_name: source_name.to_owned(),
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptions of the `serde_json::Value` reader this module replaced.
    fn value_describe(value: &serde_json::Value) -> String {
        use serde_json::Value;
        let name = match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        match value {
            Value::Number(n) => format!("{name} {n}"),
            Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
            _ => name.to_owned(),
        }
    }

    #[test]
    fn values_are_described_as_the_json_reader_did() {
        for text in [
            "null",
            "true",
            "0",
            "7",
            "-3",
            "18446744073709551615",
            "1.5",
            "1e300",
            "-0.0",
            "2.0",
            "\"short\"",
            "\"a string that is much longer than forty characters, surely\"",
            "[1, \"a\"]",
            "{\"k\": [1]}",
        ] {
            let loose: Loose = serde_json::from_str(text).unwrap();
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(loose.describe(), value_describe(&value), "{text}");
        }
    }

    #[test]
    fn turn_numbers_are_checked() {
        let turn = |text: &str| serde_json::from_str::<Loose>(text).unwrap().turn_number();
        assert_eq!(turn("3"), Ok(3));
        assert_eq!(
            turn("-1").unwrap_err(),
            "turn_number must be a non-negative integer, found -1"
        );
        assert_eq!(
            turn("4294967296").unwrap_err(),
            "turn_number must be a non-negative integer, found 4294967296"
        );
        assert_eq!(
            turn("1.5").unwrap_err(),
            "turn_number must be a non-negative integer, found 1.5"
        );
        assert_eq!(
            turn("\"1\"").unwrap_err(),
            "turn_number must be an integer, found a string"
        );
    }

    #[test]
    fn rows_keep_known_fields_and_the_last_of_a_repeated_key() {
        let mut rows = Vec::new();
        let count = for_each_row(
            r#"[{"session_id": "a", "x": {"deep": [1, {"y": 2}]}, "session_id": "b",
                 "turn_number": 2}, 7, [1], null]"#,
            "p.json",
            |row| rows.push(row),
        )
        .unwrap();
        assert_eq!(count, 4);
        let JsonRow::Object(fields) = &rows[0] else {
            panic!("{rows:?}")
        };
        assert_eq!(fields.session_id, Some(Loose::Str("b".into())));
        assert_eq!(fields.turn_number, Some(Loose::UInt(2)));
        assert!(fields.user_id.is_none());
        let others: Vec<&str> = rows[1..]
            .iter()
            .map(|r| match r {
                JsonRow::NotObject(found) => *found,
                JsonRow::Object(_) => "an object",
            })
            .collect();
        assert_eq!(others, ["an integer", "an array", "null"]);
    }

    #[test]
    fn the_top_level_must_be_an_array() {
        let parse_rows = |text: &str, name: &str| for_each_row(text, name, |_| {});
        let err = parse_rows("  ", "p.json").unwrap_err().to_string();
        assert!(err.contains("p.json: the file is empty"), "{err}");
        let err = parse_rows(r#"{"a": 1}"#, "p.json").unwrap_err().to_string();
        assert!(
            err.contains("expected a JSON array of rows, found an object"),
            "{err}"
        );
        let err = parse_rows("[{\"a\": 1}", "p.json").unwrap_err().to_string();
        assert!(err.contains("truncated JSON at line 1"), "{err}");
        let err = parse_rows("[1] x", "p.json").unwrap_err().to_string();
        assert!(err.contains("invalid JSON at line 1, column 5"), "{err}");
    }
}
