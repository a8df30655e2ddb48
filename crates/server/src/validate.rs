//! Field rules shared by the API and the CLI. Each failure names its field.

use crate::durations::DurationInput;
use crate::error::ApiError;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const NAME_MAX: usize = 256;
pub const GROUPS_MAX: usize = 100;
pub const GROUP_NAME_MAX: usize = 128;
pub const METADATA_MAX_BYTES: usize = 4096;
/// API keys live 90 days unless asked otherwise, between a minute and two years.
pub const API_KEY_LIFETIME_DEFAULT: Duration = Duration::from_secs(90 * 86_400);
pub const API_KEY_LIFETIME_MIN: Duration = Duration::from_secs(60);
pub const API_KEY_LIFETIME_MAX: Duration = Duration::from_secs(2 * 365 * 86_400);

/// A trimmed, syntactically valid email of at most 254 characters (RFC 5321 §4.5.3.1.3).
///
/// # Errors
/// `Validation` naming `param`.
pub fn email(param: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.len() > 254 || !email_address::EmailAddress::is_valid(value) {
        return Err(ApiError::validation(param, "must be a valid email address"));
    }
    Ok(value.to_owned())
}

/// A password of 8 to 128 characters.
///
/// # Errors
/// `Validation` naming `password`.
pub fn password(value: &str) -> Result<(), ApiError> {
    let len = value.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(ApiError::validation(
            "password",
            format!("must be between {PASSWORD_MIN} and {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

/// An optional display name: trimmed, not empty, at most 256 characters.
///
/// # Errors
/// `Validation` naming `param`.
pub fn name(param: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|v| {
            let v = v.trim().to_owned();
            if v.is_empty() || v.chars().count() > NAME_MAX || v.chars().any(char::is_control) {
                Err(ApiError::validation(
                    param,
                    format!("must be 1 to {NAME_MAX} printable characters"),
                ))
            } else {
                Ok(v)
            }
        })
        .transpose()
}

/// Group names: at most 100, each 1 to 128 printable characters, no duplicates.
///
/// # Errors
/// `Validation` naming `groups`.
pub fn groups(value: Vec<String>) -> Result<Vec<String>, ApiError> {
    if value.len() > GROUPS_MAX {
        return Err(ApiError::validation(
            "groups",
            format!("at most {GROUPS_MAX} groups"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(value.len());
    for g in value {
        let g = g.trim().to_owned();
        if g.is_empty() || g.chars().count() > GROUP_NAME_MAX || g.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "groups",
                format!("each group is 1 to {GROUP_NAME_MAX} printable characters"),
            ));
        }
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// A JSON object of at most 4 KiB once serialised.
///
/// # Errors
/// `Validation` naming `metadata`.
pub fn metadata(value: serde_json::Value) -> Result<serde_json::Value, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation("metadata", "must be a JSON object"));
    }
    if serde_json::to_string(&value).map_or(usize::MAX, |s| s.len()) > METADATA_MAX_BYTES {
        return Err(ApiError::validation(
            "metadata",
            format!("must be at most {METADATA_MAX_BYTES} bytes as JSON"),
        ));
    }
    Ok(value)
}

/// A duration within `[min, max]`.
///
/// # Errors
/// `Validation` naming `param`.
pub fn duration(
    param: &str,
    value: &DurationInput,
    min: Duration,
    max: Duration,
) -> Result<Duration, ApiError> {
    let d = value
        .to_duration()
        .map_err(|e| ApiError::validation(param, e.to_string()))?;
    if d < min || d > max {
        return Err(ApiError::validation(
            param,
            format!(
                "must be between {} and {} seconds",
                min.as_secs(),
                max.as_secs()
            ),
        ));
    }
    Ok(d)
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit
/// `null` (`Some(None)`). Use with `#[serde(default, deserialize_with = ..)]`.
///
/// # Errors
/// When the value has the wrong type.
pub fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Ada@Example.com ").unwrap(),
            "Ada@Example.com"
        );
        assert!(email("email", "not-an-email").is_err());
        assert!(email("email", &format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_count_characters() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"é".repeat(128)).is_ok());
        assert!(password(&"é".repeat(129)).is_err());
    }

    #[test]
    fn groups_and_metadata() {
        assert_eq!(
            groups(vec!["a".into(), " a ".into(), "b".into()]).unwrap(),
            ["a", "b"]
        );
        assert!(groups(vec![String::new()]).is_err());
        assert!(metadata(serde_json::json!([1])).is_err());
        assert!(metadata(serde_json::json!({"k": "x".repeat(5000)})).is_err());
        assert!(metadata(serde_json::json!({"plan": "pro"})).is_ok());
    }
}
