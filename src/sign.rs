//! Request authentication: the [`Signer`] trait and the two built-in schemes.
//!
//! The `hmac-sha256` scheme signs `appId LF timestamp LF nonce LF body` with the app secret;
//! the `token` scheme sends a static key and token. The platform may change its scheme, so a
//! user-supplied [`Signer`] can replace both.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use ureq::http::{HeaderName, HeaderValue};

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// A header to add to a request: `(name, value)`.
pub type Header = (String, String);

/// Produces the authentication headers of one request.
///
/// `body` is the exact byte string that will be sent. Implementations must be cheap to call
/// from many threads at once.
///
/// ```
/// use fotp::{Config, Signer, Header};
///
/// #[derive(Debug)]
/// struct Bearer(&'static str);
/// impl Signer for Bearer {
///     fn sign(&self, _body: &[u8]) -> fotp::Result<Vec<Header>> {
///         Ok(vec![("Authorization".into(), format!("Bearer {}", self.0))])
///     }
/// }
/// let config = Config::builder("https://otp.example.com")
///     .signer(Bearer("abc"))
///     .build()
///     .unwrap();
/// # let _ = config;
/// ```
pub trait Signer: fmt::Debug + Send + Sync + 'static {
    /// The headers that authenticate a request carrying `body`.
    fn sign(&self, body: &[u8]) -> Result<Vec<Header>>;
}

/// A string that never shows itself in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Header names of the `hmac-sha256` scheme (configurable because the platform may rename them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacHeaderNames {
    /// Default `appId`.
    pub app_id: String,
    /// Default `timestamp`.
    pub timestamp: String,
    /// Default `nonce`.
    pub nonce: String,
    /// Default `sign`.
    pub sign: String,
}

impl Default for HmacHeaderNames {
    fn default() -> Self {
        HmacHeaderNames {
            app_id: "appId".into(),
            timestamp: "timestamp".into(),
            nonce: "nonce".into(),
            sign: "sign".into(),
        }
    }
}

/// Header names of the `token` scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeaderNames {
    /// Default `AppKey`.
    pub app_key: String,
    /// Default `Authorization`.
    pub token: String,
}

impl Default for TokenHeaderNames {
    fn default() -> Self {
        TokenHeaderNames {
            app_key: "AppKey".into(),
            token: "Authorization".into(),
        }
    }
}

/// The default scheme: HMAC-SHA256 over app id, timestamp, nonce and body.
#[derive(Debug, Clone)]
pub struct HmacSha256Signer {
    app_id: String,
    // Keyed once: cloning the prepared state is cheaper than re-deriving the key per request.
    mac: PreparedMac,
    names: HmacHeaderNames,
    /// The header names and app id as HTTP types, checked once; `None` when one of them cannot
    /// be sent (then the client's per-call check reports it, as for any signer).
    typed: Option<TypedParts>,
}

/// The fixed parts of the built-in scheme's headers, ready for ureq.
#[derive(Clone)]
struct TypedParts {
    names: [HeaderName; 4],
    app_id: HeaderValue,
}

impl fmt::Debug for TypedParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl TypedParts {
    fn new(app_id: &str, names: &HmacHeaderNames) -> Option<TypedParts> {
        let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).ok();
        Some(TypedParts {
            names: [
                name(&names.app_id)?,
                name(&names.timestamp)?,
                name(&names.nonce)?,
                name(&names.sign)?,
            ],
            app_id: HeaderValue::from_str(app_id).ok()?,
        })
    }
}

#[derive(Clone)]
struct PreparedMac(HmacSha256);

impl fmt::Debug for PreparedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl HmacSha256Signer {
    /// A signer for `app_id` with `app_secret`, using the default header names.
    #[cfg(any(test, feature = "internals"))]
    pub fn new(app_id: impl Into<String>, app_secret: &Secret) -> Self {
        Self::with_header_names(app_id, app_secret, HmacHeaderNames::default())
    }

