//! Property tests: parsing never panics, what verify sends signs and validates back, a parsed
//! callback's fields equal the input's.

use proptest::prelude::*;

use fotp::sign::{hmac_sha256_verify, HmacSha256Signer};
use fotp::{Secret, Signer, VerifyRequest};

/// A callback field as the platform may send it: a string or an integer.
#[derive(Debug, Clone)]
enum Field {
    Str(String),
    Int(i64),
}

impl Field {
    fn json(&self) -> serde_json::Value {
        match self {
            Field::Str(s) => s.clone().into(),
            Field::Int(i) => (*i).into(),
        }
    }
    fn expected(&self) -> String {
        match self {
            Field::Str(s) => s.clone(),
            Field::Int(i) => i.to_string(),
        }
    }
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        "\\PC{1,40}".prop_map(Field::Str),
        any::<i64>().prop_map(Field::Int),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn callback_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = fotp::parse_callback(&body);
    }

    #[test]
    fn response_decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _ = fotp::wire::decode_envelope::<fotp::Verification>(status, &body);
        let _ = fotp::wire::decode_envelope::<fotp::QueryResult>(status, &body);
    }

    #[test]
    fn json_shaped_callbacks_never_panic(body in "\\{(\"[a-zA-Z]{1,10}\":(\"[^\"]{0,8}\"|-?[0-9]{1,25}|null|true|\\[\\]|\\{\\}|1\\.5),?){0,8}\\}") {
        let _ = fotp::parse_callback(body.as_bytes());
    }

    #[test]
    fn parsed_callback_fields_equal_the_input(
        mobile in field(), sender in field(), send_time in field(), code in field(),
        content in proptest::option::of(field()), deliver_time in proptest::option::of(field()),
        err in proptest::option::of(field()),
    ) {
        // An empty string is refused, so the strategy only makes non-empty ones.
        let mut obj = serde_json::Map::new();
        obj.insert("mobile".into(), mobile.json());
        obj.insert("sender".into(), sender.json());
        obj.insert("sendTime".into(), send_time.json());
        obj.insert("code".into(), code.json());
        for (k, v) in [("content", &content), ("deliverTime", &deliver_time), ("err", &err)] {
            obj.insert(k.into(), v.as_ref().map_or(serde_json::Value::Null, Field::json));
        }
        let body = serde_json::Value::Object(obj).to_string();
        let cb = fotp::parse_callback(body.as_bytes()).unwrap();
        prop_assert_eq!(cb.mobile, mobile.expected());
        prop_assert_eq!(cb.sender, sender.expected());
        prop_assert_eq!(cb.send_time, send_time.expected());
        prop_assert_eq!(cb.code, code.expected());
        prop_assert_eq!(cb.content, content.map(|f| f.expected()));
        prop_assert_eq!(cb.deliver_time, deliver_time.map(|f| f.expected()));
        prop_assert_eq!(cb.err, err.map(|f| f.expected()));
    }

    #[test]
    fn what_verify_sends_signs_and_validates_back(
        ft_id in "[^\\p{Cc}]{1,64}",
        code in proptest::option::of("[0-9]{4,6}"),
        validity in proptest::option::of(1u32..=10),
        app_id in "[!-~]{1,32}",
        secret in "\\PC{1,64}",
    ) {
        let mut req = VerifyRequest::new(ft_id.clone());
        req.code = code.clone();
        req.validity_minutes = validity;
        let body = req.body().unwrap();
        let back: serde_json::Value = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(back["ftId"].as_str(), Some(ft_id.as_str()));
        prop_assert_eq!(back.get("code").and_then(|c| c.as_str()), code.as_deref());
        prop_assert_eq!(
            back.get("validityPeriod").and_then(|c| c.as_str()).map(|v| v.parse::<u32>().unwrap()),
            validity
        );
        let signer = HmacSha256Signer::new(app_id.clone(), &Secret::new(secret.clone()));
        let headers = signer.sign(&body).unwrap();
        let get = |n: &str| headers.iter().find(|h| h.0 == n).map(|h| h.1.clone()).unwrap();
        prop_assert_eq!(get("appId"), app_id.clone());
        prop_assert!(hmac_sha256_verify(
            secret.as_bytes(), &app_id, &get("timestamp"), &get("nonce"), &body, &get("sign")
        ));
        let other_body: &[u8] = b"[]";
        prop_assert!(!hmac_sha256_verify(
            secret.as_bytes(), &app_id, &get("timestamp"), &get("nonce"), other_body, &get("sign")
        ));
    }
}
