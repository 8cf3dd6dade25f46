//! Integers that may arrive as JSON strings (`"5"`), as protojson accepts for every integer
//! field. Serialisation always writes numbers.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

/// The pattern a string-encoded integer must match (Pachyderm's integer rule).
#[cfg_attr(not(feature = "schema"), allow(dead_code))]
pub const INT_STRING_PATTERN: &str = "^(0|-?[1-9][0-9]*)$";

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn convert<E: de::Error>(v: i128) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for IntVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, or a string holding a decimal integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::convert(i128::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::convert(i128::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let ok = v == "0"
            || (v
                .strip_prefix('-')
                .unwrap_or(v)
                .starts_with(|c: char| ('1'..='9').contains(&c))
                && v.strip_prefix('-')
                    .unwrap_or(v)
                    .bytes()
                    .all(|b| b.is_ascii_digit()));
        if !ok || v.len() > 30 {
            return Err(E::custom(format!(
                "invalid integer {v:?}: expected a decimal integer"
            )));
        }
        let n: i128 = v
            .parse()
            .map_err(|_| E::custom(format!("invalid integer {v:?}")))?;
        Self::convert(n)
    }
}

/// An integer field.
pub(crate) fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    d.deserialize_any(IntVisitor(PhantomData))
}

/// An optional integer field.
pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    struct Wrap<T>(T);
    impl<'de, T: TryFrom<i128>> serde::Deserialize<'de> for Wrap<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            int(d).map(Wrap)
        }
    }
    Ok(<Option<Wrap<T>> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
}

/// A list of integers.
pub(crate) fn vec_int<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    struct Wrap<T>(T);
    impl<'de, T: TryFrom<i128>> serde::Deserialize<'de> for Wrap<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            int(d).map(Wrap)
        }
    }
    Ok(<Vec<Wrap<T>> as serde::Deserialize>::deserialize(d)?
        .into_iter()
        .map(|w| w.0)
        .collect())
}

/// Schema of an integer field: a JSON integer or a string holding one.
#[cfg(feature = "schema")]
pub(crate) struct IntSchema;

#[cfg(feature = "schema")]
impl schemars::JsonSchema for IntSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Integer".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An integer, or a string holding a decimal integer (protojson form).",
            "type": ["integer", "string"],
            "pattern": INT_STRING_PATTERN
        })
    }
}
