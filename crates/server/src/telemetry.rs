//! Structured logs through `tracing`: text for people, JSON lines for
//! machines. Each request runs in a span carrying its request id.

use crate::cli::LogFormat;
use crate::settings::ConfigError;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process).
///
/// # Errors
/// When the filter does not parse.
pub fn init(filter: &str, format: LogFormat) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| ConfigError::new("TRUSEC_LOG", e))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(installed);
    Ok(())
}

/// The request span: method, route pattern, request id and the resolved
/// client IP, never the path or query (they carry ids, `login_hint`
/// addresses, `id_token_hint`, `SAMLRequest`, `RelayState`), and never a
/// forwarded header unless a trusted proxy set it (`trusec_ui::http`). The
/// stock builder of tracing-actix-web records both.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let http = request.request();
        let route = http.match_pattern().unwrap_or_else(|| "unmatched".into());
        let request_id = actix_web::HttpMessage::extensions(request)
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let client = trusec_ui::http::client_info(http);
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            client_ip = %client.ip.as_deref().unwrap_or("unknown"),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, test, web};

    #[actix_web::test]
    async fn request_logs_carry_the_route_pattern_never_the_path_query_or_forged_ip() {
        let captured = trusec_testkit::log::CapturedLog::default();
        let _guard = tracing::subscriber::set_default(captured.subscriber());
        let app = test::init_service(
            App::new()
                .wrap(tracing_actix_web::TracingLogger::<RequestSpan>::new())
                .route(
                    "/v1/users/{id}",
                    web::get().to(|| async {
                        tracing::info!("handled");
                        HttpResponse::Ok().finish()
                    }),
                ),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/v1/users/user_secretid?login_hint=ada%40example.com&SAMLRequest=abc")
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .peer_addr("192.0.2.8:5000".parse().unwrap())
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert!(resp.status().is_success());
        let log = captured.text();
        assert!(log.contains("route=/v1/users/{id}"), "{log}");
        assert!(log.contains("client_ip=192.0.2.8"), "{log}");
        for secret in ["user_secretid", "ada", "SAMLRequest", "6.6.6.6"] {
            assert!(!log.contains(secret), "{secret} in {log}");
        }
    }
}