    /// A signer with custom header names.
    pub fn with_header_names(
        app_id: impl Into<String>,
        app_secret: &Secret,
        names: HmacHeaderNames,
    ) -> Self {
        let app_id = app_id.into();
        HmacSha256Signer {
            typed: TypedParts::new(&app_id, &names),
            app_id,
            mac: PreparedMac(keyed(app_secret.expose().as_bytes())),
            names,
        }
    }

    /// What [`Signer::sign`] makes, as HTTP types: the client's path for the built-in scheme
    /// (no header name or app id copied or checked per call). `Ok(None)` when a configured name
    /// or the app id cannot be sent: then the caller goes through [`Signer::sign`].
    pub(crate) fn sign_typed(&self, body: &[u8]) -> Result<Option<[(HeaderName, HeaderValue); 4]>> {
        let Some(t) = &self.typed else {
            return Ok(None);
        };
        let timestamp = now_millis().to_string();
        let nonce = new_nonce()?;
        let sign = self.signature(&timestamp, &nonce, body);
        // Decimal digits and lowercase hex are always valid values; the String is moved in.
        let value = |s: String| HeaderValue::try_from(s).expect("digits and hex are header-safe");
        let [app_id, ts, no, si] = &t.names;
        Ok(Some([
            (app_id.clone(), t.app_id.clone()),
            (ts.clone(), value(timestamp)),
            (no.clone(), value(nonce)),
            (si.clone(), value(sign)),
        ]))
    }

    /// The signature for explicit inputs (what [`Signer::sign`] uses with a fresh timestamp
    /// and nonce).
    pub fn signature(&self, timestamp: &str, nonce: &str, body: &[u8]) -> String {
        let mut mac = self.mac.0.clone();
        feed(&mut mac, &self.app_id, timestamp, nonce, body);
        hex(&mac.finalize().into_bytes())
    }
}

impl Signer for HmacSha256Signer {
    fn sign(&self, body: &[u8]) -> Result<Vec<Header>> {
        let timestamp = now_millis().to_string();
        let nonce = new_nonce()?;
        let sign = self.signature(&timestamp, &nonce, body);
        Ok(vec![
            (self.names.app_id.clone(), self.app_id.clone()),
            (self.names.timestamp.clone(), timestamp),
            (self.names.nonce.clone(), nonce),
            (self.names.sign.clone(), sign),
        ])
    }
}

/// The `token` scheme: a static app key and token.
#[derive(Debug, Clone)]
pub struct TokenSigner {
    app_key: String,
    token: Secret,
    names: TokenHeaderNames,
}

impl TokenSigner {
    /// A signer sending `app_key` and `token` under the default header names.
    #[cfg(test)]
    pub fn new(app_key: impl Into<String>, token: Secret) -> Self {
        Self::with_header_names(app_key, token, TokenHeaderNames::default())
    }

    /// A signer with custom header names.
    pub fn with_header_names(
        app_key: impl Into<String>,
        token: Secret,
        names: TokenHeaderNames,
    ) -> Self {
        TokenSigner {
            app_key: app_key.into(),
            token,
            names,
        }
    }
}

