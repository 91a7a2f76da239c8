//! Engine.IO v4 server: long-polling and websocket transports, the upgrade dance, the
//! heartbeat (docs/ARCHITECTURE.md#engineio-v4), for whatever [`Application`] the router
//! mounts on an endpoint (`lib.rs::router`: the Socket.IO server at `/socket.io/`, the
//! [`echo::Echo`] application at `/engine.io/`).
//!
//! Receives: HTTP requests on an endpoint's path (handshakes, polls, posts, websocket
//! upgrades).
//! Emits: responses and websocket frames; one session per client, attached to the
//! endpoint's application (inline, or with its own task under `--stall`), with a heartbeat
//! task and, on websocket, a connection task, all registered in `shared.tasks`; counts
//! into `Stats`.
//! Must not: interpret what the application's messages mean, or apply fault injection to
//! anything but application data (the application's business).
//!
//! ```text
//! request --query check--> polling::{handshake, get, post} | websocket::{open, upgrade}
//! session: outbox (bounded) <- heartbeat, application, broadcasters
//!          outbox -> pending GET body | websocket writer
//!          client packets -> Session::on_packet -> application (in order)
//! ```

pub mod app;
pub mod echo;
mod heartbeat;
pub mod outbox;
mod polling;
#[cfg(test)]
mod prop_tests;
pub mod session;
#[cfg(test)]
mod tests;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::routing::any;
use base64::Engine as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tokio::sync::mpsc;

pub use app::{Application, Inbound, InlineApp, Labels, Task, Text};
pub use outbox::{Frame, Out};
use session::Registry;
pub use session::{Session, Transport};

use crate::Shared;

/// Messages a session's application task may lag behind its transport before the reader
/// waits (backpressure on the client instead of unbounded memory).
const INBOUND_QUEUE: usize = 1024;

/// One Engine.IO endpoint: its sessions by sid and what runs on them.
#[derive(Debug)]
pub(crate) struct Engine {
    pub shared: Arc<Shared>,
    app: Arc<dyn Application>,
    registry: Arc<Registry>,
    next_conn: AtomicU64,
}

/// The routes of one Engine.IO endpoint serving `app`: `{path}/` and `{path}` (`path`
/// without its trailing slash, e.g. `/engine.io`).
pub fn routes(shared: Arc<Shared>, path: &str, app: Arc<dyn Application>) -> axum::Router {
    let engine = Arc::new(Engine::new(shared, app));
    axum::Router::new()
        .route(&format!("{path}/"), any(handle).with_state(engine.clone()))
        .route(path, any(handle).with_state(engine))
}

async fn handle(State(engine): State<Arc<Engine>>, req: Request<Body>) -> Response<Body> {
    engine.handle(req).await
}

/// The query parameters Engine.IO looks at (others, like the `t` cache buster, are ignored).
#[derive(Debug, Default, PartialEq, Eq)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(query: Option<&'a str>) -> Query<'a> {
        let mut q = Query::default();
        for pair in query.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => q.eio = Some(v),
                "transport" => q.transport = Some(v),
                "sid" => q.sid = Some(v),
                _ => {}
            }
        }
        q
    }
}

/// The error answers of the Node reference (`{"code":N,"message":".."}`, HTTP 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EioError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    UnsupportedProtocolVersion,
}

impl EioError {
    fn code_message(self) -> (u8, &'static str) {
        match self {
            EioError::UnknownTransport => (0, "Transport unknown"),
            EioError::UnknownSid => (1, "Session ID unknown"),
            EioError::BadHandshakeMethod => (2, "Bad handshake method"),
            EioError::BadRequest => (3, "Bad request"),
            EioError::UnsupportedProtocolVersion => (5, "Unsupported protocol version"),
        }
    }

    pub fn response(self) -> Response<Body> {
        let (code, message) = self.code_message();
        let body = format!("{{\"code\":{code},\"message\":\"{message}\"}}");
        with_cors(
            Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body)),
        )
    }
}

