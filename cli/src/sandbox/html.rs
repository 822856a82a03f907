//! Server-rendered pages: the phone (redirect) page and the dashboard. No JavaScript.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

use super::state::{clock_text, PhoneViewData, Shared, Status};

/// The mobile number the phone page fills in (editable).
const DEMO_MOBILE: &str = "8613800138000";

const STYLE: &str = r#"<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f3f4f6;color:#111827}
main{max-width:960px;margin:0 auto;padding:24px}
.phone{max-width:380px;margin:24px auto;background:#fff;border-radius:28px;padding:24px;box-shadow:0 8px 30px rgba(0,0,0,.12)}
.to{color:#6b7280;font-size:14px}
.bubble{background:#22c55e;color:#fff;border-radius:18px 18px 4px 18px;padding:12px 16px;margin:16px 0 16px auto;max-width:85%;white-space:pre-wrap}
label{display:block;font-size:13px;color:#6b7280;margin-top:12px}
input,textarea{width:100%;box-sizing:border-box;font:inherit;padding:8px;border:1px solid #d1d5db;border-radius:8px}
button{margin-top:16px;width:100%;padding:12px;font-size:16px;border:0;border-radius:12px;background:#2563eb;color:#fff;cursor:pointer}
a.sms{display:block;text-align:center;margin-top:12px;color:#2563eb}
table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}
code{font-family:ui-monospace,monospace;font-size:13px}
.s0{color:#b45309}.s1{color:#b91c1c}.s2{color:#15803d}
.ok{color:#15803d}.bad{color:#b91c1c}
.muted{color:#6b7280;font-size:13px}
</style>"#;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, extra_head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{extra_head}\
         <title>{}</title>{STYLE}</head><body>{body}</body></html>\n",
        esc(title)
    )
}

fn status_label(status: &str) -> &'static str {
    match status {
        "0" => "processing",
        "1" => "failed",
        "2" => "success",
        _ => "unknown",
    }
}

/// A plain message page (errors, expired links).
pub(crate) fn message_page(title: &str, message: &str) -> String {
    page(
        title,
        "",
        &format!(
            "<div class=\"phone\"><h2>{}</h2><p id=\"message\">{}</p></div>",
            esc(title),
            esc(message)
        ),
    )
}

/// The page standing for the phone: the prepared SMS and a "Send" button.
pub(crate) fn phone_page(v: &PhoneViewData) -> String {
    let sms_link = format!(
        "sms:{}?body={}",
        utf8_percent_encode(&v.sender, NON_ALPHANUMERIC),
        utf8_percent_encode(&v.sms_text, NON_ALPHANUMERIC)
    );
    let body = if v.status == Status::Processing {
        format!(
            "<div class=\"phone\">\
             <div class=\"to\">New message to <strong id=\"sender\">{sender}</strong></div>\
             <div class=\"bubble\" id=\"sms\">{text}</div>\
             <form method=\"post\" action=\"/sandbox/send/{token}\">\
             <label for=\"mobile\">Your number</label>\
             <input id=\"mobile\" name=\"mobile\" value=\"{mobile}\" inputmode=\"tel\" required>\
             <label for=\"content\">Message</label>\
             <textarea id=\"content\" name=\"content\" rows=\"3\" required>{text}</textarea>\
             <button id=\"send\" type=\"submit\">Send</button>\
             </form>\
             <a class=\"sms\" id=\"sms-link\" href=\"{link}\">Open in the SMS app</a>\
             <p class=\"muted\">fotp sandbox: this page stands for the user's phone. \
             The link expires in {mins} min {secs} s.</p></div>",
            sender = esc(&v.sender),
            text = esc(&v.sms_text),
            token = esc(&v.token),
            mobile = DEMO_MOBILE,
            link = esc(&sms_link),
            mins = v.expires_in_s / 60,
            secs = v.expires_in_s % 60,
        )
    } else {
        format!(
            "<div class=\"phone\"><h2>Already sent</h2>\
             <p id=\"result\" data-status=\"{s}\">This verification is finished: \
             <strong class=\"s{s}\">{label}</strong>.</p></div>",
            s = v.status.wire(),
            label = status_label(v.status.wire()),
        )
    };
    page("Verify your number", "", &body)
}

/// The answer to the phone page's "Send".
pub(crate) fn sent_page(data: &Value) -> String {
    let status = data["status"].as_str().unwrap_or("");
    let err = data["err"]
        .as_str()
        .map(|e| format!(" ({})", esc(e)))
        .unwrap_or_default();
    page(
        "Message sent",
        "",
        &format!(
            "<div class=\"phone\"><h2>Message sent</h2>\
             <p id=\"result\" data-status=\"{status}\">Verification <strong class=\"s{status}\">{label}</strong>{err}.</p>\
             <p class=\"muted\"><a href=\"/\">Sandbox dashboard</a></p></div>",
            status = esc(status),
            label = status_label(status),
        ),
    )
}

/// The dashboard: every session, its status and callback attempts. Refreshes itself.
pub(crate) fn dashboard(shared: &Shared) -> String {
    let doc = shared.sessions_json();
    let sessions = doc["sessions"].as_array().cloned().unwrap_or_default();
    let mut rows = String::new();
    for s in sessions.iter().rev() {
        let status = s["status"].as_str().unwrap_or("");
        let token = s["ftToken"].as_str().unwrap_or("");
        let mut attempts = String::new();
        for a in s["callbacks"].as_array().into_iter().flatten() {
            let ok = a["accepted"].as_bool().unwrap_or(false);
            attempts.push_str(&format!(
                "<div class=\"{}\">#{}.{} HTTP {} <code>{}</code> <span class=\"muted\">{}</span></div>",
                if ok { "ok" } else { "bad" },
                a["delivery"],
                a["attempt"],
                a["httpStatus"],
                esc(a["answer"].as_str().unwrap_or("")),
                clock_text(a["at"].as_u64().unwrap_or(0)),
            ));
        }
        if attempts.is_empty() {
            attempts = match s["callbackUrl"].as_str() {
                Some(u) => format!("<span class=\"muted\">to {}</span>", esc(u)),
                None => "<span class=\"muted\">pull only</span>".into(),
            };
        }
        rows.push_str(&format!(
            "<tr class=\"session\" data-token=\"{t}\" data-status=\"{status}\">\
             <td><a href=\"/flash/opt/redirect/{t}\"><code>{t}</code></a></td>\
             <td>{ft}</td><td><code>{code}</code></td>\
             <td class=\"s{status}\">{label}{expired}</td><td>{mobile}</td>\
             <td>{expires}</td><td>{attempts}</td></tr>",
            t = esc(token),
            ft = esc(s["ftId"].as_str().unwrap_or("")),
            code = esc(s["code"].as_str().unwrap_or("")),
            label = status_label(status),
            expired = if s["expired"].as_bool().unwrap_or(false) {
                " (expired)"
            } else {
                ""
            },
            mobile = esc(s["mobile"].as_str().unwrap_or("")),
            expires = clock_text(s["expiresAt"].as_u64().unwrap_or(0)),
        ));
    }
    if rows.is_empty() {
        rows =
            "<tr><td colspan=\"7\" class=\"muted\">No sessions yet: call verify.</td></tr>".into();
    }
    let mut templates: Vec<_> = shared.templates.iter().collect();
    templates.sort();
    let templates: String = templates
        .into_iter()
        .map(|(id, url)| {
            format!(
                "<li><code>{}</code> → {}</li>",
                esc(id),
                url.as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "pull only".into())
            )
        })
        .collect();
    page(
        "fotp sandbox",
        "<meta http-equiv=\"refresh\" content=\"3\">",
        &format!(
            "<main><h1>fotp sandbox</h1>\
             <p class=\"muted\">Base URL <code>{base}</code> · app id <code>{app}</code> · \
             sender <code>{sender}</code> · times in UTC · refreshes every 3 s</p>\
             <h3>Templates</h3><ul>{templates}</ul>\
             <h3>Sessions</h3><div style=\"overflow-x:auto\"><table id=\"sessions\"><tr><th>ftToken</th><th>ftId</th><th>code</th>\
             <th>status</th><th>mobile</th><th>expires</th><th>callbacks</th></tr>{rows}</table></div></main>",
            base = esc(&shared.public_url),
            app = esc(&shared.options.app_id),
            sender = esc(&shared.options.sender),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
