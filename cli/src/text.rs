//! Text from servers, requests and callbacks, made safe for a terminal.

/// Control characters (C0 but newline, DEL, C1) and bidirectional overrides written as
/// `\u{..}`, so that text from requests or callbacks cannot drive a terminal.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped_and_text_is_kept() {
        assert!(matches!(
            escape_controls("plain 中文 text\nline two"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("\u{1b}]0;t\u{7}\u{1b}[2J\r\t\u{7f}\u{9b}\u{202e}x\u{2066}"),
            "\\u{1b}]0;t\\u{7}\\u{1b}[2J\\u{d}\\u{9}\\u{7f}\\u{9b}\\u{202e}x\\u{2066}"
        );
    }
}
