//! What the commands print: human text or one JSON object with the wire names.

use std::io::Write;

use fotp::{Callback, Error, ErrorKind, QueryResult, Verification};
use fotp_cli::text::escape_controls;
use serde_json::json;

/// The exit status for an error kind (CONTRACT.md section 6).
pub fn exit_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::Config => 2,
        ErrorKind::Network | ErrorKind::Timeout => 3,
        ErrorKind::HttpStatus
        | ErrorKind::Api
        | ErrorKind::Decode
        | ErrorKind::Exhausted
        | ErrorKind::Internal => 1,
    }
}

/// Prints an error: `{"error": {...}}` on stdout with `--json`, a line on stderr otherwise.
pub fn print_error(e: &Error, json: bool) {
    if json {
        let doc = json!({"error": {
            "kind": e.kind().as_str(),
            "message": e.message(),
            "apiCode": e.api_code(),
        }});
        println_out(&doc.to_string());
    } else {
        // Messages carry the server's text: no terminal escapes from it.
        let text = e.to_string();
        let _ = writeln!(std::io::stderr(), "fotp: {}", escape_controls(&text));
    }
}

fn println_out(s: &str) {
    // A closed stdout (e.g. `| head`) must not turn into a panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

pub struct Out {
    json: bool,
}

fn status_word(status: fotp::Status) -> &'static str {
    match status {
        fotp::Status::Processing => "processing",
        fotp::Status::Failed => "failed",
        fotp::Status::Success => "success",
        fotp::Status::Unknown => "unknown",
    }
}

fn rows(rows: &[(&str, Option<&str>)]) -> String {
    let mut s = String::new();
    for (k, v) in rows {
        if let Some(v) = v {
            // Values come from servers and callbacks: no terminal escapes from them. Multi-line
            // values (SMS content) stay aligned under their label.
            let v = escape_controls(v).replace('\n', "\n              ");
            s.push_str(&format!("{:<13} {v}\n", format!("{k}:")));
        }
    }
    s
}

impl Out {
    pub fn new(json: bool) -> Self {
        Out { json }
    }

    pub fn verification(&self, v: &Verification) {
        if self.json {
            println_out(&serde_json::to_string(v).expect("serializable"));
        } else {
            print!(
                "{}",
                rows(&[
                    ("url", Some(&v.url)),
                    ("ftToken", Some(&v.ft_token)),
                    ("messageId", Some(&v.message_id)),
                    ("code", Some(&v.code)),
                ])
            );
        }
    }

    pub fn query_result(&self, r: &QueryResult) {
        if self.json {
            println_out(&serde_json::to_string(r).expect("serializable"));
        } else {
            let status = format!("{} ({})", status_word(r.status), r.raw_status);
            print!(
                "{}",
                rows(&[
                    ("status", Some(&status)),
                    ("mobile", r.mobile.as_deref()),
                    ("sender", r.sender.as_deref()),
                    ("sendTime", r.send_time.as_deref()),
                    ("code", r.code.as_deref()),
                    ("deliverTime", r.deliver_time.as_deref()),
                ])
            );
        }
    }

    pub fn callback(&self, cb: &Callback) {
        if self.json {
            println_out(&serde_json::to_string(cb).expect("serializable"));
        } else {
            print!(
                "{}",
                rows(&[
                    ("mobile", Some(&cb.mobile)),
                    ("sender", Some(&cb.sender)),
                    ("sendTime", Some(&cb.send_time)),
                    ("code", Some(&cb.code)),
                    ("content", cb.content.as_deref()),
                    ("deliverTime", cb.deliver_time.as_deref()),
                    ("err", cb.err.as_deref()),
                ])
            );
        }
    }
}

/// The URL as a QR code made of Unicode half blocks, light on dark so that phones scan it
/// from the usual dark terminal.
pub fn qr(url: &str) -> Result<String, Error> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("cannot draw the URL as a QR code: {e}"),
        )
    })?;
    let mut s = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    s.push('\n');
    Ok(s)
}
