//! Serde machinery of the wire types: fields that may come as a JSON string or integer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Reads the string-or-integer fields `names` of a JSON object, borrowing where it can.
///
/// Unknown keys are skipped; a repeated key, or a value that is neither a string, an integer
/// nor `null`, is an error that names the field.
pub(crate) struct StrFields<const N: usize> {
    names: &'static [&'static str; N],
}

impl<const N: usize> StrFields<N> {
    pub(crate) fn new(names: &'static [&'static str; N]) -> Self {
        StrFields { names }
    }
}

impl<'de, const N: usize> Visitor<'de> for StrFields<N> {
    type Value = [Option<Cow<'de, str>>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out: [Option<Cow<'de, str>>; N] = std::array::from_fn(|_| None);
        let mut seen = [false; N];
        // Keys are matched where they lie: `Cow<str>` keys would allocate one String each.
        while let Some(key) = map.next_key_seed(KeyIndex(self.names))? {
            match key {
                Some(i) => {
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(de::Error::custom(format_args!(
                            "field `{}` appears twice",
                            self.names[i]
                        )));
                    }
                    out[i] = map.next_value_seed(Named(self.names[i]))?;
                }
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A key of a JSON object as its index in `names` (`None` for an unknown key).
struct KeyIndex<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> de::DeserializeSeed<'de> for KeyIndex<N> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for KeyIndex<N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(self.0.iter().position(|n| *n == v))
    }
}

/// A string-or-integer value of the field it names (`null` is `None`).
struct Named(&'static str);

impl<'de> de::DeserializeSeed<'de> for Named {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(StrOrInt(Some(self.0)))
    }
}

/// Deserializes a string, or an integer as its decimal string; anything else is an error.
pub(crate) fn str_or_int<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Cow<'de, str>, D::Error> {
    d.deserialize_any(StrOrInt(None))?
        .ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"a string or an integer"))
}

/// Like [`str_or_int`], with `null` meaning absent.
pub(crate) fn opt_str_or_int<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_option(StrOrInt(None))
}

/// The one visitor of string-or-integer values: a string (borrowed where it can), an integer
/// as its decimal string, `null` as `None`. Names its field in errors when it knows it.
struct StrOrInt(Option<&'static str>);

impl<'de> Visitor<'de> for StrOrInt {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, "a string or an integer for field `{field}`"),
            None => f.write_str("a string or an integer"),
        }
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
}
