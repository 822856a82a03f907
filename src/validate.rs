//! Input rules of the protocol, checked before anything is sent.

use crate::error::{Error, Result};

/// `ftId`: 1-64 characters, no control characters.
pub fn ft_id(v: &str) -> Result<()> {
    let n = v.chars().count();
    if n == 0 || n > 64 {
        return Err(Error::invalid(format!(
            "ftId must be 1-64 characters, got {n}"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid("ftId must not contain control characters"));
    }
    Ok(())
}

/// `code`: 4-6 ASCII digits.
pub fn code(v: &str) -> Result<()> {
    if !(4..=6).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("code must be 4-6 ASCII digits"));
    }
    Ok(())
}

/// `validityPeriod`: 1-10 minutes.
pub fn validity_minutes(v: u32) -> Result<()> {
    if !(1..=10).contains(&v) {
        return Err(Error::invalid(format!(
            "validityPeriod must be 1-10 minutes, got {v}"
        )));
    }
    Ok(())
}

/// `ftToken`: 1-128 visible ASCII characters. The message never echoes the token.
pub fn ft_token(v: &str) -> Result<()> {
    if v.is_empty() || v.len() > 128 {
        return Err(Error::invalid(format!(
            "ftToken must be 1-128 characters, got {}",
            v.chars().count()
        )));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "ftToken must contain only visible ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn field_err(r: Result<()>, field: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains(field), "{e} should name {field}");
    }

    #[test]
    fn ft_id_rules() {
        assert!(ft_id("2").is_ok());
        assert!(ft_id("模版-2").is_ok());
        assert!(ft_id(&"x".repeat(64)).is_ok());
        assert!(ft_id(&"模".repeat(64)).is_ok(), "characters, not bytes");
        field_err(ft_id(""), "ftId");
        field_err(ft_id(&"x".repeat(65)), "ftId");
        field_err(ft_id("a\nb"), "ftId");
        field_err(ft_id("a\u{7f}"), "ftId");
    }

    #[test]
    fn code_rules() {
        for ok in ["0000", "12345", "999999"] {
            assert!(code(ok).is_ok(), "{ok}");
        }
        for bad in ["", "123", "1234567", "12a4", "１２３４", " 1234", "-123"] {
            field_err(code(bad), "code");
        }
    }

    #[test]
    fn validity_rules() {
        assert!(validity_minutes(1).is_ok());
        assert!(validity_minutes(10).is_ok());
        field_err(validity_minutes(0), "validityPeriod");
        field_err(validity_minutes(11), "validityPeriod");
    }

    #[test]
    fn token_rules() {
        assert!(ft_token("200e96b6a8bf8ed8c3de194cf14b342f").is_ok());
        assert!(ft_token(&"a".repeat(128)).is_ok());
        field_err(ft_token(""), "ftToken");
        field_err(ft_token(&"a".repeat(129)), "ftToken");
        field_err(ft_token("a b"), "ftToken");
        field_err(ft_token("tök"), "ftToken");
        let secretish = "x\u{1}secret-token-value";
        assert!(!ft_token(secretish)
            .unwrap_err()
            .message()
            .contains("secret-token"));
    }
}
