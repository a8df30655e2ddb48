//! A tiny HTTP server the tests start on `127.0.0.1:0` to publish what
//! TruSec fetches (a client's `jwks_uri`, a client ID metadata document):
//! each path answers what the test put there, and counts its hits.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use trusec_testkit::{Backend, TestApp};

/// An app whose outbound fetches may reach a [`DocServer`] (loopback, http).
pub(crate) async fn open_app(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .with_settings(|s| {
            s.outbound.allow_private = true;
            s.outbound.allow_http = true;
        })
        .spawn()
        .await
}

/// One path's answer.
#[derive(Clone)]
pub(crate) struct Doc {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Sent in chunks without a Content-Length (so a size cap must count
    /// as the body arrives).
    pub(crate) streamed: bool,
}

impl Doc {
    pub(crate) fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            body: serde_json::to_vec(value).unwrap(),
            headers: vec![("content-type", "application/json".into())],
            streamed: false,
        }
    }

    /// [`Doc::json`] in 1 KiB chunks, without a Content-Length.
    pub(crate) fn streamed_json(value: &serde_json::Value) -> Self {
        Self {
            streamed: true,
            ..Self::json(value)
        }
    }

    pub(crate) fn redirect(to: &str) -> Self {
        Self {
            status: 302,
            body: Vec::new(),
            headers: vec![("location", to.to_owned())],
            streamed: false,
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

#[derive(Default)]
struct Routes {
    docs: HashMap<String, Doc>,
    hits: HashMap<String, usize>,
}

#[derive(Clone)]
pub(crate) struct DocServer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    routes: Arc<Mutex<Routes>>,
}

impl DocServer {
    pub(crate) fn start() -> Self {
        let routes = Arc::new(Mutex::new(Routes::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = routes.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            routes,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn put(&self, path: &str, doc: Doc) {
        self.routes
            .lock()
            .unwrap()
            .docs
            .insert(path.to_owned(), doc);
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.routes
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn answer(req: HttpRequest, routes: web::Data<Arc<Mutex<Routes>>>) -> HttpResponse {
    let path = req.path().to_owned();
    let doc = {
        let mut r = routes.lock().unwrap();
        *r.hits.entry(path.clone()).or_default() += 1;
        r.docs.get(&path).cloned()
    };
    let Some(doc) = doc else {
        return HttpResponse::NotFound().finish();
    };
    let mut resp = HttpResponse::build(actix_web::http::StatusCode::from_u16(doc.status).unwrap());
    for (name, value) in doc.headers {
        resp.insert_header((name, value));
    }
    if doc.streamed {
        let chunks: Vec<Result<web::Bytes, std::io::Error>> = doc
            .body
            .chunks(1024)
            .map(|c| Ok(web::Bytes::copy_from_slice(c)))
            .collect();
        return resp.streaming(futures_util::stream::iter(chunks));
    }
    resp.body(doc.body)
}
