//! Prometheus remote write (`--prometheus-remote-write URL`): the series of each second
//! pushed as a snappy-compressed protobuf `WriteRequest` (remote-write protocol 1.0), plus a
//! final push at the end of the run.
//!
//! Receives the receiver's URL (`http://HOST:PORT/PATH`; checked by [`parse_url`]) and, per
//! push, the flat samples of harness/src/live/series.rs with one timestamp. Emits HTTP/1.1
//! POSTs (`Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
//! `X-Prometheus-Remote-Write-Version: 0.1.0`) and counts every push and failure.
//! Must not: fail the run (a failed push is counted, its reason kept), wait more than
//! [`PUSH_TIMEOUT`] per push, or read more than [`MAX_ANSWER`] bytes of an answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use prost::Message;

/// One push's deadline, connect to answer.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer's body read (for the error message).
const MAX_ANSWER: usize = 4096;

/// `prometheus.WriteRequest` (the fields remote write 1.0 uses).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PbSample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PbSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A receiver's address, split for the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub host: String,
    pub port: u16,
    /// Path and query (`/api/v1/write`).
    pub path: String,
    /// The URL as given.
    pub url: String,
}

/// Checks a remote-write URL: `http://HOST[:PORT]/PATH`. TLS receivers are not supported
/// (put a local agent or relay in front).
pub fn parse_url(url: &str) -> Result<Receiver, String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(format!(
                "--prometheus-remote-write {url}: https is not supported; push to a local \
                 Prometheus agent or relay over http"
            ));
        }
        _ => {
            return Err(format!(
                "--prometheus-remote-write {url}: give an http:// URL, e.g. \
                 http://127.0.0.1:9090/api/v1/write"
            ));
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(format!(
            "--prometheus-remote-write: credentials in the URL are not supported ({})",
            reports::redact::redact_url(url)
        ));
    }
    let bad_port = |p: &str| format!("--prometheus-remote-write {url}: bad port `{p}`");
    let (host, port_text) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("--prometheus-remote-write {url}: unclosed `[`"))?;
            (h, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port_text {
        Some(p) => p.parse::<u16>().map_err(|_| bad_port(p))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("--prometheus-remote-write {url}: no host"));
    }
    Ok(Receiver {
        host: host.to_string(),
        port,
        path: path.to_string(),
        url: url.to_string(),
    })
}

/// The compressed body of one push: every sample at `timestamp_ms`.
pub fn encode(samples: &[(Vec<(String, String)>, f64)], timestamp_ms: i64) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: samples
            .iter()
            .map(|(labels, value)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: vec![PbSample {
                    value: *value,
                    timestamp: timestamp_ms,
                }],
            })
            .collect(),
    };
    let raw = req.encode_to_vec();
    // Remote write uses snappy's block format, not its framed stream format.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// Sends one push; `Err` says why it failed.
pub async fn push(to: &Receiver, body: Vec<u8>) -> Result<(), String> {
    tokio::time::timeout(PUSH_TIMEOUT, push_inner(to, body))
        .await
        .map_err(|_| format!("no answer within {PUSH_TIMEOUT:?}"))?
}

async fn push_inner(to: &Receiver, body: Vec<u8>) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect((to.host.as_str(), to.port))
        .await
        .map_err(|e| format!("connect {}:{}: {e}", to.host, to.port))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let host = if to.host.contains(':') {
        format!("[{}]:{}", to.host, to.port)
    } else {
        format!("{}:{}", to.host, to.port)
    };
    let req = http::Request::post(to.path.as_str())
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(http::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(
            http::header::USER_AGENT,
            concat!("swarm/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("POST: {e}"))?;
    let status = res.status();
    let answer = Limited::new(res.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    conn.abort();
    if status.is_success() {
        Ok(())
    } else {
        let answer: String = answer.chars().take(200).collect();
        Err(format!("HTTP {status}: {answer}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body is snappy block-compressed protobuf that decodes back to the samples.
    #[test]
    fn body_round_trips() {
        let samples = vec![(
            vec![
                (
                    "__name__".to_string(),
                    "swarm_messages_sent_total".to_string(),
                ),
                ("run_id".to_string(), "7".to_string()),
            ],
            42.0,
        )];
        let body = encode(&samples, 1_700_000_000_000);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 1);
        assert_eq!(
            req.timeseries[0].labels[0].value,
            "swarm_messages_sent_total"
        );
        assert_eq!(req.timeseries[0].samples[0].value, 42.0);
        assert_eq!(req.timeseries[0].samples[0].timestamp, 1_700_000_000_000);
    }

    #[test]
    fn urls() {
        let r = parse_url("http://127.0.0.1:9090/api/v1/write").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("127.0.0.1", 9090, "/api/v1/write")
        );
        assert_eq!(parse_url("http://[::1]/w").unwrap().port, 80);
        assert!(parse_url("https://x/api").unwrap_err().contains("https"));
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://u:p@x/").unwrap_err().contains("***"));
    }
}