impl Signer for TokenSigner {
    fn sign(&self, _body: &[u8]) -> Result<Vec<Header>> {
        Ok(vec![
            (self.names.app_key.clone(), self.app_key.clone()),
            (self.names.token.clone(), self.token.expose().to_owned()),
        ])
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

fn feed(mac: &mut HmacSha256, app_id: &str, timestamp: &str, nonce: &str, body: &[u8]) {
    mac.update(app_id.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(body);
}

/// Lowercase hex HMAC-SHA256 of `app_id LF timestamp LF nonce LF body` keyed by `app_secret`.
#[cfg(any(test, feature = "internals"))]
pub fn hmac_sha256_sign(
    app_secret: &[u8],
    app_id: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut mac = keyed(app_secret);
    feed(&mut mac, app_id, timestamp, nonce, body);
    hex(&mac.finalize().into_bytes())
}

/// Checks a received `sign` header in constant time (the server side of the scheme).
///
/// Returns false for a signature that is not 64 hex characters.
#[cfg(any(test, feature = "internals"))]
pub fn hmac_sha256_verify(
    app_secret: &[u8],
    app_id: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
    sign_hex: &str,
) -> bool {
    let Some(expected) = unhex32(sign_hex) else {
        return false;
    };
    let mut mac = keyed(app_secret);
    feed(&mut mac, app_id, timestamp, nonce, body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

/// Compares two byte strings in constant time (for codes, tokens and signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// 32 lowercase hex characters from a CSPRNG, new for every call.
///
/// The bytes come from a per-thread ChaCha20 generator (`rand_chacha`) seeded from the OS
/// (`getrandom`), instead of one system call per nonce. It is reseeded from the OS after
/// [`RESEED_AFTER`] nonces, and before the first nonce of a forked child: a child never repeats
/// its parent's nonces (see SECURITY.md).
pub fn new_nonce() -> Result<String> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Nonces drawn from one seed before the generator is reseeded from the OS (1 MiB of output).
pub(crate) const RESEED_AFTER: u32 = 1 << 16;

struct NonceRng {
    rng: rand_chacha::ChaCha20Rng,
    /// The fork generation the seed was drawn in.
    generation: u64,
    /// Nonces left before the next reseed.
    left: u32,
}

thread_local! {
    static NONCE_RNG: std::cell::RefCell<Option<NonceRng>> = const { std::cell::RefCell::new(None) };
}

fn os_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            crate::ErrorKind::Internal,
            format!("the OS random number generator failed: {e}"),
        )
    })
}

/// Fills `buf` (at most one nonce's worth per call in practice) from this thread's generator.
fn random_bytes(buf: &mut [u8]) -> Result<()> {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    // Read before the generator is used: a seed from an older generation predates a fork.
    let generation = crate::fork::generation();
    let drawn = NONCE_RNG.try_with(|cell| -> Result<()> {
        let mut slot = cell.borrow_mut();
        let fresh = match &*slot {
            Some(r) => r.generation != generation || r.left == 0,
            None => true,
        };
        if fresh {
            let mut seed = [0u8; 32];
            os_random(&mut seed)?;
            *slot = Some(NonceRng {
                rng: rand_chacha::ChaCha20Rng::from_seed(seed),
                generation,
                left: RESEED_AFTER,
            });
        }
        let r = slot.as_mut().expect("seeded above");
        r.left -= 1;
        r.rng.fill_bytes(buf);
        Ok(())
    });
    match drawn {
        Ok(r) => r,
        // This thread's storage is being torn down (a nonce from a thread-local destructor).
        Err(_) => os_random(buf),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Bytes, not chars: no UTF-8 encoding per digit.
    let out: Vec<u8> = bytes
        .iter()
        .flat_map(|b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 0xf) as usize]])
        .collect();
    String::from_utf8(out).expect("hex digits are ASCII")
}

