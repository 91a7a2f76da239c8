//! The raw, unvalidated form of a plan: a TOML file as written, or a command line written
//! as one (the CLI converts its arguments into these types).
//!
//! Receives: TOML text (through serde) or values set by the CLI. Emits: a [`RawPlan`] whose
//! durations, rates, counts and sizes are already parsed ([`Checked`]): a bad value keeps its
//! message, so that [`super::from_raw`] reports every problem of a file at once.
//! Must not: check cross-field rules (validation does) or open anything.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::Scenario;
use super::heartbeat::{Mute, parse_mute};
use crate::model::{Arrival, Jitter, ParserKind, Protocol, Transport};
use crate::source::SourceSpec;

/// A value parsed when it was read; `Err` holds what is wrong with it, reported (with the
/// key's name) when the plan is validated.
pub type Checked<T> = Result<T, String>;

/// A byte size and how it was written (`16MiB`), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteSize {
    pub bytes: usize,
    pub written: String,
}

/// `url = "..."` or `url = ["...", "..."]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    /// The command line's URLs as a plan key (`None` when there are none).
    pub fn given(urls: &[String]) -> Option<Urls> {
        match urls {
            [] => None,
            [one] => Some(Urls::One(one.clone())),
            many => Some(Urls::Many(many.to_vec())),
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u],
            Urls::Many(v) => v,
        }
    }
}

/// The plan file, as written (keys as the CLI options, in kebab-case).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPlan {
    pub name: Option<String>,
    /// One URL, or a list of them: several targets (clients spread round-robin, one worker
    /// process per target at least; docs/DISTRIBUTED.md).
    pub url: Option<Urls>,
    pub protocol: Option<Protocol>,
    pub transport: Option<Transport>,
    pub path: Option<String>,
    pub event: Option<String>,
    pub reply_event: Option<String>,
    pub auth: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query: Vec<String>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Checked<Duration>>,
    #[serde(default, deserialize_with = "duration")]
    pub grace: Option<Checked<Duration>>,
    pub parser: Option<ParserKind>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, deserialize_with = "source_addrs")]
    pub source_addrs: Option<Checked<SourceSpec>>,
    #[serde(default, deserialize_with = "size")]
    pub max_message_size: Option<Checked<ByteSize>>,
    /// `None` inside: `off`.
    #[serde(default, deserialize_with = "write_timeout")]
    pub write_timeout: Option<Checked<Option<Duration>>>,
    #[serde(default)]
    pub thresholds: Vec<String>,
    /// Stop the run when a threshold fails for `abort-delay` (`--abort-on-fail`).
    #[serde(default)]
    pub abort: bool,
    #[serde(default, deserialize_with = "duration")]
    pub abort_delay: Option<Checked<Duration>>,
    pub join_event: Option<String>,
    pub join_args: Option<String>,
    pub leave_event: Option<String>,
    pub publish_event: Option<String>,
    pub publish_args: Option<String>,
    pub subscribe_event: Option<String>,
    pub publish_url: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub ping_interval: Option<Checked<Duration>>,
    #[serde(default)]
    pub reconnect: bool,
    #[serde(default, deserialize_with = "duration")]
    pub reconnect_delay: Option<Checked<Duration>>,
    #[serde(default, deserialize_with = "duration")]
    pub reconnect_max_delay: Option<Checked<Duration>>,
    pub reconnect_jitter: Option<Jitter>,
    pub reconnect_max_attempts: Option<u32>,
    /// `auto` or a number of worker processes (`--procs`).
    #[serde(default, deserialize_with = "procs")]
    pub procs: Option<Checked<crate::model::Procs>>,
    /// TLS: PEM file of the CA(s) to trust instead of the built-in roots (`--cacert`).
    pub cacert: Option<String>,
    /// TLS client certificate chain and its key, PEM (`--cert`, `--key`: mTLS).
    pub cert: Option<String>,
    pub key: Option<String>,
    /// TLS server name to present and verify instead of the URL's host (`--sni`).
    pub sni: Option<String>,
    /// Connect to this `HOST:PORT` instead of the URL's (`--connect-to`).
    pub connect_to: Option<String>,
    /// `first` (default) or `all`: spread clients over every resolved address (`--resolve`).
    pub resolve: Option<crate::model::Resolve>,
    /// Per-connection data: a CSV (with a header) or JSON Lines file (`--data`).
    pub data: Option<String>,
    /// `wrap` (default) or `unique` (`--data-mode`).
    pub data_mode: Option<crate::data::DataMode>,
    /// Write the data values into the run file (`--record-data`; off: they are secrets).
    #[serde(default)]
    pub record_data: bool,
    #[serde(default, rename = "phase")]
    pub phases: Vec<RawPhase>,
    /// Message flows (`[[flow]]`, plan/flow.rs), run by `scenario = "flow"` phases.
    #[serde(default, rename = "flow")]
    pub flows: Vec<super::flow::RawFlow>,
}

