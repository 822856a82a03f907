//! Push mode: parsing the platform's callback.

use std::borrow::Cow;
use std::fmt;

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
///
/// `Debug` leaves out the code and the SMS text (which carries the code) and shows the mobile's
/// last 4 digits only, as the SDK's log events do.
#[derive(Clone, PartialEq, Eq, Serialize)]
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

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("mobile", &crate::logging::mask_mobile(&self.mobile))
            .field("sender", &self.sender)
            .field("send_time", &self.send_time)
            .field("deliver_time", &self.deliver_time)
            .field("err", &self.err)
            .finish_non_exhaustive()
    }
}

/// The fields' wire names, in the order of `Callback`'s fields (and of fotp_callback_fields()).
pub(crate) const FIELD_NAMES: [&str; 7] = [
    "mobile",
    "sender",
    "sendTime",
    "code",
    "content",
    "deliverTime",
    "err",
];

/// simdutf8 picks its SIMD routine on first use and caches it in an atomic pointer. Kept out of
/// line so that helgrind, which cannot see atomics, can be told about that pointer by this name
/// alone (tests/stress/helgrind.supp) while races in the rest of parsing are still reported.
#[inline(never)]
fn check_utf8(body: &[u8]) -> std::result::Result<&str, simdutf8::compat::Utf8Error> {
    simdutf8::compat::from_utf8(body)
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
    let text = check_utf8(body).map_err(|e| {
        Error::decode(format!(
            "invalid callback body: not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let [mobile, sender, send_time, code, content, deliver_time, err] = de
        .deserialize_map(StrFields::new(&FIELD_NAMES))
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::decode(format!("invalid callback body: {e}")))?;
    let required = |v: Option<Cow<'_, str>>, name: &str| -> Result<String> {
        match v {
            Some(s) if !s.is_empty() => Ok(s.into_owned()),
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
        content: content.map(Cow::into_owned),
        deliver_time: deliver_time.map(Cow::into_owned),
        err: err.map(Cow::into_owned),
    })
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
    fn debug_of_a_callback_hides_the_code_and_the_sms_text() {
        // The seed's code (5776) is in its SMS text too.
        let cb = parse_callback(SEED).unwrap();
        for shown in [format!("{cb:?}"), format!("{cb:#?}")] {
            assert!(!shown.contains("5776") && !shown.contains("VIP"), "{shown}");
            // The mobile as the SDK's log events show it: the last 4 digits only.
            assert!(!shown.contains("8615711666132"), "{shown}");
            for visible in [
                "*********6132",
                "1008611",
                "2025-05-15 11:23:34",
                "11:24:24",
            ] {
                assert!(shown.contains(visible), "{visible} not in {shown}");
            }
        }
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
        assert!(e.message().contains("at byte 8"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_found_past_the_vector_blocks() {
        // The check runs in 64-byte SIMD blocks: a bad byte or a cut sequence in any block, or
        // in the tail after the last whole block, is found and placed exactly.
        let base = String::from_utf8(SEED.to_vec()).unwrap();
        for at in [1, 63, 64, 65, 127, 200, base.len() - 2] {
            let mut body = base.clone().into_bytes();
            body.insert(at, 0xff);
            let e = decode_err(&body);
            assert!(e.message().contains(&format!("at byte {at}")), "{at}: {e}");
        }
        let mut cut = base.into_bytes();
        let emoji = cut.iter().position(|&b| b >= 0xf0).unwrap();
        cut.truncate(emoji + 2);
        let e = decode_err(&cut);
        assert!(e.message().contains(&format!("at byte {emoji}")), "{e}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        decode_err(br#"{"mobile":"1","mobile":"2","sender":"s","sendTime":"t","code":"1234"}"#);
    }
}
