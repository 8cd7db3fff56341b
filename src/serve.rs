//! The serving layer: the views, the run's status and Prometheus metrics over HTTP, and a live
//! dashboard, from the `run` process itself.
//!
//! Every answer about views is read under the view store's lock, so it is as of one closed epoch
//! (`as_of_epoch`), never half of one. The server runs on a thread of its own with a
//! single-threaded tokio runtime; the workers never wait for it.

mod connection;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::lake::dataflow::SharedStatus;
use crate::pipeline::Stats;
use crate::views::ViewStore;

/// What the server reads.
#[derive(Clone)]
pub struct Served {
    /// The views.
    pub store: Arc<ViewStore>,
    /// The run's counters.
    pub stats: Arc<Stats>,
    /// The lake's progress, if the run writes one.
    pub lake: Option<SharedStatus>,
    /// Worker threads.
    pub workers: usize,
    /// The source, as shown to people.
    pub source: String,
    /// Whether this process holds the views: the only process, or the first of a cluster.
    /// The other processes of a cluster serve their own `/api/status` and `/metrics` only.
    pub views: bool,
}

/// Rows one view request may return at most.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Clone)]
struct App {
    served: Served,
    token: Option<Arc<str>>,
    rate: Arc<std::sync::Mutex<RateSampler>>,
}

/// Events per second over the last second or so.
#[derive(Debug)]
struct RateSampler {
    last: (Instant, u64),
    rate: f64,
}

impl RateSampler {
    fn sample(&mut self, records: u64) -> f64 {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last.0);
        if elapsed >= Duration::from_millis(900) {
            self.rate = records.saturating_sub(self.last.1) as f64 / elapsed.as_secs_f64();
            self.last = (now, records);
        }
        self.rate
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A bound listening socket, not serving yet: binding first makes a taken port an error before
/// the pipeline starts.
pub struct Listener {
    socket: std::net::TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// Binds `addr`.
    pub fn bind(addr: SocketAddr) -> Result<Listener, String> {
        let fail = |e: std::io::Error| format!("cannot listen on {addr}: {e}");
        let socket = std::net::TcpListener::bind(addr).map_err(fail)?;
        socket.set_nonblocking(true).map_err(fail)?;
        let addr = socket.local_addr().map_err(fail)?;
        Ok(Listener { socket, addr })
    }

    /// The address bound (with the port chosen when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Server {
    /// Serves on `listener` from a thread of its own; with a `token`, every endpoint but `/`
    /// wants `Authorization: Bearer TOKEN`.
    pub fn start(
        listener: Listener,
        token: Option<String>,
        served: Served,
    ) -> Result<Server, String> {
        let addr = listener.addr;
        let records = served.stats.records_in.load(Ordering::Relaxed);
        let app = App {
            served,
            token: token.as_deref().map(Arc::from),
            rate: Arc::new(std::sync::Mutex::new(RateSampler {
                last: (Instant::now(), records),
                rate: 0.0,
            })),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("starting the HTTP server: {e}"))?;
        let socket = listener.socket;
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(socket) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!("http: {e}");
                            return;
                        }
                    };
                    let router = router(app);
                    let mut stopped = std::pin::pin!(stopped);
                    loop {
                        let accepted = tokio::select! {
                            accepted = listener.accept() => accepted,
                            _ = &mut stopped => break,
                        };
                        match accepted {
                            Ok((stream, _)) => {
                                let _ = stream.set_nodelay(true);
                                tokio::spawn(connection::serve(stream, router.clone()));
                            }
                            // Out of file descriptors, say: wait a little, as axum::serve does.
                            Err(e) => {
                                tracing::warn!("http: accepting a connection: {e}");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                });
            })
            .map_err(|e| format!("starting the HTTP server: {e}"))?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port chosen when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(app: App) -> Router {
    let views = app.served.views;
    let mut api = Router::new()
        .route("/api/status", get(status))
        .route("/metrics", get(metrics::metrics));
    if views {
        api = api
            .route("/api/views", get(list_views))
            .route("/api/views/{name}", get(view));
    }
    let api = api.route_layer(middleware::from_fn_with_state(app.clone(), check_token));
    let mut router = Router::new();
    if views {
        router = router.route("/", get(dashboard));
    }
    router
        .merge(api)
        .fallback(move || async move {
            error(
                StatusCode::NOT_FOUND,
                if views {
                    "no such endpoint (see /api/views, /api/status, /metrics)"
                } else {
                    "no such endpoint: this process of a cluster serves /api/status and /metrics; \
                     process 0 serves the views"
                },
            )
        })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served")
        })
        .with_state(app)
}

/// A JSON error body: `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn check_token(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if given != Some(token.as_ref()) {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "this server wants `Authorization: Bearer TOKEN` (the token given to `run --token`)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a valid header"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer TOKEN` header value; the scheme's case does not
/// matter (RFC 9110, section 11.1), and spaces around the token are allowed.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn list_views(State(app): State<App>) -> Response {
    let store = &app.served.store;
    let body = store.read(|state| {
        let views: Vec<Json> = store
            .enabled()
            .iter()
            .map(|&v| {
                let catalog = store.catalog();
                let (key, value) = catalog.columns(v);
                let names = |c: &[(String, &str)]| c.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
                let types = |c: &[(String, &str)]| -> Json {
                    c.iter()
                        .filter(|(_, t)| !t.is_empty())
                        .map(|(n, t)| (n.clone(), json!(t)))
                        .collect::<serde_json::Map<_, _>>()
                        .into()
                };
                let mut view = json!({"name": catalog.name(v), "description": catalog.description(v),
                    "key": names(&key), "value": names(&value), "rows": state.tables[v].len()});
                view["types"] = json!({"key": types(&key), "value": types(&value)});
                if let Some(sql) = catalog.sql(v) {
                    view["sql"] = json!(sql.sql);
                }
                view
            })
            .collect();
        json!({"as_of_epoch": state.as_of, "views": views})
    });
    axum::Json(body).into_response()
}

