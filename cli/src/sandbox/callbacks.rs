//! Pushing results to the template's callback URL, with retries.

use std::sync::Arc;
use std::time::Duration;

use super::state::{wall_ms, Attempt, Shared};

const BACKOFF_CAP: Duration = Duration::from_secs(5);
const ANSWER_KEEP: usize = 500;

/// Delivers `body` to `url` `deliveries` times after `delay`, one delivery after the other.
pub(crate) fn spawn_deliveries(
    shared: Arc<Shared>,
    token: String,
    url: String,
    body: Vec<u8>,
    deliveries: u32,
    delay: Duration,
) {
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for delivery in 1..=deliveries {
            deliver(&shared, &token, &url, &body, delivery).await;
        }
    });
}

/// One delivery: attempts until the answer is a JSON object with `"code": "0"`.
async fn deliver(shared: &Arc<Shared>, token: &str, url: &str, body: &[u8], delivery: u32) {
    let attempts = shared.options.callback_attempts;
    let mut pause = shared.options.callback_backoff;
    for attempt in 1..=attempts {
        let (agent, u, b) = (shared.http.clone(), url.to_owned(), body.to_vec());
        // ureq is blocking: keep it off the async workers.
        let outcome = tokio::task::spawn_blocking(move || post(&agent, &u, &b))
            .await
            .unwrap_or_else(|e| (0, format!("delivery task failed: {e}")));
        let (http_status, answer) = outcome;
        let accepted = http_status / 100 == 2 && is_ack(&answer);
        shared.log(format_args!(
            "callback ftToken={token} delivery {delivery} attempt {attempt}: HTTP {http_status} {}",
            if accepted { "accepted" } else { "not accepted" }
        ));
        shared.record_attempt(
            token,
            Attempt {
                delivery,
                attempt,
                http_status,
                answer: truncate(&answer),
                at_ms: wall_ms(),
                accepted,
            },
        );
        if accepted {
            return;
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await;
            // Saturating: the backoff option is any Duration.
            pause = pause.saturating_mul(2).min(BACKOFF_CAP);
        }
    }
}

/// POSTs the callback; returns the HTTP status (0 when there was no answer) and the answer
/// text or the transport error.
fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> (u16, String) {
    let resp = agent
        .post(url)
        .header("Content-Type", "application/json;charset=utf-8")
        .send(body);
    match resp {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("(unreadable answer: {e})"));
            (status, text)
        }
        Err(e) => (0, format!("(no answer: {e})")),
    }
}

/// True for a JSON object whose `code` is the string `"0"`.
pub(crate) fn is_ack(answer: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str().map(|c| c == "0")))
        .unwrap_or(false)
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(ANSWER_KEEP) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_rules() {
        assert!(is_ack(fotp::CALLBACK_ACK));
        assert!(is_ack(r#" {"code": "0", "extra": 1} "#));
        for bad in [
            r#"{"code":0}"#,
            r#"{"code":"1"}"#,
            "ok",
            "",
            "[]",
            r#"{"c":"0"}"#,
        ] {
            assert!(!is_ack(bad), "{bad}");
        }
    }

    #[test]
    fn truncation_is_char_safe() {
        let long = "é".repeat(ANSWER_KEEP + 10);
        let t = truncate(&long);
        assert_eq!(t.chars().count(), ANSWER_KEEP + 1);
        assert_eq!(truncate("short"), "short");
    }
}
