//! The assurance an authorization request asks for: `acr_values` (OIDC
//! Core §3.1.2.1, voluntary, in order of preference) or the `acr` member
//! of the `claims` parameter's `id_token` (§5.5.1.1, possibly essential).
//! Levels and their names are `trusec_storage::assurance`'s.

use crate::error::OAuthError;
use crate::form::Params;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trusec_storage::assurance::Assurance;

/// Longest `acr_values` or `claims` parameter read.
const MAX_PARAM: usize = 4096;
/// Most `acr` values read from a request.
const MAX_VALUES: usize = 10;
/// Longest single `acr` value kept.
const MAX_VALUE: usize = 256;

/// What the request asked for, parsed once and kept in the interaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcrRequest {
    /// The values we know, in the request's order (its preference).
    pub values: Vec<String>,
    /// Requested as an essential claim (§5.5.1.1): unmet is a failure.
    pub essential: bool,
    /// Values were named, but none of them is ours: an essential request
    /// can never be met.
    pub none_known: bool,
}

/// §5.5.1: one member of `claims.id_token`; `null` is a plain request.
#[derive(Debug, Default, Deserialize)]
struct ClaimRequest {
    #[serde(default)]
    essential: bool,
    value: Option<String>,
    values: Option<Vec<String>>,
}

/// §5.5: the `claims` parameter; other members are not ours to read.
#[derive(Debug, Deserialize)]
struct ClaimsParameter {
    #[serde(default)]
    id_token: BTreeMap<String, serde_json::Value>,
}

impl AcrRequest {
    /// # Errors
    /// `invalid_request` for an oversized parameter, `claims` that is not
    /// a JSON object, or an `acr` member of the wrong shape.
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let claimed = match params.get("claims") {
            Some(text) => claims_acr(text)?,
            None => None,
        };
        // An `acr` claims request names the values; `acr_values` only when
        // it names none (both say the same thing, the claim more strictly).
        let (sent, essential) = match claimed {
            Some(c) => {
                let mut values: Vec<String> = c.value.into_iter().collect();
                values.extend(c.values.unwrap_or_default());
                (values, c.essential)
            }
            None => (Vec::new(), false),
        };
        let sent = if sent.is_empty() {
            acr_values(params)?
        } else {
            sent
        };
        if sent.len() > MAX_VALUES || sent.iter().any(|v| v.len() > MAX_VALUE) {
            return Err(OAuthError::invalid_request(
                "too many or too long acr values",
            ));
        }
        let values: Vec<String> = sent
            .iter()
            .filter(|v| Assurance::from_acr(v).is_some())
            .cloned()
            .collect();
        Ok(Self {
            none_known: !sent.is_empty() && values.is_empty(),
            values,
            essential,
        })
    }

    /// The level to reach: the preferred (first) known value's.
    pub fn target(&self) -> Option<Assurance> {
        self.values.first().and_then(|v| Assurance::from_acr(v))
    }

    /// The first requested value a sign-in at `level` meets (§5.5.1.1: the
    /// `acr` returned "matches one of the requested values").
    pub fn met_by(&self, level: Option<Assurance>) -> Option<&str> {
        let level = level?;
        self.values
            .iter()
            .find(|v| Assurance::from_acr(v).is_some_and(|wanted| wanted <= level))
            .map(String::as_str)
    }
}

fn acr_values(params: &Params) -> Result<Vec<String>, OAuthError> {
    let Some(text) = params.get("acr_values") else {
        return Ok(Vec::new());
    };
    if text.len() > MAX_PARAM {
        return Err(OAuthError::invalid_request("acr_values is too long"));
    }
    Ok(text
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect())
}

fn claims_acr(text: &str) -> Result<Option<ClaimRequest>, OAuthError> {
    if text.len() > MAX_PARAM {
        return Err(OAuthError::invalid_request("claims is too long"));
    }
    let claims: ClaimsParameter = serde_json::from_str(text).map_err(|_| {
        OAuthError::invalid_request("claims must be a JSON object (OIDC Core §5.5)")
    })?;
    claims
        .id_token
        .get("acr")
        .map(|member| {
            if member.is_null() {
                return Ok(ClaimRequest::default());
            }
            serde_json::from_value(member.clone()).map_err(|_| {
                OAuthError::invalid_request("claims.id_token.acr must name string values")
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use trusec_storage::assurance::{ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR, REFEDS_MFA};

    fn parse(query: &str) -> Result<AcrRequest, OAuthError> {
        AcrRequest::parse(&Params::parse(query.as_bytes()).unwrap())
    }

    #[test]
    fn acr_values_keep_known_values_in_order() {
        let r = parse("acr_values=gold%20urn:trusec:acr:mfa%20urn:trusec:acr:sfa").unwrap();
        assert_eq!(r.values, [ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR]);
        assert!(!r.essential && !r.none_known);
        assert_eq!(r.target(), Some(Assurance::MultiFactor));
        assert_eq!(
            r.met_by(Some(Assurance::SingleFactor)),
            Some(ACR_SINGLE_FACTOR)
        );
        assert_eq!(
            r.met_by(Some(Assurance::MultiFactor)),
            Some(ACR_MULTI_FACTOR)
        );
        assert_eq!(r.met_by(None), None);
        assert_eq!(parse("").unwrap(), AcrRequest::default());
        assert!(parse("acr_values=gold").unwrap().none_known);
    }

    #[test]
    fn the_claims_parameter_can_make_acr_essential() {
        let claims = serde_json::json!({"id_token": {"acr": {"essential": true, "values": [REFEDS_MFA]}}, "userinfo": {"email": null}});
        let q = format!(
            "acr_values=urn:trusec:acr:sfa&claims={}",
            urlencoding(&claims.to_string())
        );
        let r = parse(&q).unwrap();
        assert_eq!(r.values, [REFEDS_MFA]);
        assert!(r.essential);
        let plain = serde_json::json!({"id_token": {"acr": null}});
        let q = format!("claims={}", urlencoding(&plain.to_string()));
        assert_eq!(parse(&q).unwrap(), AcrRequest::default());
        for bad in [
            "[1]",
            r#"{"id_token":{"acr":{"values":[1]}}}"#,
            r#"{"id_token":[]}"#,
        ] {
            let err = parse(&format!("claims={}", urlencoding(bad))).unwrap_err();
            assert_eq!(err.code, crate::error::ErrorCode::InvalidRequest, "{bad}");
        }
        let many = [ACR_SINGLE_FACTOR; 11].join("%20");
        assert!(parse(&format!("acr_values={many}")).is_err());
    }

    fn urlencoding(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}
