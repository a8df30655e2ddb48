//! Durations as the API takes them: `"30m"`, `"24h"`, `"7d"`, `"90s"`, or a
//! number of seconds (as a JSON number or a string of digits).

use serde::Deserialize;
use std::time::Duration;

/// A duration field as it arrives in JSON. A value of neither shape (a
/// negative number, `true`) is refused in the request's terms, not with
/// serde's message naming this type.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(
    untagged,
    expecting = "a duration such as \"30m\", \"24h\", \"7d\" or a number of seconds"
)]
pub enum DurationInput {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected a duration such as \"30m\", \"24h\", \"7d\" or a number of seconds")]
pub struct DurationParseError;

impl DurationInput {
    /// The duration meant.
    ///
    /// # Errors
    /// When the text is not a duration.
    pub fn to_duration(&self) -> Result<Duration, DurationParseError> {
        match self {
            Self::Seconds(s) => Ok(Duration::from_secs(*s)),
            Self::Text(t) => parse(t),
        }
    }
}

/// Parses `N`, `Ns`, `Nm`, `Nh` or `Nd`.
///
/// # Errors
/// Anything else, or an overflow.
pub fn parse(text: &str) -> Result<Duration, DurationParseError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| DurationParseError)?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(DurationParseError),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or(DurationParseError)
}

/// Converts to chrono for arithmetic on stored timestamps.
pub fn to_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1w"), Err(DurationParseError));
        assert_eq!(parse("h"), Err(DurationParseError));
        assert_eq!(parse("-5m"), Err(DurationParseError));
        assert_eq!(parse("99999999999999999999d"), Err(DurationParseError));
    }

    #[test]
    fn a_value_of_neither_shape_is_refused_in_the_request_s_terms() {
        for bad in [
            serde_json::json!(-5),
            serde_json::json!(true),
            serde_json::json!(1.5),
        ] {
            let message = serde_json::from_value::<DurationInput>(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(
                message,
                "a duration such as \"30m\", \"24h\", \"7d\" or a number of seconds"
            );
        }
    }
}
