//! Errors: one type for every failure, with a stable [`ErrorKind`].

use std::fmt;

/// What went wrong, in the terms every language binding shares.
///
/// The numeric values are part of the C ABI (`FOTP_ERROR_*`): they never change and are never
/// reused. Exactly when each kind is used is the table of `docs/ERRORS.md`, with the test that
/// provokes each row in Rust, C, Python and Go. Only [`Network`](ErrorKind::Network),
/// [`Timeout`](ErrorKind::Timeout) and the 429/5xx cases of [`HttpStatus`](ErrorKind::HttpStatus)
/// are transient (query and `wait` retry them); every other kind is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorKind {
    /// The caller's input broke a rule of the protocol, checked before anything is sent: a
    /// field out of its range, a null pointer or invalid UTF-8 (C), a tracker code length
    /// other than 4-6, a bad Redis namespace.
    InvalidArgument = 1,
    /// The configuration cannot work: missing base URL or credentials, an insecure or
    /// unparsable URL, an unreadable CA bundle or bad proxy URL, a Redis URL that does not
    /// parse or whose credentials the server refuses when the tracker is opened, and a
    /// user-supplied signer that produces a header HTTP cannot carry (never sent, not retried).
    Config = 2,
    /// DNS, connect, TLS or I/O failure talking to the platform, and any failure of the
    /// tracker's store after it was opened (a Redis server down, or refusing credentials it
    /// accepted before).
    Network = 3,
    /// A time limit ran out: an attempt's or the whole call's limit, `wait`'s limit, a
    /// cancelled call (its message says so), or a tracker reservation whose time ran out before
    /// it was bound (start a new verification).
    Timeout = 4,
    /// A non-2xx answer that is not an API envelope ([`Error::http_status`] holds it).
    HttpStatus = 5,
    /// An envelope whose `code` is not `"000000"` ([`Error::api_code`] holds it).
    Api = 6,
    /// A body that is not what the protocol says: bad JSON, a missing or mistyped field,
    /// invalid UTF-8, a response over 1 MiB or a callback over 64 KiB.
    Decode = 7,
    /// A tracker has no free code of the requested length left; use longer codes.
    Exhausted = 8,
    /// Never expected: a bug (a caught panic, a store answering nonsense), or a failure of the
    /// platform the library runs on (the OS random number generator, starting a thread). It is
    /// not retried; report it.
    Internal = 99,
}

impl ErrorKind {
    /// The stable name used in JSON output and by the bindings (`"invalid_argument"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Config => "config",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Api => "api",
            ErrorKind::Decode => "decode",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from any fotp operation.
///
/// Messages never contain the app secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    api_code: Option<String>,
    http_status: u16,
    /// Set by the client when the request surely never reached the server.
    unsent: bool,
}

/// Shorthand for `std::result::Result<T, fotp::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            api_code: None,
            http_status: 0,
            unsent: false,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Decode, message)
    }

    /// An API error: the platform answered with an envelope whose code is not `"000000"`.
    pub fn api(code: impl Into<String>, message: impl Into<String>, http_status: u16) -> Self {
        Error {
            kind: ErrorKind::Api,
            message: message.into(),
            api_code: Some(code.into()),
            http_status,
            unsent: false,
        }
    }

    pub(crate) fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = status;
        self
    }

    /// Marks whether the request may have reached the server (the client knows).
    pub(crate) fn reached_server(mut self, reached: bool) -> Self {
        self.unsent = !reached;
        self
    }

    /// `false` only when the request surely never reached the server (so, for verify, the
    /// platform holds no session for it); `true` whenever it may have.
    pub(crate) fn request_may_have_reached_server(&self) -> bool {
        !self.unsent
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A human-readable description.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The platform's error code; `Some` only for [`ErrorKind::Api`].
    pub fn api_code(&self) -> Option<&str> {
        self.api_code.as_deref()
    }

    /// The HTTP status of the answer, or 0 when there was no HTTP answer.
    pub fn http_status(&self) -> u16 {
        self.http_status
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("api_code", &self.api_code)
            .field("http_status", &self.http_status)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.api_code {
            Some(code) => write!(f, "{} error {}: {}", self.kind, code, self.message),
            None => write!(f, "{} error: {}", self.kind, self.message),
        }
    }
}

impl std::error::Error for Error {}
