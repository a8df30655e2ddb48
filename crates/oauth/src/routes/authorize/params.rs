//! The closed sets among the authorization request's parameters, parsed
//! once into enums so that the flow matches on them exhaustively.

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use serde::{Deserialize, Serialize};

/// `response_type` (RFC 6749 §3.1.1): this server has the code flow only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    Code,
}

/// `response_mode` (OAuth 2.0 Multiple Response Type Encoding Practices §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
}

/// `code_challenge_method` (RFC 7636 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeChallengeMethod {
    Plain,
    S256,
}

/// One `prompt` value (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    None,
    Login,
    Consent,
    SelectAccount,
}

impl CodeChallengeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::S256 => "S256",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "plain" => Some(Self::Plain),
            "S256" => Some(Self::S256),
            _ => None,
        }
    }
}

impl Prompt {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "login" => Some(Self::Login),
            "consent" => Some(Self::Consent),
            "select_account" => Some(Self::SelectAccount),
            _ => None,
        }
    }
}

/// # Errors
/// `invalid_request` when it is missing, `unsupported_response_type` for
/// anything but `code`.
pub fn response_type(params: &Params) -> Result<ResponseType, OAuthError> {
    match params.get("response_type") {
        Some("code") => Ok(ResponseType::Code),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        )),
        None => Err(OAuthError::invalid_request("response_type is missing")),
    }
}

/// The mode, `query` when absent (the code flow's default).
///
/// # Errors
/// `invalid_request` for any other.
pub fn response_mode(params: &Params) -> Result<ResponseMode, OAuthError> {
    match params.get("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some(_) => Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )),
    }
}

/// The PKCE method, if one was sent.
///
/// # Errors
/// `invalid_request` for anything but S256: `plain` protects nothing
/// against a stolen code (RFC 9700 §2.1.1).
pub fn code_challenge_method(params: &Params) -> Result<Option<CodeChallengeMethod>, OAuthError> {
    let Some(name) = params.get("code_challenge_method") else {
        return Ok(None);
    };
    match CodeChallengeMethod::parse(name) {
        Some(CodeChallengeMethod::S256) => Ok(Some(CodeChallengeMethod::S256)),
        Some(CodeChallengeMethod::Plain) | None => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256 (plain is not allowed)",
        )),
    }
}

/// The space-separated `prompt` values.
///
/// # Errors
/// `invalid_request` for an unknown value, or `none` with others (OIDC
/// Core §3.1.2.1).
pub fn prompts(params: &Params) -> Result<Vec<Prompt>, OAuthError> {
    let Some(text) = params.get("prompt") else {
        return Ok(Vec::new());
    };
    let values = text
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(|v| {
            Prompt::parse(v)
                .ok_or_else(|| OAuthError::invalid_request("prompt has an unsupported value"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.contains(&Prompt::None) && values.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(values)
}

/// OIDC Core §6: request objects by value are not supported. A
/// `request_uri` never reaches this check at `/oauth/authorize` (a pushed
/// request's is taken before, any other refused there), so one here is
/// inside a pushed authorization request, where RFC 9126 §2.1 forbids it.
///
/// # Errors
/// `request_not_supported`, or `invalid_request` for a `request_uri`.
pub fn no_request_object(params: &Params) -> Result<(), OAuthError> {
    if params.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri is not allowed in a pushed authorization request (RFC 9126 §2.1)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::parse(query.as_bytes()).unwrap()
    }

    #[test]
    fn closed_sets_parse_and_refuse_the_rest() {
        assert_eq!(
            response_type(&params("response_type=code")).unwrap(),
            ResponseType::Code
        );
        assert_eq!(
            response_type(&params("response_type=token"))
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedResponseType
        );
        assert_eq!(
            response_type(&params("")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(response_mode(&params("")).unwrap(), ResponseMode::Query);
        assert!(response_mode(&params("response_mode=fragment")).is_err());
        assert_eq!(code_challenge_method(&params("")).unwrap(), None);
        assert_eq!(
            code_challenge_method(&params("code_challenge_method=S256")).unwrap(),
            Some(CodeChallengeMethod::S256)
        );
        for refused in ["plain", "s256", "S512"] {
            let p = params(&format!("code_challenge_method={refused}"));
            assert!(code_challenge_method(&p).is_err(), "{refused}");
        }
    }

    #[test]
    fn prompt_values() {
        assert_eq!(
            prompts(&params("prompt=login%20consent")).unwrap(),
            [Prompt::Login, Prompt::Consent]
        );
        assert!(prompts(&params("prompt=none%20login")).is_err());
        assert!(prompts(&params("prompt=create")).is_err());
        assert_eq!(
            serde_json::to_string(&[Prompt::None, Prompt::SelectAccount]).unwrap(),
            r#"["none","select_account"]"#
        );
    }

    #[test]
    fn request_objects_are_refused_by_kind() {
        assert!(no_request_object(&params("scope=openid")).is_ok());
        assert_eq!(
            no_request_object(&params("request=x")).unwrap_err().code,
            ErrorCode::RequestNotSupported
        );
        assert_eq!(
            no_request_object(&params("request_uri=x"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
    }
}
