//! Property tests: callback parsing never panics, a parsed callback's fields equal the input's.
//! (Response decoding and signing are property-tested in src/wire.rs, on crate internals.)

use proptest::prelude::*;

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
}
