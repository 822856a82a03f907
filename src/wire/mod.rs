//! Wire types of the platform protocol, the request bodies and the envelope decoder; the serde
//! machinery that reads string-or-integer fields is in [`fields`].

mod fields;

pub(crate) use fields::StrFields;
use fields::{opt_str_or_int, str_or_int};

use std::borrow::Cow;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use std::fmt;

use crate::error::{Error, Result};
use crate::validate;

/// The success code of the response envelope.
pub const SUCCESS_CODE: &str = "000000";

/// What to send to `verify`.
///
/// ```
/// let req = fotp::VerifyRequest::new("2").code("1234").validity_minutes(5);
/// assert_eq!(req.body().unwrap(), br#"{"ftId":"2","code":"1234","validityPeriod":"5"}"#);
/// ```
///
/// `Debug` leaves out the code.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Template id (`ftId`).
    pub ft_id: String,
    /// The code to send; `None` lets the platform choose.
    pub code: Option<String>,
    /// Validity in minutes (1-10); `None` means the platform default (5).
    pub validity_minutes: Option<u32>,
}

impl VerifyRequest {
    /// A request for template `ft_id` with the platform's code and validity.
    pub fn new(ft_id: impl Into<String>) -> Self {
        VerifyRequest {
            ft_id: ft_id.into(),
            code: None,
            validity_minutes: None,
        }
    }

    /// Sets the code (4-6 digits).
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the validity in minutes (1-10).
    pub fn validity_minutes(mut self, minutes: u32) -> Self {
        self.validity_minutes = Some(minutes);
        self
    }

    /// Checks the input rules.
    pub fn validate(&self) -> Result<()> {
        validate::ft_id(&self.ft_id)?;
        if let Some(code) = &self.code {
            validate::code(code)?;
        }
        if let Some(v) = self.validity_minutes {
            validate::validity_minutes(v)?;
        }
        Ok(())
    }

    /// The JSON body after validation; optional fields appear only when set.
    pub fn body(&self) -> Result<Vec<u8>> {
        self.validate()?;
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "ftId")]
            ft_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            code: Option<&'a str>,
            #[serde(rename = "validityPeriod", skip_serializing_if = "Option::is_none")]
            validity: Option<String>,
        }
        let body = Body {
            ft_id: &self.ft_id,
            code: self.code.as_deref(),
            validity: self.validity_minutes.map(|v| v.to_string()),
        };
        Ok(serde_json::to_vec(&body).expect("serializing strings cannot fail"))
    }
}

/// The JSON body of a query for `ft_token`, after validation.
pub fn query_body(ft_token: &str) -> Result<Vec<u8>> {
    validate::ft_token(ft_token)?;
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "ftToken")]
        ft_token: &'a str,
    }
    Ok(serde_json::to_vec(&Body { ft_token }).expect("serializing strings cannot fail"))
}

/// The platform's answer to `verify`. `Debug` leaves out the code (logs must not hold OTP codes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The redirect link to open on the phone.
    pub url: String,
    /// The token to query the result with.
    #[serde(rename = "ftToken")]
    pub ft_token: String,
    /// The platform's message id.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// The code the user's SMS must carry.
    pub code: String,
}

/// The status of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// `0`: the platform has no answer yet.
    Processing = 0,
    /// `1`: the verification failed (wrong code, expired).
    Failed = 1,
    /// `2`: the user sent the right code in time.
    Success = 2,
    /// Any other value (kept in [`QueryResult::raw_status`]).
    Unknown = 255,
}

impl Status {
    /// Maps the wire value (`"0"`, `"1"`, `"2"`) to a status.
    pub fn from_wire(raw: &str) -> Status {
        match raw {
            "0" => Status::Processing,
            "1" => Status::Failed,
            "2" => Status::Success,
            _ => Status::Unknown,
        }
    }

    /// True for [`Status::Failed`] and [`Status::Success`]: the result will not change.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Failed | Status::Success)
    }
}

/// The platform's answer to `query`. `Debug` leaves out the code and shows the mobile's last 4
/// digits only, as the SDK's log events do.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct QueryResult {
    /// The status, decoded.
    #[serde(skip)]
    pub status: Status,
    /// The status as the platform sent it (a decimal string).
    #[serde(rename = "status")]
    pub raw_status: String,
    /// The user's phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// The number the SMS was sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// When the user sent the SMS.
    #[serde(rename = "sendTime", skip_serializing_if = "Option::is_none")]
    pub send_time: Option<String>,
    /// The code the SMS carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// When the SMS reached the platform.
    #[serde(rename = "deliverTime", skip_serializing_if = "Option::is_none")]
    pub deliver_time: Option<String>,
}

