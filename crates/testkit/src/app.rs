//! `TestApp`: the real application on 127.0.0.1:0, with API keys of every
//! type already minted.

use crate::{Backend, TestDb};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use std::sync::Arc;
use trusec_server::Application;
use trusec_server::settings::Settings;
use trusec_server::state::AppState;
use trusec_storage::Clock;
use trusec_storage::api_keys::{self, KeyType};

type SettingsFn = Box<dyn FnOnce(&mut Settings)>;

pub struct TestAppBuilder {
    backend: Backend,
    settings: Vec<SettingsFn>,
    clock: Clock,
    shared: Option<(Arc<TestDb>, String)>,
}

impl TestAppBuilder {
    /// Changes settings before the app starts.
    #[must_use]
    pub fn with_settings(mut self, f: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.settings.push(Box::new(f));
        self
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Another instance over the same database and Redis prefix as `other`.
    #[must_use]
    pub fn sharing(mut self, other: &TestApp) -> Self {
        self.shared = Some((other.db.clone(), other.redis_prefix.clone()));
        self
    }

    /// Starts the app.
    ///
    /// # Panics
    /// When the app cannot start: tests want the reason loudly.
    pub async fn spawn(self) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = trusec_server::telemetry::init("info", trusec_server::cli::LogFormat::Text);
        }
        let (db, redis_prefix) = self.shared.unwrap_or_else(|| {
            let db = TestDb::for_backend(&self.backend);
            crate::keys::seed(&db);
            let prefix = format!("trusec-test:{}:", ulid::Ulid::new());
            (Arc::new(db), prefix)
        });
        let mut settings = Settings::for_tests(db.url());
        if let Backend::Shared {
            redis_url: Some(url),
            ..
        } = &self.backend
        {
            settings.redis_url = Some(url.clone().into());
        }
        settings.redis_prefix.clone_from(&redis_prefix);
        for f in self.settings {
            f(&mut settings);
        }
        let app = Application::build_with_clock(settings, self.clock.clone())
            .await
            .expect("the app starts");
        let port = app.port();
        let state = app.state().clone();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let mint = |key_type| {
            let state = state.clone();
            async move {
                let now = state.core.clock.now_naive();
                let expires = Some(now + chrono::TimeDelta::days(90));
                state
                    .core
                    .db
                    .run(move |c| {
                        api_keys::create(c, key_type, "test", now, expires).map_err(|e| {
                            trusec_storage::StorageError::backend(std::io::Error::other(
                                e.to_string(),
                            ))
                        })
                    })
                    .await
                    .expect("mint key")
                    .key
            }
        };
        let secret_key = mint(KeyType::Secret).await;
        let public_key = mint(KeyType::Public).await;
        let test_key = mint(KeyType::Test).await;
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .expect("client"),
            clock: self.clock,
            state,
            db,
            redis_prefix,
            handle,
            secret_key,
            public_key,
            test_key,
            backend: self.backend,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: Client,
    pub clock: Clock,
    pub state: AppState,
    pub db: Arc<TestDb>,
    pub redis_prefix: String,
    pub handle: actix_web::dev::ServerHandle,
    /// `trusec_sk_…` (live).
    pub secret_key: String,
    /// `trusec_pk_…` (live; refused by /v1).
    pub public_key: String,
    /// `trusec_test_…` (test environment).
    pub test_key: String,
    pub backend: Backend,
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            settings: Vec::new(),
            clock: crate::fake_clock(),
            shared: None,
        }
    }

    /// An app with default test settings.
    pub async fn spawn(backend: Backend) -> Self {
        Self::builder(backend).spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with `key` as bearer token.
    pub fn request(&self, method: reqwest::Method, path: &str, key: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(reqwest::Method::GET, path, key)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> Response {
        self.request(reqwest::Method::PATCH, path, key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.request(reqwest::Method::DELETE, path, key)
            .send()
            .await
            .expect("request")
    }

    /// Creates a user through the API with the secret key; returns its JSON.
    pub async fn create_user(&self, email: &str) -> Value {
        let resp = self
            .post(
                "/v1/users",
                &self.secret_key,
                &serde_json::json!({"email": email, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(resp.status(), 201, "creating {email}");
        resp.json().await.expect("json")
    }

    /// A second instance over the same database and Redis, on the same clock,
    /// as another replica behind a load balancer would be.
    pub async fn another_instance(&self) -> Self {
        Self::builder(self.backend.clone())
            .with_clock(self.clock.clone())
            .sharing(self)
            .spawn()
            .await
    }

    /// Stops the server gracefully.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Reads a response as (status, JSON body).
pub async fn status_json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}
