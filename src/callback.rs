//! Push mode: parsing the platform's callback.

use std::borrow::Cow;

use serde::{Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::wire::StrFields;

/// The exact answer to a callback that was accepted.
pub const CALLBACK_ACK: &str = r#"{"code":"0"}"#;

/// The largest callback body accepted, in bytes.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// A result pushed by the platform to the template's callback address.
///
/// A callback carries no signature: before trusting it, confirm it with
/// [`Client::confirm_callback`](crate::Client::confirm_callback), or use a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Callback {
    /// The user's phone number.
    pub mobile: String,
    /// The number the SMS was sent to.
    pub sender: String,
    /// When the user sent the SMS.
    #[serde(rename = "sendTime")]
    pub send_time: String,
    /// The code the SMS carried.
    pub code: String,
    /// The SMS text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// When the SMS reached the platform.
    #[serde(rename = "deliverTime", skip_serializing_if = "Option::is_none")]
    pub deliver_time: Option<String>,
    /// Why the verification failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

/// Parses a callback body.
///
/// Required and non-empty: `mobile`, `sender`, `sendTime`, `code`. Optional: `content`,
/// `deliverTime`, `err` (`null` means absent). A field may be a JSON string or an integer (which
/// becomes its decimal string); any other type is a decode error that names the field. Bodies
/// over 64 KiB and invalid UTF-8 are decode errors.
///
/// ```
/// let cb = fotp::parse_callback(
///     br#"{"mobile":8613800000000,"sender":"1008611","sendTime":"2025-05-15 11:23:34","code":"5776"}"#,
/// ).unwrap();
/// assert_eq!(cb.mobile, "8613800000000");
/// assert_eq!(cb.content, None);
/// ```
pub fn parse_callback(body: &[u8]) -> Result<Callback> {
    let r = parse(body);
    if let Err(e) = &r {
        if crate::logging::enabled(log::Level::Info, crate::logging::CALLBACK) {
            // The parser's own words can quote the body: the reason says what was wrong only.
            let reason = if e.message().starts_with("invalid callback body: ")
                && !e.message().contains("UTF-8")
            {
                "invalid callback body: not a JSON object of string or integer fields"
            } else {
                e.message()
            };
            crate::logging::emit(
                log::Level::Info,
                crate::logging::CALLBACK,
                &[
                    ("event", "refused".into()),
                    ("reason", reason.into()),
                    ("bytes", body.len().into()),
                ],
                format_args!("callback refused: {reason}"),
            );
        }
    }
    r
}

fn parse(body: &[u8]) -> Result<Callback> {
    if body.len() > MAX_CALLBACK_BYTES {
        return Err(Error::decode(format!(
            "callback body is {} bytes, over the limit of {MAX_CALLBACK_BYTES}",
            body.len()
        )));
    }
    // One UTF-8 check of the whole body, instead of one per string inside the parser.
    let text = std::str::from_utf8(body).map_err(|e| {
        Error::decode(format!(
            "invalid callback body: not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let [mobile, sender, send_time, code, content, deliver_time, err] = match fast_fields(text) {
        Some(fields) => fields,
        None => exact_fields(text)?,
    };
    let required = |v: Option<String>, name: &str| -> Result<String> {
        match v {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(Error::decode(format!(
                "callback field `{name}` must not be empty"
            ))),
            None => Err(Error::decode(format!("callback field `{name}` is missing"))),
        }
    };
    Ok(Callback {
        mobile: required(mobile, "mobile")?,
        sender: required(sender, "sender")?,
        send_time: required(send_time, "sendTime")?,
        code: required(code, "code")?,
        content,
        deliver_time,
        err,
    })
}

const NAMES: [&str; 7] = [
    "mobile",
    "sender",
    "sendTime",
    "code",
    "content",
    "deliverTime",
    "err",
];

/// The fields of a plain callback in one pass over the (UTF-8 checked) text, each decoded
/// straight into a String of its exact size.
///
/// It takes only a strict subset of JSON: an object whose known fields are strings, unsigned
/// integers or `null`, and whose unknown fields are too. For anything
/// else (an error, another type, nesting, a repeated field, an escaped key, a `\u` surrogate
/// that is not a valid pair) it returns `None` and [`exact_fields`] decides: every rule and
/// every error message stays serde_json's. The unit tests and a property test check that the
/// two agree wherever this one answers.
fn fast_fields(text: &str) -> Option<[Option<String>; 7]> {
    let mut sc = Scan {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut out: [Option<String>; 7] = Default::default();
    let mut seen = [false; 7];
    sc.ws();
    sc.eat(b'{')?;
    sc.ws();
    if sc.eat(b'}').is_none() {
        loop {
            let (key, escaped) = sc.string()?;
            if escaped {
                return None;
            }
            sc.ws();
            sc.eat(b':')?;
            sc.ws();
            let field = NAMES.iter().position(|n| *n == key);
            let value = sc.value(field.is_some())?;
            if let Some(i) = field {
                if std::mem::replace(&mut seen[i], true) {
                    return None;
                }
                out[i] = value;
            }
            sc.ws();
            match sc.next()? {
                b',' => sc.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    sc.ws();
    (sc.at == sc.bytes.len()).then_some(out)
}

/// A cursor over the callback text for [`fast_fields`].
struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    /// Skips JSON whitespace (exactly these four bytes, as serde_json).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// Steps over `want` if it comes next.
    fn eat(&mut self, want: u8) -> Option<()> {
        (*self.bytes.get(self.at)? == want).then(|| self.at += 1)
    }

    /// A string: its raw inside and whether it holds escapes. `None` at a control character
    /// (refused by JSON) or the end of the text.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            // The next quote or backslash (SIMD search), with no control character before it.
            let rest = self.bytes.get(self.at..)?;
            let run = memchr::memchr2(b'"', b'\\', rest)?;
            if has_control(&rest[..run]) {
                return None;
            }
            self.at += run;
            match *self.bytes.get(self.at)? {
                b'"' => {
                    // Both ends are ASCII quotes: char boundaries of the checked text.
                    let inner = &self.text[start..self.at];
                    self.at += 1;
                    return Some((inner, escaped));
                }
                // The escaped byte is skipped (so `\"` does not end the string); the escape
                // itself is checked when it is decoded.
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                _ => return None,
            }
        }
    }

    /// A value as the string-or-integer visitor would give it (`Some(None)` for a known
    /// field's `null`); `None` for anything left to the exact path. An unknown field's value
    /// is checked the same way, then dropped.
    fn value(&mut self, known: bool) -> Option<Option<String>> {
        match *self.bytes.get(self.at)? {
            b'"' => {
                let (inner, escaped) = self.string()?;
                if !escaped {
                    return Some(known.then(|| inner.to_owned()));
                }
                unescape(inner).map(|s| known.then_some(s))
            }
            b'0'..=b'9' => {
                let start = self.at;
                while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let digits = &self.text[start..self.at];
                // A fraction, an exponent or a leading zero: the exact path decides.
                let plain = !matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'))
                    && (digits == "0" || !digits.starts_with('0'));
                // Past u64 serde_json reads a float: refused there. Otherwise the text of a
                // plain JSON integer is its decimal string.
                (plain && digits.parse::<u64>().is_ok()).then(|| known.then(|| digits.to_owned()))
            }
            b'n' => (self.bytes.get(self.at..self.at + 4)? == b"null").then(|| {
                self.at += 4;
                None
            }),
            _ => None,
        }
    }
}

/// True when `b` holds a control character (JSON strings may not). No early exit, so that the
/// compiler checks many bytes per instruction.
fn has_control(b: &[u8]) -> bool {
    b.iter().fold(false, |found, &c| found | (c < 0x20))
}

/// The characters of a JSON string's inside (between its quotes) with its escapes decoded,
/// in one allocation of the exact upper bound; `None` for an escape JSON does not allow or a
/// `\u` surrogate that is not a valid pair (serde_json refuses those too).
fn unescape(inner: &str) -> Option<String> {
    fn hex4(s: Option<&str>) -> Option<u32> {
        let s = s?;
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let (ch, used) = match rest.as_bytes().get(i + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => match hex4(rest.get(i + 2..i + 6))? {
                lead @ 0xD800..=0xDBFF => {
                    if rest.get(i + 6..i + 8)? != "\\u" {
                        return None;
                    }
                    let trail = hex4(rest.get(i + 8..i + 12))?;
                    if !(0xDC00..=0xDFFF).contains(&trail) {
                        return None;
                    }
                    let c = 0x1_0000 + ((lead - 0xD800) << 10) + (trail - 0xDC00);
                    (char::from_u32(c)?, 12)
                }
                0xDC00..=0xDFFF => return None,
                n => (char::from_u32(n)?, 6),
            },
            _ => return None,
        };
        out.push(ch);
        rest = rest.get(i + used..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// The fields through serde with the wire's string-or-integer visitor: the reference for every
/// rule, and the error of a body the fast path does not take.
fn exact_fields(text: &str) -> Result<[Option<String>; 7]> {
    let mut de = serde_json::Deserializer::from_str(text);
    let fields = de
        .deserialize_map(StrFields::new(&NAMES))
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::decode(format!("invalid callback body: {e}")))?;
    Ok(fields.map(|f| f.map(Cow::into_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const SEED: &[u8] = include_bytes!("../tests/data/callback.json");

    fn decode_err(body: &[u8]) -> Error {
        let e = parse_callback(body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
        e
    }

    #[test]
    fn seed_callback_with_emoji_and_newlines() {
        let cb = parse_callback(SEED).unwrap();
        assert_eq!(cb.mobile, "8615711666132");
        assert_eq!(cb.sender, "1008611");
        assert_eq!(cb.send_time, "2025-05-15 11:23:34");
        assert_eq!(cb.code, "5776");
        assert_eq!(cb.deliver_time.as_deref(), Some("2025-05-15 11:24:24"));
        let content = cb.content.unwrap();
        assert!(content.starts_with("🔐 Exclusive Access Unlocked!\nYour VIP Key: ##FG5x-5776##"));
        assert_eq!(content.lines().count(), 6);
        assert_eq!(cb.err, None);
    }

    #[test]
    fn ack_matches_vector() {
        let v = include_str!("../tests/data/callback-ack.json");
        assert_eq!(v.trim(), CALLBACK_ACK);
    }

    #[test]
    fn integers_become_strings_and_null_is_absent() {
        let cb = parse_callback(
            br#"{"mobile":8615711666132,"sender":1008611,"sendTime":"t","code":5776,
                 "content":null,"deliverTime":null,"err":42}"#,
        )
        .unwrap();
        assert_eq!(cb.mobile, "8615711666132");
        assert_eq!(cb.sender, "1008611");
        assert_eq!(cb.code, "5776");
        assert_eq!(cb.content, None);
        assert_eq!(cb.deliver_time, None);
        assert_eq!(cb.err.as_deref(), Some("42"));
    }

    #[test]
    fn each_required_field_missing_empty_or_null() {
        for field in ["mobile", "sender", "sendTime", "code"] {
            let mut v: serde_json::Value = serde_json::from_slice(SEED).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove(field);
            let e = decode_err(v.to_string().as_bytes());
            assert!(
                e.message().contains(field) && e.message().contains("missing"),
                "{e}"
            );
            v.as_object_mut().unwrap().insert(field.into(), "".into());
            let e = decode_err(v.to_string().as_bytes());
            assert!(
                e.message().contains(field) && e.message().contains("empty"),
                "{e}"
            );
            v.as_object_mut()
                .unwrap()
                .insert(field.into(), serde_json::Value::Null);
            let e = decode_err(v.to_string().as_bytes());
            assert!(e.message().contains(field), "{e}");
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        for field in [
            "mobile",
            "sender",
            "sendTime",
            "code",
            "content",
            "deliverTime",
            "err",
        ] {
            for bad in [
                serde_json::json!(true),
                serde_json::json!(1.5),
                serde_json::json!([1]),
                serde_json::json!({"a": 1}),
            ] {
                let mut v: serde_json::Value = serde_json::from_slice(SEED).unwrap();
                v.as_object_mut().unwrap().insert(field.into(), bad.clone());
                let e = decode_err(v.to_string().as_bytes());
                assert!(e.message().contains(field), "{field}={bad}: {e}");
            }
        }
    }

    #[test]
    fn non_objects_and_garbage() {
        for body in [
            &b"[]"[..],
            b"\"x\"",
            b"42",
            b"null",
            b"",
            b"{",
            b"{\"mobile\":\"1\"",
            b"{\"mobile\":\"\xff\xfe\"}",
            b"\xef\xbb\xbf{}",
        ] {
            decode_err(body);
        }
    }

    #[test]
    fn size_limit() {
        let base = String::from_utf8(SEED.to_vec()).unwrap();
        let pad = |total: usize| {
            let mut s = base.trim_end().trim_end_matches('}').to_string();
            s.push_str(",\"pad\":\"");
            let tail = "\"}";
            let n = total - s.len() - tail.len();
            s.push_str(&"x".repeat(n));
            s.push_str(tail);
            assert_eq!(s.len(), total);
            s
        };
        assert!(parse_callback(pad(MAX_CALLBACK_BYTES).as_bytes()).is_ok());
        let e = decode_err(pad(MAX_CALLBACK_BYTES + 1).as_bytes());
        assert!(e.message().contains("limit"), "{e}");
    }

    #[test]
    fn invalid_utf8_anywhere_is_refused() {
        // In an unknown field too: the whole body must be UTF-8.
        let e = decode_err(
            b"{\"pad\":\"\xff\",\"mobile\":\"1\",\"sender\":\"s\",\"sendTime\":\"t\",\"code\":\"1234\"}",
        );
        assert!(e.message().contains("UTF-8"), "{e}");
    }

    /// The fast path takes a body only when the exact path would give the same fields.
    fn same_as_exact(text: &str) {
        if let Some(fast) = fast_fields(text) {
            match exact_fields(text) {
                Ok(exact) => assert_eq!(fast, exact, "{text:?}"),
                Err(e) => panic!("fast path took {text:?}, the exact path refuses it: {e}"),
            }
        }
    }

    #[test]
    fn the_fast_path_decodes_escapes_like_serde_json() {
        for value in [
            r#""plain""#,
            r#""""#,
            r#""a\"b\\c\/d\be\ff\ng\rh\ti""#,
            r#""\u0000\u001f\u00e9\u4e2d\uFFFF\uffff""#,
            r#""\ud83d\ude80 pair, \uD83D\uDE80 upper""#,
            r#""lone lead \ud83d""#,
            r#""lone lead then other \ud83d\n""#,
            r#""lead then lead \ud83d\ud83d""#,
            r#""lone trail \ude80""#,
            r#""emoji 🔐 and \n escapes 1️⃣""#,
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
            "-0",
            "1.0",
            "1e3",
            "null",
            "true",
            "[]",
            "{}",
        ] {
            for field in NAMES {
                same_as_exact(&format!(
                    r#"{{"mobile":"1","sender":"2","sendTime":"3","code":"4","{field}":{value}}}"#
                ));
            }
        }
        let cb = parse_callback(
            br#"{"mobile":"\ud83d\ude80","sender":"a\nb","sendTime":7,"code":"\u0031"}"#,
        )
        .unwrap();
        assert_eq!(cb.mobile, "🚀");
        assert_eq!(cb.sender, "a\nb");
        assert_eq!(cb.send_time, "7");
        assert_eq!(cb.code, "1");
        // Refused by the exact path: a lone surrogate names no character.
        decode_err(br#"{"mobile":"\ud83d","sender":"s","sendTime":"t","code":"1"}"#);
    }

    mod fast_vs_exact {
        use super::*;
        use proptest::prelude::*;

        /// A field's JSON value: strings (plain, escaped, all-\u), integers, null, other types.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                "\\PC{0,6}".prop_map(|s| {
                    let mut out = String::from("\"");
                    for u in s.encode_utf16() {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                    out.push('"');
                    out
                }),
                (0u16..=0xffff).prop_map(|u| format!("\"\\u{u:04X}\"")),
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                Just("null".to_string()),
                Just("1.5".to_string()),
                Just("[1]".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn the_fast_path_agrees_with_the_exact_one(
                values in proptest::collection::vec(value(), 7),
                present in proptest::collection::vec(any::<bool>(), 7),
                extra in proptest::option::of("\\PC{0,8}"),
                cut in 0usize..400,
            ) {
                let mut parts: Vec<String> = NAMES
                    .iter()
                    .zip(&values)
                    .zip(&present)
                    .filter(|(_, p)| **p)
                    .map(|((n, v), _)| format!("\"{n}\":{v}"))
                    .collect();
                if let Some(x) = extra {
                    parts.insert(0, format!("\"x\":{}", serde_json::to_string(&x).unwrap()));
                }
                let body = format!("{{{}}}", parts.join(","));
                same_as_exact(&body);
                // A cut body (not JSON): both refuse it, or they agree.
                let cut = body
                    .char_indices()
                    .map(|(i, _)| i)
                    .find(|i| *i >= cut)
                    .unwrap_or(body.len());
                same_as_exact(&body[..cut]);
            }
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        decode_err(br#"{"mobile":"1","mobile":"2","sender":"s","sendTime":"t","code":"1234"}"#);
    }
}