impl<'de> Deserialize<'de> for QueryResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        const NAMES: [&str; 6] = [
            "status",
            "mobile",
            "sender",
            "sendTime",
            "code",
            "deliverTime",
        ];
        let [status, mobile, sender, send_time, code, deliver_time] =
            d.deserialize_map(StrFields::new(&NAMES))?;
        let raw_status = status
            .ok_or_else(|| de::Error::missing_field("status"))?
            .into_owned();
        let own = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned);
        Ok(QueryResult {
            status: Status::from_wire(&raw_status),
            raw_status,
            mobile: own(mobile),
            sender: own(sender),
            send_time: own(send_time),
            code: own(code),
            deliver_time: own(deliver_time),
        })
    }
}

/// Decodes a response body (any HTTP status) into `T` per the envelope rules.
///
/// `http_status` is the status of the answer; a non-2xx answer that is an envelope becomes an
/// API error keeping that status, and one that is not becomes an HTTP-status error.
pub fn decode_envelope<T: for<'de> Deserialize<'de>>(http_status: u16, body: &[u8]) -> Result<T> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, deserialize_with = "str_or_int")]
        code: Cow<'a, str>,
        #[serde(borrow, default, deserialize_with = "opt_str_or_int")]
        message: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    let ok_status = (200..300).contains(&http_status);
    let env: Envelope<'_> = match serde_json::from_slice(body) {
        Ok(env) => env,
        Err(e) if ok_status => {
            return Err(
                Error::decode(format!("the response is not a valid envelope: {e}"))
                    .with_http_status(http_status),
            )
        }
        Err(_) => {
            return Err(Error::new(
                crate::ErrorKind::HttpStatus,
                format!("the server answered HTTP {http_status} without an API envelope"),
            )
            .with_http_status(http_status))
        }
    };
    if env.code != SUCCESS_CODE || !ok_status {
        let message = env.message.unwrap_or(Cow::Borrowed("(no message)"));
        return Err(Error::api(
            env.code.into_owned(),
            message.into_owned(),
            http_status,
        ));
    }
    let data = env.data.filter(|d| d.get() != "null").ok_or_else(|| {
        Error::decode("the response envelope has no data").with_http_status(http_status)
    })?;
    serde_json::from_str(data.get()).map_err(|e| {
        Error::decode(format!("the response data is invalid: {e}")).with_http_status(http_status)
    })
}

