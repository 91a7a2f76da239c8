//! `/metrics`: the server's counters as OpenMetrics text (the Prometheus exposition format)
//! with the `prometheus-client` crate.
//!
//! Receives: scrapes. Emits: every [`Stats`] number, read at scrape time by a custom
//! collector, so `/metrics` and `/stats.json` agree exactly. Must not: keep its own copies
//! of counters (they would drift from Stats).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::Shared;
use crate::stats::{CloseCause, Limit, Proto, Stats};

/// The content type of OpenMetrics text, as `prometheus-client`'s text encoder produces it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Routes `/metrics`.
pub fn routes(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(registry(shared.stats.clone())))
}

/// A registry whose one collector reads `stats` on every scrape; names start with
/// `target_server_`.
pub fn registry(stats: Arc<Stats>) -> Registry {
    let mut registry = Registry::with_prefix("target_server");
    registry.register_collector(Box::new(StatsCollector { stats }));
    registry
}

/// Encodes `registry` as OpenMetrics text.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(4096);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    match encode(&registry) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}

#[derive(Debug)]
struct StatsCollector {
    stats: Arc<Stats>,
}

impl StatsCollector {
    fn counter(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: u64,
    ) -> Result<(), std::fmt::Error> {
        let c = ConstCounter::new(value);
        c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
    }

    fn gauge(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: i64,
    ) -> Result<(), std::fmt::Error> {
        let g = ConstGauge::new(value);
        g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
    }
}

impl StatsCollector {
    /// The families with labels: connections by protocol and transport, closes by cause,
    /// limit hits by limit.
    fn encode_labelled(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let gauge_type = ConstGauge::new(0i64).metric_type();
        let counter_type = ConstCounter::new(0u64).metric_type();

        let mut family = encoder.encode_descriptor(
            "connections",
            "Open connections by protocol and transport",
            None,
            gauge_type,
        )?;
        for p in Proto::ALL {
            let (protocol, transport) = p.labels();
            let labels = [("protocol", protocol), ("transport", transport)];
            ConstGauge::new(s.connections(p)).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "connections_opened",
            "Connections opened since start by protocol and transport",
            None,
            counter_type,
        )?;
        for p in Proto::ALL {
            let (protocol, transport) = p.labels();
            let labels = [("protocol", protocol), ("transport", transport)];
            ConstCounter::new(s.connections_total(p)).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "connections_closed",
            "Connections closed by cause",
            None,
            counter_type,
        )?;
        for c in CloseCause::ALL {
            ConstCounter::new(s.closes(c))
                .encode(family.encode_family(&[("cause", c.label())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "limit_exceeded",
            "Refusals and closes by the server limit that was hit (README: Server limits)",
            None,
            counter_type,
        )?;
        for l in Limit::ALL {
            ConstCounter::new(s.limit_hits(l))
                .encode(family.encode_family(&[("limit", l.label())])?)?;
        }
        Ok(())
    }

    /// The single counters and gauges, in a fixed order.
    fn encode_plain(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let counters = [
            (
                "messages_in",
                "Application messages received",
                s.messages_in.load(Relaxed),
            ),
            (
                "messages_out",
                "Application messages written, one per recipient",
                s.messages_out.load(Relaxed),
            ),
            (
                "bytes_in",
                "Bytes of application messages received",
                s.bytes_in.load(Relaxed),
            ),
            (
                "bytes_out",
                "Bytes of application messages written",
                s.bytes_out.load(Relaxed),
            ),
            (
                "dropped_by_injection",
                "Application deliveries dropped by --drop-rate",
                s.dropped_by_injection.load(Relaxed),
            ),
            (
                "refused_connections",
                "Connections refused by --max-connections",
                s.refused_connections.load(Relaxed),
            ),
            (
                "slow_consumers",
                "Connections closed because their outbound queue was full",
                s.closes(CloseCause::SlowConsumer),
            ),
            (
                "heartbeat_timeouts",
                "Connections closed for a missing pong or silence after a ping",
                s.closes(CloseCause::PingTimeout),
            ),
            (
                "recovered_sessions",
                "Socket.IO sessions restored by connection state recovery",
                s.recovered_sessions.load(Relaxed),
            ),
            (
                "replayed_packets",
                "Packets replayed by connection state recovery",
                s.replayed_packets.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            Self::counter(encoder, name, help, value)?;
        }
        let gauges = [
            (
                "rooms",
                "Rooms with at least one member",
                s.rooms().len() as i64,
            ),
            (
                "outbound_queue_peak",
                "Deepest outbound queue seen on any connection (messages)",
                s.outbound_queue_peak.load(Relaxed) as i64,
            ),
        ];
        for (name, help, value) in gauges {
            Self::gauge(encoder, name, help, value)?;
        }
        Ok(())
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_labelled(&mut encoder)?;
        self.encode_plain(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_every_family_with_the_stats_values() {
        let stats = Arc::new(Stats::new());
        stats.opened(Proto::RawWs);
        stats.opened(Proto::RawWs);
        stats.closed(Proto::RawWs, CloseCause::SlowConsumer);
        stats.dropped_by_injection.fetch_add(7, Relaxed);
        stats.message_out(10);
        stats.room_delta("ws:a", 1);
        stats.limit_hit(Limit::QueueBytes);
        let text = encode(&registry(stats)).unwrap();
        for line in [
            "target_server_connections{protocol=\"ws\",transport=\"websocket\"} 1",
            "target_server_connections_opened_total{protocol=\"ws\",transport=\"websocket\"} 2",
            "target_server_connections_closed_total{cause=\"slow_consumer\"} 1",
            "target_server_dropped_by_injection_total 7",
            "target_server_messages_out_total 1",
            "target_server_bytes_out_total 10",
            "target_server_slow_consumers_total 1",
            "target_server_rooms 1",
            "target_server_limit_exceeded_total{limit=\"queue_bytes\"} 1",
            "target_server_limit_exceeded_total{limit=\"sessions\"} 0",
            "# TYPE target_server_dropped_by_injection counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