/// One `[[phase]]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPhase {
    pub name: Option<String>,
    pub scenario: Option<Scenario>,
    /// A TOML integer or a count like `"10k"`.
    #[serde(default, deserialize_with = "clients")]
    pub clients: Option<Checked<u32>>,
    #[serde(default, deserialize_with = "rate")]
    pub connect_rate: Option<Checked<f64>>,
    #[serde(default, deserialize_with = "duration")]
    pub ramp: Option<Checked<Duration>>,
    #[serde(default, deserialize_with = "duration")]
    pub duration: Option<Checked<Duration>>,
    #[serde(default, deserialize_with = "rate")]
    pub rate: Option<Checked<f64>>,
    pub payload_size: Option<usize>,
    pub arrival: Option<Arrival>,
    pub max_in_flight: Option<u32>,
    #[serde(default, deserialize_with = "subscribers")]
    pub subscribers: Option<Checked<u32>>,
    pub publishers: Option<u32>,
    pub rooms: Option<u32>,
    pub room_size: Option<u32>,
    pub server_publisher: Option<String>,
    #[serde(default, deserialize_with = "heartbeat_clients")]
    pub heartbeat_clients: Option<Checked<u32>>,
    #[serde(default, deserialize_with = "mute")]
    pub mute: Option<Checked<Mute>>,
    #[serde(default, deserialize_with = "duration")]
    pub client_ping_interval: Option<Checked<Duration>>,
    #[serde(default, deserialize_with = "rate")]
    pub churn_rate: Option<Checked<f64>>,
    /// `scenario = "flow"`: the name of the `[[flow]]` to run (the plan's only one when
    /// left out).
    pub flow: Option<String>,
}

/// The output options of a command line (thresholds unparsed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawOutput {
    pub out: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    pub thresholds: Vec<String>,
    /// The live outputs as given on the command line (`--abort-on-fail` turns aborts on
    /// over the plan's `abort`; `--abort-delay`, when given, replaces its delay).
    pub live: crate::live::LiveOptions,
    pub abort_delay: Option<Duration>,
    /// `--procs`, over the plan's `procs`.
    pub procs: Option<crate::model::Procs>,
    /// `--listen`, `--expect-workers`, `--token` (more than one process).
    pub listen: Option<std::net::SocketAddr>,
    pub expect_workers: u32,
    pub token: Option<String>,
}

/// What `swarm run` takes from its command line (or `SWARM_*` variables) over the plan
/// file's keys: `--auth` replaces the file's, `--header` and `--query` add to its lists,
/// `--data` / `--data-mode` / `--record-data` and the TLS options replace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetOverride {
    pub auth: Option<String>,
    pub headers: Vec<String>,
    pub query: Vec<String>,
    pub data: Option<String>,
    pub data_mode: Option<crate::data::DataMode>,
    pub record_data: bool,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub sni: Option<String>,
    pub connect_to: Option<String>,
    pub resolve: Option<crate::model::Resolve>,
}

impl RawPlan {
    /// This plan with the command line's target options over its own keys.
    pub fn with_target(mut self, o: &TargetOverride) -> RawPlan {
        if o.auth.is_some() {
            self.auth = o.auth.clone();
        }
        self.headers.extend(o.headers.iter().cloned());
        self.query.extend(o.query.iter().cloned());
        if o.data.is_some() {
            self.data = o.data.clone();
        }
        if o.data_mode.is_some() {
            self.data_mode = o.data_mode;
        }
        self.record_data |= o.record_data;
        for (mine, theirs) in [
            (&mut self.cacert, &o.cacert),
            (&mut self.cert, &o.cert),
            (&mut self.key, &o.key),
            (&mut self.sni, &o.sni),
            (&mut self.connect_to, &o.connect_to),
        ] {
            if theirs.is_some() {
                *mine = theirs.clone();
            }
        }
        if o.resolve.is_some() {
            self.resolve = o.resolve;
        }
        self
    }
}

