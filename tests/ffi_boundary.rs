//! Source checks of the C layer: every exported function runs inside the panic boundary, and the
//! header declares the whole contract (rustls-ffi once shipped a function without its boundary).

use std::collections::BTreeSet;
use std::path::Path;

/// CONTRACT.md section 3 plus the extras the bindings rely on.
const CONTRACT: &[&str] = &[
    "fotp_error_kind",
    "fotp_error_message",
    "fotp_error_api_code",
    "fotp_error_http_status",
    "fotp_error_free",
    "fotp_config_new",
    "fotp_config_from_env",
    "fotp_config_set_base_url",
    "fotp_config_set_hmac_auth",
    "fotp_config_set_token_auth",
    "fotp_config_set_timeout_ms",
    "fotp_config_set_connect_timeout_ms",
    "fotp_config_set_retries",
    "fotp_config_set_allow_insecure_http",
    "fotp_config_free",
    "fotp_client_new",
    "fotp_client_free",
    "fotp_verify",
    "fotp_verification_url",
    "fotp_verification_ft_token",
    "fotp_verification_message_id",
    "fotp_verification_code",
    "fotp_verification_free",
    "fotp_query",
    "fotp_wait",
    "fotp_query_result_status",
    "fotp_query_result_raw_status",
    "fotp_query_result_mobile",
    "fotp_query_result_sender",
    "fotp_query_result_send_time",
    "fotp_query_result_code",
    "fotp_query_result_deliver_time",
    "fotp_query_result_free",
    "fotp_callback_parse",
    "fotp_callback_mobile",
    "fotp_callback_sender",
    "fotp_callback_send_time",
    "fotp_callback_code",
    "fotp_callback_content",
    "fotp_callback_deliver_time",
    "fotp_callback_err",
    "fotp_callback_free",
    "fotp_callback_ack",
    "fotp_confirm_callback",
    "fotp_version",
    // extras
    "fotp_config_set_user_agent_suffix",
    "fotp_client_with_timeout",
    "fotp_config_set_call_timeout_ms",
    "fotp_config_set_ca_bundle",
    "fotp_config_set_proxy",
    "fotp_cancel_new",
    "fotp_cancel_trigger",
    "fotp_cancel_free",
    "fotp_client_with_cancel",
    "fotp_callback_fields",
    "fotp_query_result_fields",
    "fotp_verification_fields",
    "fotp_set_logger",
    "fotp_set_logger_fields",
    "fotp_set_log_level",
    "fotp_client_log_id",
];

/// Rust source with comments and string/char literal contents blanked, so that text in them
/// cannot fake or hide a function.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            out.push(' ');
            i = end;
        } else if b[i] == b'"' {
            // Keep `extern "C"` recognisable: blank the contents of every other string.
            let end = (i + 1..b.len())
                .scan(false, |esc, j| {
                    let stop = !*esc && b[j] == b'"';
                    *esc = !*esc && b[j] == b'\\';
                    Some((j, stop))
                })
                .find(|(_, stop)| *stop)
                .map_or(b.len(), |(j, _)| j + 1);
            let lit = &src[i..end];
            out.push_str(if lit == "\"C\"" { lit } else { "\"\"" });
            i = end;
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

struct Exported {
    name: String,
    body_start: String,
}

/// Every function defined with `extern` in `src` (any ABI string), with the start of its body.
fn extern_fns(src: &str) -> Vec<Exported> {
    let mut found = Vec::new();
    let mut rest = src;
    while let Some(pos) = rest.find("extern") {
        let after = &rest[pos + "extern".len()..];
        rest = after;
        let t = after.trim_start();
        // `extern "C" fn`, `extern fn`, `extern "C-unwind" fn`, ...
        let t = match t.strip_prefix("\"") {
            Some(x) => x.split_once('"').map_or("", |(_, tail)| tail).trim_start(),
            None => t,
        };
        let Some(t) = t.strip_prefix("fn") else {
            continue;
        };
        let name: String = t
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // `extern "C" fn(...)` with no name is a function pointer type (a callback), not an item.
        if name.is_empty() {
            continue;
        }
        let body = t.find('{').map_or("", |b| &t[b + 1..]);
        found.push(Exported {
            name,
            body_start: body.trim_start().chars().take(40).collect(),
        });
    }
    found
}

fn ffi_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), strip(&text))
        })
        .collect()
}

fn header_functions() -> BTreeSet<String> {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/fotp.h"))
            .expect("include/fotp.h is generated by cargo build");
    let mut names = BTreeSet::new();
    for (i, _) in header.match_indices('(') {
        let before = header[..i].trim_end();
        let name: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        // Declarations only (not calls in comments: those are preceded by text on the line).
        let line_start = before[..before.len() - name.len()]
            .rsplit('\n')
            .next()
            .unwrap();
        if name.starts_with("fotp_") && !line_start.trim_start().starts_with('*') {
            names.insert(name);
        }
    }
    names
}

#[test]
fn every_exported_function_goes_through_the_boundary() {
    let mut exported = BTreeSet::new();
    for (file, src) in ffi_sources() {
        let fns = extern_fns(&src);
        let no_mangle = src.matches("no_mangle").count();
        assert_eq!(
            fns.len(),
            no_mangle,
            "{file}: every #[no_mangle] item must be an `extern \"C\" fn` written out (not made by a macro)"
        );
        for f in fns {
            assert!(
                f.body_start.starts_with("boundary("),
                "{file}: `{}` must start its body with `boundary(` (starts with {:?})",
                f.name,
                f.body_start
            );
            assert!(exported.insert(f.name.clone()), "{} defined twice", f.name);
        }
    }
    assert!(!exported.is_empty());
    // Every function in the header was seen by the scan above (nothing slips past it).
    let header = header_functions();
    let unseen: Vec<_> = header.difference(&exported).collect();
    assert!(
        unseen.is_empty(),
        "in the header but not found by the scan: {unseen:?}"
    );
    let missing: Vec<_> = exported.difference(&header).collect();
    assert!(
        missing.is_empty(),
        "exported but not in include/fotp.h: {missing:?}"
    );
}

#[test]
fn the_header_declares_the_whole_contract() {
    let header = header_functions();
    let missing: Vec<_> = CONTRACT.iter().filter(|n| !header.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "missing from include/fotp.h: {missing:?}"
    );
}

#[test]
fn the_scan_catches_a_missing_boundary() {
    let bad = strip(
        "#[no_mangle]\npub unsafe extern \"C\" fn fotp_x(p: *const u8) -> u8 {\n    // boundary(\n    unsafe { *p }\n}\n\
         #[no_mangle]\npub extern \"C\" fn fotp_y() { boundary(|| ()) }\n",
    );
    let fns = extern_fns(&bad);
    assert_eq!(fns.len(), 2);
    assert_eq!(fns[0].name, "fotp_x");
    assert!(!fns[0].body_start.starts_with("boundary("));
    assert!(fns[1].body_start.starts_with("boundary("));
    let unwind = extern_fns(&strip("pub extern \"C-unwind\" fn z() {}"));
    assert_eq!(unwind.len(), 1, "other ABI strings are found too");
}
