//! Conformance cases as tests: one test per case of the official suites, each against its own
//! server. The Engine.IO groups (handshake, heartbeat, close, upgrade: 16 cases) are replayed
//! twice, on `/engine.io/` and on `/socket.io/` (docs/ARCHITECTURE.md, "Conformance suites");
//! [`engineio_cases!`] writes those 16 tests once for both.

/// One test `NAME`: starts a server with `START` (an async expression giving a value with
/// an `addr` field and an async `stop()`), runs `CASE(server.addr, MOUNT)`, stops the server.
///
/// The calling crate needs `tokio` (with the `macros` and `rt-multi-thread` features).
#[macro_export]
macro_rules! conformance_case {
    ($name:ident, start: $start:expr, mount: $mount:expr, case: $case:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let server = $start.await;
            $case(server.addr, $mount).await;
            server.stop().await;
        }
    };
}

/// The 16 Engine.IO cases of the official suites, one [`conformance_case!`] each, taken
/// from the module `CASES` (`handshake_polling_opens`, ..., `upgrade_ignores_second_ws`,
/// each `async fn(SocketAddr, Mount)`).
#[macro_export]
macro_rules! engineio_cases {
    (start: $start:expr, mount: $mount:expr, cases: $cases:ident) => {
        $crate::engineio_cases!(@each start: $start, mount: $mount, cases: $cases;
            // handshake (7)
            handshake_polling_opens_a_session => handshake_polling_opens,
            handshake_polling_rejects_invalid_eio => handshake_polling_invalid_eio,
            handshake_polling_rejects_invalid_transport => handshake_polling_invalid_transport,
            handshake_polling_rejects_invalid_method => handshake_polling_invalid_method,
            handshake_ws_opens_a_session => handshake_ws_opens,
            handshake_ws_rejects_invalid_eio => handshake_ws_invalid_eio,
            handshake_ws_rejects_invalid_transport => handshake_ws_invalid_transport,
            // heartbeat (4)
            heartbeat_polling_sends_ping_pong => heartbeat_polling_ping_pong,
            heartbeat_polling_closes_on_ping_timeout => heartbeat_polling_timeout,
            heartbeat_ws_sends_ping_pong => heartbeat_ws_ping_pong,
            heartbeat_ws_closes_on_ping_timeout => heartbeat_ws_timeout,
            // close (2)
            close_polling_forcefully_closes => close_polling,
            close_ws_forcefully_closes => close_ws,
            // upgrade (3)
            upgrade_from_polling_to_websocket => upgrade_success,
            upgrade_ignores_http_requests_after_upgrade => upgrade_ignores_http,
            upgrade_ignores_second_websocket_after_upgrade => upgrade_ignores_second_ws,
        );
    };
    (@each start: $start:expr, mount: $mount:expr, cases: $cases:ident;
        $($name:ident => $case:ident,)*) => {
        $(
            $crate::conformance_case!($name, start: $start, mount: $mount, case: $cases::$case);
        )*
    };
}