/// The `--reconnect*` options of a command line: each one given goes over the plan's key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReconnectOverride {
    /// `--reconnect` (turns reconnects on; never off).
    pub reconnect: bool,
    pub delay: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub jitter: Option<Jitter>,
    pub max_attempts: Option<u32>,
}

impl RawPlan {
    /// This plan with the command line's `--reconnect*` options over its own keys.
    pub fn with_reconnect(mut self, o: &ReconnectOverride) -> RawPlan {
        self.reconnect |= o.reconnect;
        if let Some(d) = o.delay {
            self.reconnect_delay = Some(Ok(d));
        }
        if let Some(d) = o.max_delay {
            self.reconnect_max_delay = Some(Ok(d));
        }
        if let Some(j) = o.jitter {
            self.reconnect_jitter = Some(j);
        }
        if let Some(n) = o.max_attempts {
            self.reconnect_max_attempts = Some(n);
        }
        self
    }
}

/// The value of a key, or `None` (its problem, prefixed with the key, goes to `errs`).
pub(super) fn take<T: Clone>(
    v: &Option<Checked<T>>,
    what: &str,
    errs: &mut Vec<String>,
) -> Option<T> {
    match v {
        None => None,
        Some(Ok(v)) => Some(v.clone()),
        Some(Err(e)) => {
            errs.push(format!("{what}: {e}"));
            None
        }
    }
}

/// [`take`] for values whose message already says which key it is about.
pub(super) fn take_bare<T: Clone>(v: &Option<Checked<T>>, errs: &mut Vec<String>) -> Option<T> {
    match v {
        None => None,
        Some(Ok(v)) => Some(v.clone()),
        Some(Err(e)) => {
            errs.push(e.clone());
            None
        }
    }
}

/// A string key read with `parse`; a value of another TOML type fails the whole file.
fn text<'de, D, T>(
    d: D,
    parse: impl FnOnce(&str) -> Checked<T>,
) -> Result<Option<Checked<T>>, D::Error>
where
    D: Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    Ok(Some(parse(&s)))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<Duration>>, D::Error> {
    text(d, crate::model::parse_duration)
}

fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<f64>>, D::Error> {
    text(d, crate::model::parse_rate)
}

fn write_timeout<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Checked<Option<Duration>>>, D::Error> {
    text(d, crate::model::parse_write_timeout)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<ByteSize>>, D::Error> {
    text(d, |s| {
        crate::model::parse_size(s).map(|bytes| ByteSize {
            bytes,
            written: s.to_string(),
        })
    })
}

fn source_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<SourceSpec>>, D::Error> {
    text(d, SourceSpec::parse)
}

fn mute<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<Mute>>, D::Error> {
    text(d, parse_mute)
}

/// A count written as a TOML integer or a string like `"10k"`; the message names `what`.
fn count<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<Option<Checked<u32>>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    Ok(Some(match v {
        toml::Value::Integer(n) => u32::try_from(n).map_err(|_| format!("{what} must be 0..4e9")),
        toml::Value::String(s) => crate::model::parse_count(&s),
        _ => Err(format!("{what} must be a number or a count like \"10k\"")),
    }))
}

fn clients<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<u32>>, D::Error> {
    count(d, "clients")
}

fn subscribers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<u32>>, D::Error> {
    count(d, "subscribers")
}

fn heartbeat_clients<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Checked<u32>>, D::Error> {
    count(d, "heartbeat-clients")
}

/// `procs`: a TOML integer or `"auto"` (or a number as a string).
fn procs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Checked<crate::model::Procs>>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    Ok(Some(match v {
        toml::Value::Integer(n) => crate::model::Procs::parse(&n.to_string()),
        toml::Value::String(s) => crate::model::Procs::parse(&s),
        _ => Err("procs must be `auto` or a number of processes".to_string()),
    }))
}