/// The query of `GET /api/views/{name}`, validated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    /// Only rows whose key (or one of whose key fields) is this.
    pub key: Option<String>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// `key` (default), `value` or `-value` (by the view's first value field; `-` descending).
    pub order: Option<String>,
}

/// Parses and checks the query string of `GET /api/views/{name}` (without the `?`); the error
/// is the message of a 400 answer.
pub fn parse_view_query(query: &str) -> Result<ViewQuery, String> {
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| "bad query: not a valid query string".to_owned())?;
    let Query(parsed) = Query::<ViewQuery>::try_from_uri(&uri)
        .map_err(|e| format!("bad query: {}", e.body_text()))?;
    let limit = parsed.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(format!("limit must be between 1 and {MAX_LIMIT}"));
    }
    let order = parsed.order.as_deref().unwrap_or("key");
    if !matches!(order, "key" | "value" | "-value") {
        return Err(format!("order `{order}` is not key, value or -value"));
    }
    Ok(parsed)
}

async fn view(
    State(app): State<App>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let Path(name) = match name {
        Ok(name) => name,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("bad path: {}", e.body_text()),
            );
        }
    };
    let query = match parse_view_query(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let store = &app.served.store;
    let Some(id) = store.view_named(&name) else {
        let catalog = store.catalog();
        let known: Vec<&str> = store.enabled().iter().map(|&v| catalog.name(v)).collect();
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown view `{name}` (views: {})", known.join(", ")),
        );
    };
    let limit = query.limit.unwrap_or(1000);
    let order = query.order.as_deref().unwrap_or("key");
    let body = store.read(|state| {
        let mut rows = store.rows_json(state, id);
        if let Some(key) = &query.key {
            rows.retain(|row| key_matches(&row["key"], key));
        }
        if order != "key" {
            let (_, value) = store.catalog().columns(id);
            let field = value.first().map_or(String::new(), |(n, _)| n.clone());
            let field = field.as_str();
            rows.sort_by(|a, b| {
                let (x, y) = (number(&a["value"], field), number(&b["value"], field));
                let by = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                if order == "-value" { by.reverse() } else { by }
            });
        }
        let total = rows.len();
        rows.truncate(limit);
        let catalog = store.catalog();
        json!({"view": catalog.name(id), "description": catalog.description(id), "as_of_epoch": state.as_of,
            "total_rows": total, "rows": rows})
    });
    axum::Json(body).into_response()
}

/// Whether a row's key is `wanted`, or has a field that is.
fn key_matches(key: &Json, wanted: &str) -> bool {
    let is = |v: &Json| match v {
        Json::String(s) => s == wanted,
        Json::Null => wanted == "null",
        other => wanted.parse::<Json>().is_ok_and(|w| w == *other),
    };
    match key {
        Json::Object(fields) => fields.values().any(is),
        other => is(other),
    }
}

/// A value's `field` (the whole value when it has one field) as a number; money is a decimal
/// string.
fn number(value: &Json, field: &str) -> f64 {
    let v = match value {
        Json::Object(fields) => fields.get(field).unwrap_or(&Json::Null),
        other => other,
    };
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(f64::NAN)
}

fn latency_ms(stats: &Stats) -> Json {
    let h = stats
        .epoch_latency
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    json!({"p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999), "max": h.max() as f64 / 1000.0,
        "count": h.len()})
}

async fn status(State(app): State<App>) -> Response {
    let s = &app.served;
    let stats = &s.stats;
    let records = stats.records_in.load(Ordering::Relaxed);
    let rate = app
        .rate
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .sample(records);
    let closed = s.store.read(|state| state.as_of);
    let lake = s.lake.as_ref().map(|l| {
        let l = l.lock().unwrap_or_else(|e| e.into_inner());
        json!({"committed_epoch": l.committed.map(|c| c.0), "version": l.committed.map(|c| c.1),
            "commits": l.commits, "error": l.error})
    });
    let positions: Vec<Json> = stats
        .positions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .enumerate()
        .map(|(w, (epoch, p))| json!({"worker": w, "epoch": epoch, "positions": p}))
        .collect();
    let lag: serde_json::Map<String, Json> = stats
        .lag
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(p, l)| {
            (
                p.clone(),
                json!({"next": l.next, "high": l.high, "lag": l.lag()}),
            )
        })
        .collect();
    axum::Json(json!({
        "source": s.source,
        "workers": s.workers,
        "uptime_seconds": stats.started.elapsed().as_secs_f64(),
        "epochs": {"ingested": stats.epoch.load(Ordering::Relaxed), "closed": closed,
            "committed": lake.as_ref().and_then(|l| l["committed_epoch"].as_u64())},
        "records_in": records,
        "bytes_in": stats.bytes_in.load(Ordering::Relaxed),
        "events": stats.events.load(Ordering::Relaxed),
        "dead_letters": stats.dead_letters.load(Ordering::Relaxed),
        "events_per_second": rate,
        "epoch_latency_ms": latency_ms(stats),
        "positions": positions,
        "kafka_lag": lag,
        "lake": lake,
    }))
    .into_response()
}