/// Adds the permissive CORS header the reference preset (`cors: {origin: "*"}`) sends.
pub(crate) fn with_cors(resp: Result<Response<Body>, http::Error>) -> Response<Body> {
    let mut resp = resp.unwrap_or_else(|_| Response::new(Body::empty()));
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

impl Engine {
    fn new(shared: Arc<Shared>, app: Arc<dyn Application>) -> Engine {
        Engine {
            shared,
            app,
            registry: Arc::new(Registry::default()),
            next_conn: AtomicU64::new(1),
        }
    }

    async fn handle(self: &Arc<Self>, mut req: Request<Body>) -> Response<Body> {
        let query = Query::parse(req.uri().query());
        let transport = match query.transport {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::Websocket,
            _ => return EioError::UnknownTransport.response(),
        };
        if query.eio != Some("4") {
            return EioError::UnsupportedProtocolVersion.response();
        }
        let sid = query.sid.map(str::to_owned);
        match transport {
            Transport::Websocket => {
                if !crate::upgrade::is_upgrade(&req) {
                    return EioError::BadRequest.response();
                }
                match sid {
                    None => websocket::open(self.clone(), &mut req),
                    Some(sid) => websocket::upgrade(self.clone(), &sid, &mut req),
                }
            }
            Transport::Polling => match (req.method().clone(), sid) {
                (Method::OPTIONS, _) => polling::preflight(),
                (Method::GET, None) => polling::handshake(self),
                (_, None) => EioError::BadHandshakeMethod.response(),
                (method, Some(sid)) => {
                    let Some(session) = self.lookup(&sid) else {
                        return EioError::UnknownSid.response();
                    };
                    match method {
                        Method::GET => polling::get(self, session).await,
                        Method::POST => polling::post(self, session, req).await,
                        _ => EioError::BadRequest.response(),
                    }
                }
            },
        }
    }

    fn lookup(&self, sid: &str) -> Option<Arc<Session>> {
        session::lock(&self.registry).get(sid).cloned()
    }

    /// Creates a session, starts its heartbeat task and attaches the application. Call right after
    /// the open packet is decided: the heartbeat's first ping is due pingInterval later.
    fn new_session(self: &Arc<Self>, transport: Transport) -> Arc<Session> {
        let config = &self.shared.config;
        // Without `--stall` nothing makes an application wait: messages are handled in the
        // transport's task, and no queue to an application task is needed. With it, in the
        // application task, which may wait.
        let inline = config.stall.is_none();
        let (inbound_tx, inbound_rx) = match inline {
            true => (None, None),
            false => {
                let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
                (Some(tx), Some(rx))
            }
        };
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let session = Session::open(
            conn_id,
            random_id().into(),
            self.app.labels(),
            transport,
            config.max_queue,
            inbound_tx,
            self.shared.stats.clone(),
            self.registry.clone(),
        );
        session.limit_queue_bytes(config.max_queue_bytes);
        let tasks = &self.shared.tasks;
        tasks.spawn(heartbeat::run(
            session.clone(),
            config.ping_interval,
            config.ping_timeout,
            self.shared.shutdown.clone(),
        ));
        let app_task = match inbound_rx {
            None => {
                let (inline, task) = self.app.clone().start_inline(&session);
                session.set_inline(inline);
                task
            }
            Some(rx) => Some(self.app.clone().start_queued(&session, rx)),
        };
        if let Some(task) = app_task {
            tasks.spawn(task);
        }
        session
    }

    /// The open packet (`0{...}`) for `session`: exactly the five keys.
    fn open_packet(&self, session: &Session, transport: Transport) -> String {
        let config = &self.shared.config;
        let upgrades = match transport {
            Transport::Polling => vec!["websocket".to_string()],
            Transport::Websocket => Vec::new(),
        };
        protocol::EioPacket::Open(protocol::Handshake {
            sid: session.sid.to_string(),
            upgrades,
            ping_interval: config.ping_interval.as_millis() as u64,
            ping_timeout: config.ping_timeout.as_millis() as u64,
            max_payload: config.max_payload,
        })
        .encode_text()
    }
}

/// A fresh random id: 20 characters of base64url (120 bits). Used for Engine.IO sids and,
/// independently, Socket.IO sids and recovery pids.
pub fn random_id() -> String {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn query_parsing_ignores_unknown_keys() {
        let q = Query::parse(Some("EIO=4&transport=polling&t=Nx1&sid=abc"));
        assert_eq!(
            q,
            Query {
                eio: Some("4"),
                transport: Some("polling"),
                sid: Some("abc")
            }
        );
        assert_eq!(Query::parse(None), Query::default());
        assert_eq!(Query::parse(Some("EIO")).eio, Some(""));
    }

    #[test]
    fn ids_are_20_url_safe_chars_and_distinct() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 20);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn error_bodies_match_the_reference() {
        let r = EioError::UnknownSid.response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    /// An application that records what it is given, and how.
    #[derive(Debug, Default)]
    struct Recorder {
        got: std::sync::Mutex<Vec<String>>,
    }

    impl Recorder {
        fn record(&self, how: &str, msg: Inbound) {
            let text = match msg {
                Inbound::Text(t) => t.as_str().to_string(),
                Inbound::Binary(b) => format!("{} bytes", b.len()),
            };
            self.got.lock().unwrap().push(format!("{how}:{text}"));
        }

        fn got(&self) -> Vec<String> {
            self.got.lock().unwrap().clone()
        }
    }

    impl InlineApp for Recorder {
        fn handle(&self, _session: &Session, msg: Inbound) -> bool {
            self.record("inline", msg);
            true
        }
    }

    impl Application for Recorder {
        fn labels(&self) -> Labels {
            Labels {
                polling: crate::stats::Proto::RawWs,
                websocket: crate::stats::Proto::RawWs,
            }
        }

        fn start_inline(
            self: Arc<Self>,
            _session: &Arc<Session>,
        ) -> (Arc<dyn InlineApp>, Option<Task>) {
            (self, None)
        }

        fn start_queued(
            self: Arc<Self>,
            _session: &Arc<Session>,
            mut inbound: mpsc::Receiver<Inbound>,
        ) -> Task {
            Box::pin(async move {
                while let Some(msg) = inbound.recv().await {
                    self.record("queued", msg);
                }
            })
        }
    }

    async fn body_text(resp: Response<Body>) -> String {
        use http_body_util::BodyExt as _;
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Opens a polling session on `engine` and posts two messages; returns the sid.
    async fn handshake_and_post(engine: &Arc<Engine>) -> String {
        let get = Request::get("/x/?EIO=4&transport=polling")
            .body(Body::empty())
            .unwrap();
        let open = body_text(engine.handle(get).await).await;
        let handshake: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
        let sid = handshake["sid"].as_str().unwrap().to_string();
        let post = Request::post(format!("/x/?EIO=4&transport=polling&sid={sid}"))
            .body(Body::from("4one\x1e4two"))
            .unwrap();
        assert_eq!(body_text(engine.handle(post).await).await, "ok");
        sid
    }

    /// Engine.IO serves whatever application it is given: its labels count the sessions,
    /// and its messages arrive in order, inline by default and through the application's
    /// own task with `--stall`.
    #[tokio::test]
    async fn any_application_is_attached_inline_or_queued() {
        let shared = Shared::new(crate::Config::default());
        let app = Arc::new(Recorder::default());
        let engine = Arc::new(Engine::new(shared.clone(), app.clone()));
        handshake_and_post(&engine).await;
        assert_eq!(app.got(), ["inline:one", "inline:two"]);
        assert_eq!(shared.stats.connections(crate::stats::Proto::RawWs), 1);

        let shared = Shared::new(crate::Config {
            stall: Some(crate::config::Stall {
                every: std::time::Duration::from_secs(3600),
                for_: std::time::Duration::from_millis(1),
            }),
            ..crate::Config::default()
        });
        let app = Arc::new(Recorder::default());
        let engine = Arc::new(Engine::new(shared.clone(), app.clone()));
        handshake_and_post(&engine).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while app.got().len() < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(app.got(), ["queued:one", "queued:two"]);
        shared.shutdown.cancel();
    }
}
