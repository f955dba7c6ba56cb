//! A small Confluent-compatible Schema Registry for the tests (no real registry installs from the
//! package registries this project can reach): `GET /schemas/ids/{id}` and
//! `POST /subjects/{subject}/versions`, with HTTP basic auth, on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;

/// How `GET /schemas/ids/{id}` answers: as a registry would, or as the things in front of or
/// instead of one do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// A proxy's 404 (HTML, no Confluent error code).
    Proxy404,
    /// A registry replica or path that answers 404 with another error code (e.g. 40401).
    Other404,
    /// A 200 HTML login page.
    Html200,
    /// 200 and the start of the JSON, then the body stalls past any client timeout.
    StallMidBody,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<u32, String>,
    next_id: u32,
    requests: u64,
    mode: Mode,
}

#[derive(Clone)]
pub struct TestRegistry {
    inner: Arc<Mutex<Inner>>,
    auth: Option<String>,
    pub port: u16,
}

fn authorized(headers: &HeaderMap, auth: &Option<String>) -> bool {
    match auth {
        None => true,
        Some(expected) => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected),
    }
}

impl TestRegistry {
    /// A registry that will listen on `port` once [`TestRegistry::start`] is called; requires
    /// basic auth `user:password` when given.
    pub fn new(port: u16, basic: Option<(&str, &str)>) -> TestRegistry {
        use base64::Engine as _;
        TestRegistry {
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            })),
            auth: basic.map(|(u, p)| {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Basic {token}")
            }),
            port,
        }
    }

    /// Register a schema directly (as a producer would have); returns its id.
    pub fn add(&self, schema_json: &str) -> u32 {
        let mut inner = self.inner.lock().unwrap();
        if let Some((id, _)) = inner.by_id.iter().find(|(_, s)| s.as_str() == schema_json) {
            return *id;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.by_id.insert(id, schema_json.to_string());
        id
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn requests(&self) -> u64 {
        self.inner.lock().unwrap().requests
    }

    /// Serve on 127.0.0.1:port until the test ends.
    pub async fn start(&self) {
        let state = self.clone();
        let app = axum::Router::new()
            .route("/schemas/ids/{id}", get(get_schema))
            .route("/subjects/{subject}/versions", post(register))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
    }
}

async fn get_schema(
    State(reg): State<TestRegistry>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut inner = reg.inner.lock().unwrap();
    inner.requests += 1;
    if !authorized(&headers, &reg.auth) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error_code": 401, "message": "Unauthorized"})),
        )
            .into_response();
    }
    match inner.mode {
        Mode::Normal => {}
        Mode::Proxy404 => {
            return (
                StatusCode::NOT_FOUND,
                "<html><body><h1>404 Not Found</h1>nginx</body></html>",
            )
                .into_response()
        }
        Mode::Other404 => {
            return (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"error_code": 40401, "message": "Subject not found"})),
            )
                .into_response()
        }
        Mode::Html200 => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<!doctype html><html><body><form>Sign in</form></body></html>",
            )
                .into_response()
        }
        Mode::StallMidBody => {
            let chunks = futures::stream::unfold(0u8, |n| async move {
                match n {
                    0 => Some((Ok::<_, std::io::Error>("{\"schema\": \"".to_string()), 1)),
                    _ => {
                        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        None
                    }
                }
            });
            return (
                StatusCode::OK,
                [("content-type", "application/vnd.schemaregistry.v1+json")],
                axum::body::Body::from_stream(chunks),
            )
                .into_response();
        }
    }
    match inner.by_id.get(&id) {
        Some(schema) => (
            StatusCode::OK,
            Json(serde_json::json!({ "schema": schema })),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error_code": 40403, "message": "Schema not found"})),
        )
            .into_response(),
    }
}

async fn register(
    State(reg): State<TestRegistry>,
    Path(_subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    if !authorized(&headers, &reg.auth) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error_code": 401})),
        );
    }
    let schema = body["schema"].as_str().unwrap_or_default().to_string();
    let id = reg.add(&schema);
    (StatusCode::OK, Json(serde_json::json!({ "id": id })))
}