// Debug leaves out OTP codes: Debug output ends up in logs.
impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("ft_id", &self.ft_id)
            .field("validity_minutes", &self.validity_minutes)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryResult")
            .field("status", &self.status)
            .field("raw_status", &self.raw_status)
            .field(
                "mobile",
                &self.mobile.as_deref().map(crate::logging::mask_mobile),
            )
            .field("sender", &self.sender)
            .field("send_time", &self.send_time)
            .field("deliver_time", &self.deliver_time)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification")
            .field("url", &self.url)
            .field("ft_token", &self.ft_token)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn debug_of_a_verification_hides_the_code() {
        let v = Verification {
            url: "https://x/r/t".into(),
            ft_token: "tok".into(),
            message_id: "m".into(),
            code: "482913".into(),
        };
        let shown = format!("{v:?}");
        assert!(
            !shown.contains("482913") && shown.contains("tok"),
            "{shown}"
        );
    }

    #[test]
    fn debug_of_a_verify_request_hides_the_code() {
        let req = VerifyRequest::new("tpl-7").code("5776").validity_minutes(3);
        for shown in [format!("{req:?}"), format!("{req:#?}")] {
            assert!(!shown.contains("5776"), "{shown}");
            assert!(shown.contains("tpl-7") && shown.contains('3'), "{shown}");
        }
    }

    #[test]
    fn debug_of_a_query_result_hides_the_code_and_masks_the_mobile() {
        let r = QueryResult {
            status: Status::Success,
            raw_status: "2".into(),
            mobile: Some("8615711666132".into()),
            sender: Some("1008611".into()),
            send_time: Some("2025-05-15 11:23:34".into()),
            code: Some("5776".into()),
            deliver_time: Some("2025-05-15 11:24:24".into()),
        };
        for shown in [format!("{r:?}"), format!("{r:#?}")] {
            assert!(
                !shown.contains("5776") && !shown.contains("8615711666132"),
                "{shown}"
            );
            for visible in [
                "Success",
                "*********6132",
                "1008611",
                "11:23:34",
                "11:24:24",
            ] {
                assert!(shown.contains(visible), "{visible} not in {shown}");
            }
        }
    }

    mod properties {
        use super::super::*;
        use crate::Signer;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn response_decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
            let _ = decode_envelope::<Verification>(status, &body);
            let _ = decode_envelope::<QueryResult>(status, &body);
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
            let signer = crate::sign::HmacSha256Signer::new(app_id.clone(), &crate::Secret::new(secret.clone()));
            let headers = signer.sign(&body).unwrap();
            let get = |n: &str| headers.iter().find(|h| h.0 == n).map(|h| h.1.clone()).unwrap();
            prop_assert_eq!(get("appId"), app_id.clone());
            prop_assert!(crate::sign::hmac_sha256_verify(
                secret.as_bytes(), &app_id, &get("timestamp"), &get("nonce"), &body, &get("sign")
            ));
            let other_body: &[u8] = b"[]";
            prop_assert!(!crate::sign::hmac_sha256_verify(
                secret.as_bytes(), &app_id, &get("timestamp"), &get("nonce"), other_body, &get("sign")
            ));
        }
        }
    }

    use super::*;
    use crate::ErrorKind;

    #[test]
    fn verify_body_shapes() {
        let b = |r: VerifyRequest| String::from_utf8(r.body().unwrap()).unwrap();
        assert_eq!(b(VerifyRequest::new("2")), r#"{"ftId":"2"}"#);
        assert_eq!(
            b(VerifyRequest::new("2").validity_minutes(10)),
            r#"{"ftId":"2","validityPeriod":"10"}"#
        );
        assert_eq!(
            b(VerifyRequest::new("模版\"2").code("123456")),
            r#"{"ftId":"模版\"2","code":"123456"}"#
        );
        let e = VerifyRequest::new("2").code("").body().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("code"));
    }

    #[test]
    fn query_body_shape() {
        assert_eq!(
            query_body("44cadc6071214b968b3b3bb1cb5a6c24").unwrap(),
            br#"{"ftToken":"44cadc6071214b968b3b3bb1cb5a6c24"}"#
        );
        assert_eq!(
            query_body("").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn decodes_seed_verify_response() {
        let body = include_bytes!("../../tests/data/verify-response.json");
        let v: Verification = decode_envelope(200, body).unwrap();
        assert_eq!(v.ft_token, "200e96b6a8bf8ed8c3de194cf14b342f");
        assert_eq!(v.message_id, "393801984179642368");
        assert_eq!(v.code, "3872");
        assert!(v
            .url
            .ends_with("/flash/opt/redirect/200e96b6a8bf8ed8c3de194cf14b342f"));
    }

    #[test]
    fn decodes_seed_query_response() {
        let body = include_bytes!("../../tests/data/query-response.json");
        let r: QueryResult = decode_envelope(200, body).unwrap();
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.raw_status, "2");
        assert_eq!(r.mobile.as_deref(), Some("6285273203675"));
        assert_eq!(r.sender.as_deref(), Some("6285215410016"));
        assert_eq!(r.send_time.as_deref(), Some("2025-04-29 17:47:00"));
        assert_eq!(r.code.as_deref(), Some("5777"));
        assert_eq!(r.deliver_time.as_deref(), Some("2025-04-29 17:48:23"));
    }

    #[test]
    fn query_status_variants() {
        let q = |data: &str| -> Result<QueryResult> {
            decode_envelope(
                200,
                format!(r#"{{"code":"000000","data":{data}}}"#).as_bytes(),
            )
        };
        assert_eq!(q(r#"{"status":0}"#).unwrap().status, Status::Processing);
        assert_eq!(
            q(r#"{"status":"1","mobile":null}"#).unwrap().status,
            Status::Failed
        );
        let odd = q(r#"{"status":"7"}"#).unwrap();
        assert_eq!(
            (odd.status, odd.raw_status.as_str()),
            (Status::Unknown, "7")
        );
        assert_eq!(q(r#"{"status":-3}"#).unwrap().raw_status, "-3");
        for bad in [r#"{}"#, r#"{"status":true}"#, r#"{"status":1.5}"#, r#"[]"#] {
            assert_eq!(q(bad).unwrap_err().kind(), ErrorKind::Decode, "{bad}");
        }
        assert!(q(r#"{"mobile":"1"}"#)
            .unwrap_err()
            .message()
            .contains("status"));
    }

    #[test]
    fn verify_data_requires_all_fields() {
        for missing in ["url", "ftToken", "messageId", "code"] {
            let mut data = serde_json::json!({
                "url": "u", "ftToken": "t", "messageId": "m", "code": "1234", "extra": 1
            });
            data.as_object_mut().unwrap().remove(missing);
            let body = serde_json::json!({"code": "000000", "data": data}).to_string();
            let e = decode_envelope::<Verification>(200, body.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode);
            assert!(e.message().contains(missing), "{e}");
        }
    }

    #[test]
    fn envelope_errors() {
        let e = decode_envelope::<Verification>(
            200,
            r#"{"code":"200002","success":false,"message":"unknown ftId"}"#.as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api);
        assert_eq!(e.api_code(), Some("200002"));
        assert_eq!(e.message(), "unknown ftId");
        assert_eq!(e.http_status(), 200);

        let e = decode_envelope::<Verification>(503, br#"{"code":"500","message":"busy"}"#)
            .unwrap_err();
        assert_eq!((e.kind(), e.http_status()), (ErrorKind::Api, 503));

        let e = decode_envelope::<Verification>(502, b"<html>Bad Gateway</html>").unwrap_err();
        assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 502));

        let e = decode_envelope::<Verification>(200, b"<html>").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        let e = decode_envelope::<Verification>(200, b"\xff\xfe").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        let e = decode_envelope::<Verification>(200, br#"{"code":"000000"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        let e =
            decode_envelope::<Verification>(200, br#"{"code":"000000","data":null}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
    }
}