#[cfg(any(test, feature = "internals"))]
fn unhex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_sha256_sign_matches_the_documented_example() {
        let sign = super::hmac_sha256_sign(
            b"sandbox-secret",
            "sandbox",
            "1764374400000",
            "0123456789abcdef0123456789abcdef",
            br#"{"ftId":"2"}"#,
        );
        assert_eq!(
            sign,
            "5db186a0ff9ddcb9b784221a6f9e926a11f46d49485dd1bd480367699ccce6cb"
        );
    }

    use super::*;

    #[derive(serde::Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }
    #[derive(serde::Deserialize)]
    struct Vector {
        app_id: String,
        app_secret: String,
        timestamp: String,
        nonce: String,
        body: String,
        sign: String,
    }

    fn vectors() -> Vec<Vector> {
        let raw = include_str!("../tests/data/signing.json");
        serde_json::from_str::<Vectors>(raw).unwrap().vectors
    }

    #[test]
    fn signing_vectors_match() {
        let vs = vectors();
        assert_eq!(vs.len(), 5);
        for v in vs {
            let got = hmac_sha256_sign(
                v.app_secret.as_bytes(),
                &v.app_id,
                &v.timestamp,
                &v.nonce,
                v.body.as_bytes(),
            );
            assert_eq!(got, v.sign, "vector {}", v.app_id);
            let signer =
                HmacSha256Signer::new(v.app_id.clone(), &Secret::new(v.app_secret.clone()));
            assert_eq!(
                signer.signature(&v.timestamp, &v.nonce, v.body.as_bytes()),
                v.sign
            );
            assert!(hmac_sha256_verify(
                v.app_secret.as_bytes(),
                &v.app_id,
                &v.timestamp,
                &v.nonce,
                v.body.as_bytes(),
                &v.sign
            ));
        }
    }

    #[test]
    fn verify_rejects_tampering() {
        let v = &vectors()[0];
        let ok = |body: &str, sign: &str| {
            hmac_sha256_verify(
                v.app_secret.as_bytes(),
                &v.app_id,
                &v.timestamp,
                &v.nonce,
                body.as_bytes(),
                sign,
            )
        };
        assert!(ok(&v.body, &v.sign));
        assert!(!ok("{\"ftId\":\"3\"}", &v.sign));
        assert!(!ok(&v.body, &v.sign[..63]));
        assert!(!ok(&v.body, &v.sign.to_uppercase().replace('C', "z")));
        let mut flipped = v.sign.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!ok(&v.body, std::str::from_utf8(&flipped).unwrap()));
    }

    #[test]
    fn signer_headers_are_fresh_and_valid() {
        let secret = Secret::new("k");
        let s = HmacSha256Signer::new("app", &secret);
        let a = s.sign(b"{}").unwrap();
        let b = s.sign(b"{}").unwrap();
        let names: Vec<_> = a.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(names, ["appId", "timestamp", "nonce", "sign"]);
        assert_ne!(a[2].1, b[2].1, "nonce must change per request");
        let nonce = &a[2].1;
        assert_eq!(nonce.len(), 32);
        assert!(nonce
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert!(hmac_sha256_verify(
            b"k", "app", &a[1].1, &a[2].1, b"{}", &a[3].1
        ));
    }

    #[test]
    fn nonces_of_many_threads_are_distinct_and_hex() {
        // Each thread seeds its own generator; across threads and reseeds, no repeat.
        let n = RESEED_AFTER as usize + 100;
        let sets: Vec<Vec<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(move || (0..n).map(|_| new_nonce().unwrap()).collect()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all = std::collections::HashSet::new();
        for nonce in sets.iter().flatten() {
            assert_eq!(nonce.len(), 32);
            assert!(nonce
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
            assert!(all.insert(nonce.as_str()), "repeated nonce {nonce}");
        }
    }

    #[test]
    fn the_typed_headers_match_sign() {
        let s = HmacSha256Signer::new("app", &Secret::new("k"));
        let typed = s
            .sign_typed(b"{}")
            .unwrap()
            .expect("default names are valid");
        let names: Vec<_> = typed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["appid", "timestamp", "nonce", "sign"]);
        let v = |i: usize| typed[i].1.to_str().unwrap();
        assert_eq!(v(0), "app");
        assert!(hmac_sha256_verify(b"k", "app", v(1), v(2), b"{}", v(3)));
        // A name HTTP cannot carry: no typed path, the client's check reports it.
        let names = HmacHeaderNames {
            nonce: "bad name".into(),
            ..HmacHeaderNames::default()
        };
        let odd = HmacSha256Signer::with_header_names("app", &Secret::new("k"), names);
        assert!(odd.sign_typed(b"{}").unwrap().is_none());
        assert_eq!(odd.sign(b"{}").unwrap()[2].0, "bad name");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = HmacSha256Signer::new("app", &Secret::new("hunter2-secret"));
        assert!(!format!("{s:?}").contains("hunter2"));
        let t = TokenSigner::new("key", Secret::new("tok-hunter2"));
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"1234", b"1234"));
        assert!(!constant_time_eq(b"1234", b"1235"));
        assert!(!constant_time_eq(b"1234", b"12345"));
    }
}
