//! The SAML route table.

mod metadata;
mod post_form;
mod sender;
mod slo;
pub(crate) mod sso;

use actix_web::{HttpResponse, web};

const AUTOPOST: &str = include_str!("../../../static/autopost.js");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml/metadata", web::get().to(metadata::get))
        .service(
            web::resource("/saml/sso")
                .get(sso::redirect)
                .post(sso::post),
        )
        .route("/saml/sso/init", web::get().to(sso::idp_initiated))
        .route("/saml/sso/continue", web::get().to(sso::resume))
        .service(
            web::resource("/saml/slo")
                .get(slo::redirect)
                .post(slo::post),
        )
        .route("/saml/slo/propagate", web::get().to(slo::propagate))
        .route("/static/autopost.js", web::get().to(autopost));
}

async fn autopost() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(AUTOPOST)
}

#[cfg(test)]
mod tests {
    use crate::SamlState;
    use crate::test_support::{register_sp, state};
    use actix_web::{App, test, web};
    use base64::Engine;
    use std::io::Write;
    use trusec_storage::audit::{self, AuditFilter, EventType};
    use trusec_storage::{PageRequest, ids};
    use trusec_testdb::TestDb;

    const SP: &str = "https://sp.test/saml";

    fn redirect_query(xml: &str) -> String {
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflater.write_all(xml.as_bytes()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(deflater.finish().unwrap());
        let encoded: String = url::form_urlencoded::byte_serialize(b64.as_bytes()).collect();
        format!("SAMLRequest={encoded}")
    }

    /// Every audit event, of every environment and none.
    async fn all_events(state: &SamlState) -> u64 {
        state.core().verify_audit(None).await.unwrap().checked
    }

    async fn refusals(state: &SamlState) -> Vec<serde_json::Value> {
        let filter = AuditFilter {
            outcome: None,
            event_type: Some(EventType::SamlRequestRefused),
            user_id: None,
            since: None,
        };
        let page = PageRequest {
            limit: 100,
            after: None,
        };
        let rows = state
            .core()
            .db
            .run(move |c| audit::list(c, ids::ENV_LIVE, &filter, &page))
            .await
            .unwrap();
        rows.data
            .iter()
            .map(|r| r.to_event().unwrap().data)
            .collect()
    }

    #[tokio::test]
    async fn each_refused_request_is_audited_once_with_its_reason() {
        let test_db = TestDb::sqlite();
        let state = state(&test_db).await;
        let sp_id = register_sp(&state, SP, None).await.id;
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(state.clone()))
                .configure(super::configure),
        )
        .await;
        let stale = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2001-01-01T00:00:00Z"><saml:Issuer>{SP}</saml:Issuer></samlp:AuthnRequest>"#
        );
        let logout = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_l1" Version="2.0" IssueInstant="2001-01-01T00:00:00Z"><saml:Issuer>{SP}</saml:Issuer></samlp:LogoutRequest>"#
        );
        let refused = [
            (
                format!("/saml/sso?{}", redirect_query(&stale)),
                "stale",
                "authn_request",
            ),
            (
                format!("/saml/slo?{}", redirect_query(&logout)),
                "unsigned",
                "logout",
            ),
        ];
        let before = all_events(&state).await;
        for (uri, _, _) in &refused {
            let resp =
                test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
            assert_eq!(resp.status(), 400, "{uri}");
        }
        assert_eq!(
            all_events(&state).await,
            before + 2,
            "one event per refused request"
        );
        let found = refusals(&state).await;
        assert_eq!(found.len(), 2);
        // Newest first.
        for (event, (_, reason, message)) in found.iter().rev().zip(&refused) {
            assert_eq!(event["reason"], *reason);
            assert_eq!(event["message"], *message);
            assert_eq!(event["issuer"], SP);
            assert_eq!(event["sp_id"], sp_id.as_str());
        }
        // Not a refusal (the browser is sent to sign in): nothing audited.
        let uri = "/saml/sso/init?sp=https%3A%2F%2Fsp.test%2Fsaml";
        let resp = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(resp.status(), 302);
        assert_eq!(all_events(&state).await, before + 2);
        // An unknown issuer has no environment, but is audited all the same.
        let unknown = stale.replace(SP, "https://unknown.test");
        let uri = format!("/saml/sso?{}", redirect_query(&unknown));
        let resp = test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(all_events(&state).await, before + 3);
    }
}
