//! The environment an endpoint serves. Each environment is its own issuer
//! (contract): `live` at `TRUSEC_ISSUER`, every other one at
//! `{TRUSEC_ISSUER}/env/NAME`, with its own copy of every protocol and
//! hosted-page path. The server mounts one set of routes per environment,
//! each with that environment's states, so a handler's environment comes
//! from the route the request matched and from nothing the request says.

use trusec_storage::environments::EnvironmentRow;
use trusec_storage::ids;

/// One environment as its endpoints see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// `env_live`, `env_test`, …
    pub id: String,
    /// `live`, `test`, …
    pub name: String,
    /// Its issuer: `TRUSEC_ISSUER` for live, `{TRUSEC_ISSUER}/env/NAME`
    /// otherwise; `iss` of its tokens, base of its SAML entityID.
    pub issuer: String,
    /// The path prefix of its endpoints: empty for live, `/env/NAME`
    /// otherwise. Paths we send a browser to start with it.
    pub base_path: String,
}

/// Why an environment row cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("environment {name:?} cannot be served: its name must be 1-64 of a-z, 0-9, '-' and '_'")]
pub struct BadEnvironmentName {
    pub name: String,
}

impl Environment {
    /// The environment of `row` under the deployment's issuer.
    ///
    /// # Errors
    /// A name that is not a plain path segment (it becomes one).
    pub fn new(row: &EnvironmentRow, deployment_issuer: &str) -> Result<Self, BadEnvironmentName> {
        let base = deployment_issuer.trim_end_matches('/');
        if row.id == ids::ENV_LIVE {
            return Ok(Self::live(base));
        }
        let name_ok = (1..=64).contains(&row.name.len())
            && row
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(BadEnvironmentName {
                name: row.name.clone(),
            });
        }
        let base_path = format!("/env/{}", row.name);
        Ok(Self {
            id: row.id.clone(),
            name: row.name.clone(),
            issuer: format!("{base}{base_path}"),
            base_path,
        })
    }

    /// The live environment, served at the deployment's issuer itself.
    pub fn live(deployment_issuer: &str) -> Self {
        Self {
            id: ids::ENV_LIVE.to_owned(),
            name: "live".to_owned(),
            issuer: deployment_issuer.trim_end_matches('/').to_owned(),
            base_path: String::new(),
        }
    }

    pub fn is_live(&self) -> bool {
        self.id == ids::ENV_LIVE
    }

    /// `path` (which starts with `/`) under this environment.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    /// The absolute URL of `path` under this environment.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> EnvironmentRow {
        EnvironmentRow {
            id: id.into(),
            name: name.into(),
            created_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn live_is_the_root_and_others_live_under_env_name() -> Result<(), BadEnvironmentName> {
        let live = Environment::new(&row(ids::ENV_LIVE, "live"), "https://id.example/")?;
        assert_eq!(live.issuer, "https://id.example");
        assert_eq!(live.path("/login"), "/login");
        let test = Environment::new(&row(ids::ENV_TEST, "test"), "https://id.example/")?;
        assert_eq!(test.issuer, "https://id.example/env/test");
        assert_eq!(test.path("/login"), "/env/test/login");
        assert_eq!(
            test.url("/saml/metadata"),
            "https://id.example/env/test/saml/metadata"
        );
        assert!(Environment::new(&row("env_x", "../x"), "https://id.example").is_err());
        assert!(Environment::new(&row("env_x", ""), "https://id.example").is_err());
        Ok(())
    }
}
