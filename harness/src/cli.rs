//! The command line of `swarm` (clap derive): the raw, unvalidated form of a run.
//!
//! Receives: `argv`. Emits: [`Cli`], whose [`Command`] converts (`cli/requests.rs`) into a
//! [`crate::plan::Request`] (a typed raw plan, or a plan file) that [`crate::plan`] turns into
//! a validated [`crate::plan::Plan`], or into a [`crate::commands::Request`].
//! Must not: check cross-field rules, open files other than through clap, or touch sockets.
//! Only the binary (`main.rs`) imports this module.
//! Typed values (counts, rates, durations) are parsed here so a typo fails with clap's
//! usage message.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod capacity;
mod requests;
mod scenarios;
pub use crate::model::{
    Arrival, Jitter, ParserKind, Protocol, Transport, parse_count, parse_duration, parse_rate,
    parse_size, parse_write_timeout,
};
pub use crate::scenario::broadcast::args::FanoutArgs;
use crate::scenario::{broadcast, churn, connect, echo, heartbeat};
pub use capacity::{CAPACITY_HELP, CapacityArgs};
pub use scenarios::{BroadcastArgs, ChurnArgs, HeartbeatArgs, PacingArgs, ReconnectArgs};

mod dry_run;
pub use dry_run::render as dry_run_text;

/// `swarm`: opens thousands of WebSocket / Socket.IO clients against a URL and records
/// what happened (connect phases, latency from the intended send instant, timeouts).
///
/// Without a URL, an embedded target-server is started on 127.0.0.1 (port chosen by the
/// system) on its own runtime threads, and targeted.
#[derive(Debug, Parser)]
#[command(name = "swarm", version, about, long_about = None, after_help = TOP_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// `--threads` written before the subcommand (`swarm --threads 2 echo ...`, also how a
    /// coordinator starts its local workers). Hidden: each command that runs clients shows
    /// its own `--threads`; [`Cli::threads`] takes either, and [`Cli::misplaced`] refuses it
    /// before a command that runs none.
    #[arg(
        long = "threads",
        id = "threads_before_command",
        hide = true,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub threads_before: Option<u16>,
}

impl Cli {
    /// The runtime's worker threads: `--threads` after the subcommand, else before it.
    pub fn threads(&self) -> Option<u16> {
        self.command.threads().or(self.threads_before)
    }

    /// A usage error for flags clap accepted in a place where they do nothing: `--threads`
    /// before `report`, `compare`, `merge` or `completions`.
    pub fn misplaced(&self) -> Option<clap::Error> {
        use clap::CommandFactory;
        if self.threads_before.is_some() && !self.command.runs_clients() {
            return Some(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--threads applies to the commands that run clients (connect, echo, broadcast, \
                 heartbeat, churn, capacity, run, worker), not to this one",
            ));
        }
        None
    }
}

impl Command {
    /// Whether this command runs clients (and so a runtime whose threads `--threads` sets).
    pub fn runs_clients(&self) -> bool {
        !matches!(
            self,
            Command::Report(_) | Command::Compare(_) | Command::Merge(_) | Command::Completions(_)
        )
    }

    /// `--threads` as given after the subcommand.
    pub fn threads(&self) -> Option<u16> {
        match self {
            Command::Connect(a) => a.output.scale.threads,
            Command::Echo(a) => a.output.scale.threads,
            Command::Broadcast(a) => a.output.scale.threads,
            Command::Heartbeat(a) => a.output.scale.threads,
            Command::Churn(a) => a.broadcast.output.scale.threads,
            Command::Capacity(a) => a.output.scale.threads,
            Command::Run(a) | Command::Flow(a) => a.output.scale.threads,
            Command::Worker(a) => a.threads,
            Command::Report(_)
            | Command::Compare(_)
            | Command::Merge(_)
            | Command::Completions(_) => None,
        }
    }

    /// `--dry-run`: print the resolved plan and open nothing.
    pub fn dry_run(&self) -> bool {
        match self {
            Command::Connect(a) => a.dry.dry_run,
            Command::Echo(a) => a.dry.dry_run,
            Command::Broadcast(a) => a.dry.dry_run,
            Command::Heartbeat(a) => a.dry.dry_run,
            Command::Churn(a) => a.broadcast.dry.dry_run,
            Command::Run(a) | Command::Flow(a) => a.dry.dry_run,
            _ => false,
        }
    }
}

const TOP_HELP: &str = "\
Examples:
  swarm run                                  default plan against an embedded server
  swarm connect ws://127.0.0.1:3000/ws/echo --clients 10k --connect-rate 1000/s
  swarm echo http://127.0.0.1:3000 --clients 1000 --rate 10/s --duration 20s \\
        --threshold 'echo.latency.p99 < 50ms'
  swarm broadcast http://127.0.0.1:3000 --subscribers 1000 --rate 100/s
  swarm heartbeat http://127.0.0.1:3000 --clients 500 --mute 0.1@5s
  swarm churn http://127.0.0.1:3000 --churn-rate 20/s --reconnect-delay 200ms

  swarm echo ws://127.0.0.1:3000/ws/echo --reconnect --reconnect-max-delay 5s
  swarm connect 'https://chat.example/?user={user}' --data users.csv \\
        --auth '{\"token\":\"{token}\"}' -H 'x-client: {client}'   one record per client

  swarm capacity http://127.0.0.1:3000 --vary rate --slo 'echo.latency.p99 < 50ms'

  swarm run plan.toml --dry-run              the resolved plan, nothing opened
  swarm completions bash > ~/.local/share/bash-completion/completions/swarm

Watching a run live (README: Watching a run live):
  swarm echo http://127.0.0.1:3000 --duration 10m --metrics-addr 9464
        (Prometheus scrapes http://127.0.0.1:9464/metrics; stays up 15s after the run)
  swarm echo http://127.0.0.1:3000 --prometheus-remote-write http://127.0.0.1:9090/api/v1/write
  swarm echo http://127.0.0.1:3000 --out ndjson=- --quiet | jq -c .latency_p99_us
  swarm echo http://127.0.0.1:3000 --duration 1h --threshold 'echo.latency.p99 < 50ms' \\
        --abort-on-fail --abort-delay 30s --out junit=thresholds.xml

Exit codes: 0 ok, 1 a threshold failed (or --abort-on-fail stopped the run), 2 bad usage
or plan (nothing opened), 3 the run could not happen (target unreachable, no connection succeeded),
4 `swarm capacity` only: the generator saturated before the server broke its SLOs,
5 degraded: connections were lost during the run and no --threshold was given (with
thresholds, they decide: 0 or 1), 130 interrupted.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open --clients connections at --connect-rate (or over --ramp), hold them for
    /// --duration, close them. Records every connect phase.
    #[command(after_help = connect::args::CONNECT_HELP)]
    Connect(ConnectArgs),
    /// Connect as `connect` does, then every client sends --rate messages per second and
    /// records each round trip (latency from the intended send instant, and service time
    /// from the actual send).
    #[command(after_help = echo::args::ECHO_HELP)]
    Echo(EchoArgs),
    /// Publishers send into rooms, subscribers receive: one-way latency of every delivery,
    /// and exact counts of delivered, lost, duplicated and reordered messages.
    #[command(after_help = broadcast::args::BROADCAST_HELP)]
    Broadcast(BroadcastArgs),
    /// Idle clients watch the server's heartbeat: ping cadence, muted clients' closes,
    /// false timeouts, client-side deadlines.
    #[command(after_help = heartbeat::args::HEARTBEAT_HELP)]
    Heartbeat(HeartbeatArgs),
    /// A broadcast during which subscribers drop and reconnect: reconnect time, messages
    /// missed while away, recovered by connection state recovery, lost.
    #[command(after_help = churn::args::CHURN_HELP)]
    Churn(ChurnArgs),
    /// Find the highest load the server holds within its SLOs: steps of growing load, then
    /// a bisection, each step a measured run (exit 0 found, 1 even --from fails, 3
    /// unreachable, 4 the generator saturated first).
    #[command(
        after_help = capacity::CAPACITY_HELP,
        mut_arg("thresholds", |a| a.hide(true)),
        mut_arg("abort_on_fail", |a| a.hide(true)),
        mut_arg("abort_delay", |a| a.hide(true))
    )]
    Capacity(CapacityArgs),
    /// Run a multi-phase plan (TOML). Without PLAN, runs the built-in default plan: a
    /// connect ramp, a steady echo, then a short spike (at most 2,000 clients, ~1 minute).
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Run a plan's message flows: `swarm run` for a plan whose phases have
    /// `scenario = "flow"` and whose `[[flow]]` tables script each client (emit, send, wait,
    /// capture, sleep, repeat, join, leave; per-step latency and errors in the results).
    #[command(after_help = FLOW_HELP)]
    Flow(RunArgs),
    /// Render a results file as a self-contained HTML report, or Markdown for a CI comment.
    #[command(after_help = crate::commands::report::REPORT_HELP)]
    Report(crate::commands::report::ReportArgs),
    /// Compare two results files metric by metric; exit 1 when NEW is worse than BASE
    /// beyond --max-regression.
    #[command(after_help = crate::commands::compare::COMPARE_HELP)]
    Compare(crate::commands::compare::CompareArgs),
    /// Merge the results of runs started apart into one results folder (exact totals and
    /// histograms; exact per-second percentiles when their histograms.hlog files are there).
    #[command(after_help = crate::commands::merge::MERGE_HELP)]
    Merge(crate::commands::merge::MergeArgs),
    /// Run one shard of a coordinator's run (`swarm run|echo|... --procs N` starts these
    /// itself; on other machines or pods: `swarm worker --join HOST:PORT`).
    #[command(hide = true, after_help = WORKER_HELP)]
    Worker(WorkerArgs),
    /// Print a shell completion script on stdout (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
}

const COMPLETIONS_HELP: &str = "\
Examples:
  swarm completions bash > ~/.local/share/bash-completion/completions/swarm
  swarm completions zsh > \"${fpath[1]}/_swarm\"
  swarm completions fish > ~/.config/fish/completions/swarm.fish

Each subcommand completes its own flags (`swarm connect --<TAB>` offers no --rate).";

/// `swarm completions` arguments.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `--dry-run`, on the commands that run one plan.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct DryRunArgs {
    /// Print the resolved plan (target, phases, clients, rates, durations, thresholds, data
    /// files with their record counts and field names; placeholders as written, data
    /// values never) and exit 0 without opening a connection. A bad plan still exits 2.
    #[arg(long)]
    pub dry_run: bool,
}

const FLOW_HELP: &str = "\
Examples:
  swarm flow harness/plans/chat-flow.toml --url http://127.0.0.1:3100/
  swarm flow rpc.toml --url http://127.0.0.1:3000/ --threshold 'flow.ask.latency.p99 < 50ms'

The plan's [[flow]] tables and its thresholds on flow.STEP.* are described in
docs/TESTING-YOUR-SERVER.md#flows; the results' flow section in docs/results-format.md#flow.
Exit codes as `swarm run`.";

const WORKER_HELP: &str = "\
Examples:
  SWARM_TOKEN=... swarm worker --join coordinator.example:7700
  swarm worker --join 10.0.0.5:7700 --token \"$T\" --index 3

The coordinator (`swarm run PLAN --procs 0 --listen 0.0.0.0:7700 --expect-workers N`)
sends the plan, the target and the start instant; the worker runs its share of the
clients, streams its figures every second, and exits when the run is merged or when its
coordinator goes away. In a Kubernetes Indexed Job the shard is JOB_COMPLETION_INDEX.
See docs/DISTRIBUTED.md.

Exit codes: 0 results delivered, 2 refused / bad plan / coordinator unreachable,
3 the run failed here or the coordinator went away.";

/// `swarm worker` arguments.
#[derive(Debug, Args, Clone)]
pub struct WorkerArgs {
    /// The coordinator's control address, HOST:PORT.
    #[arg(long)]
    pub join: String,
    /// The run's secret (the coordinator's --token).
    #[arg(long, env = "SWARM_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The shard to run (0-based). Default: JOB_COMPLETION_INDEX when set, else the
    /// coordinator assigns one.
    #[arg(long, env = "JOB_COMPLETION_INDEX")]
    pub index: Option<u32>,
    /// How long to keep trying to reach the coordinator.
    #[arg(long, default_value = "120s", value_parser = crate::model::parse_duration)]
    pub wait: Duration,
    /// Threads that run this worker's clients (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

const RUN_HELP: &str = "\
Examples:
  swarm run                                   built-in default plan, embedded server
  swarm run harness/plans/example.toml --url http://127.0.0.1:3000
  swarm run plan.toml --data users.csv --auth '{\"token\":\"{token}\"}'
  swarm run plan.toml --data users.csv --dry-run     the resolved plan; opens nothing
  SWARM_URL=https://chat.example SWARM_AUTH='{\"key\":\"...\"}' swarm run plan.toml

--url, --auth, --header, --query, --data, --data-mode also come from SWARM_URL, SWARM_AUTH,
SWARM_HEADER (one per line), SWARM_QUERY (joined by &), SWARM_DATA, SWARM_DATA_MODE.

Plan file (TOML). Top-level keys are the options of `connect`/`echo` that apply to the
whole run; each [[phase]] runs after the previous one. `clients` is the number of clients
connected during the phase: more than the previous phase connects the new ones (at
connect-rate, or spread over ramp); fewer closes the surplus.

  url = \"http://127.0.0.1:3000\"     # optional; --url overrides; none = embedded server
  protocol = \"socketio\"             # ws | socketio (default from the URL scheme)
  transport = \"websocket\"           # websocket | polling
  path = \"/socket.io/\"
  event = \"echo\"                    # reply-event = \"name\" when the server answers by event
  auth = '{\"token\":\"abc\"}'
  headers = [\"x-api-key: abc\"]
  query = [\"room=lobby\"]
  data = \"users.csv\"                # per-client records: {user}, {token} below
  data-mode = \"wrap\"                # wrap | unique
  # auth = '{\"token\":\"{token}\"}'   # {FIELD}, {client}, {room} in url, query, headers,
  # headers = [\"x-api-key: ${API_KEY}\"]  # auth, join/publish args; ${ENV} anywhere
  cacert = \"ca.pem\"                 # TLS: private CA; cert/key = client certificate (mTLS)
  # sni = \"chat.internal\"   connect-to = \"10.0.0.7:443\"   resolve = \"all\"
  timeout = \"10s\"
  grace = \"2s\"
  insecure = false
  source-addrs = \"auto\"            # none | 127.0.0.1-8 | 10.0.0.5,10.0.0.6
  thresholds = [\"echo.latency.p99 < 50ms\", \"connect.failed == 0\"]   # and/or combine
  abort = false                     # true: --abort-on-fail (thresholds checked each second)
  abort-delay = \"30s\"               # how long one must fail before the run stops

  [[phase]]
  name = \"ramp\"                     # unique, [a-z0-9_-]
  scenario = \"connect\"              # connect | echo | broadcast | heartbeat | churn
  clients = 1000
  connect-rate = \"200/s\"            # or ramp = \"5s\"
  duration = \"5s\"                   # held after the connects

  [[phase]]
  name = \"steady\"
  scenario = \"echo\"
  clients = 1000
  duration = \"30s\"
  rate = \"10/s\"                     # per client
  payload-size = 128
  arrival = \"constant\"              # constant | poisson
  max-in-flight = 0                 # 0 = open model (default)
  heartbeat-clients = 50            # of the clients, the last 50 only watch heartbeats
  mute = \"0.2@10s\"                 # of those, 20% stop answering pings 10 s in

  # Broadcast (and churn) phases: clients = publishers + subscribers (+ heartbeat-clients).
  join-event = \"join\"               # run-wide, like join-args, leave-event, publish-event,
  publish-args = '[\"{room}\",{payload}]'   # subscribe-event, publish-url,
  ping-interval = \"5s\"             # (raw WS)

  # Any scenario: reconnect lost clients with exponential backoff (--reconnect...).
  reconnect = true
  reconnect-delay = \"1s\"            # first delay, doubled per failed attempt
  reconnect-max-delay = \"30s\"       # cap
  reconnect-jitter = \"full\"         # full | equal | none
  reconnect-max-attempts = 0        # 0 = keep trying until the phase ends

  [[phase]]
  name = \"fanout\"
  scenario = \"broadcast\"            # or \"churn\" (with churn-rate = \"10/s\")
  publishers = 4                    # publisher j publishes into room j mod rooms
  subscribers = 2000
  room-size = 500                   # or rooms = 4 (round robin)
  rate = \"50/s\"                     # per publisher; publishing starts when its room is full
  duration = \"30s\"
  # server-publisher = \"lobby\"     # instead of publishers: target-server --tick lobby:...

See harness/plans/fanout.toml.";

/// `swarm connect` arguments: clients, pacing, the target, reconnects, outputs.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Target URL: ws:// or wss:// for raw WebSocket, http:// or https:// for Socket.IO
    /// (the URL path is the namespace). None: an embedded target-server. Several (e.g.
    /// `swarm connect http://a:3000 http://b:3000`): clients spread round-robin over them,
    /// one worker process per target at least, each result attributed to its target
    /// (docs/DISTRIBUTED.md).
    #[arg(value_name = "URL")]
    pub url: Vec<String>,
    #[command(flatten)]
    pub clients: ClientsArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dry: DryRunArgs,
}

/// `swarm echo` arguments: `connect`'s, plus what each client sends and how replies come.
#[derive(Debug, Args, Clone)]
pub struct EchoArgs {
    /// Target URL: ws:// or wss:// for raw WebSocket, http:// or https:// for Socket.IO
    /// (the URL path is the namespace). None: an embedded target-server. Several (e.g.
    /// `swarm echo http://a:3000 http://b:3000`): clients spread round-robin over them, one
    /// worker process per target at least, each result attributed to its target
    /// (docs/DISTRIBUTED.md).
    #[arg(value_name = "URL")]
    pub url: Vec<String>,
    #[command(flatten)]
    pub clients: ClientsArgs,
    #[command(flatten)]
    pub send: SendArgs,
    #[command(flatten)]
    pub events: EchoEventArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dry: DryRunArgs,
}

/// `swarm run` arguments.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Plan file (TOML). None: the built-in default plan.
    pub plan: Option<PathBuf>,
    /// Target URL, overriding the plan's `url`. Give it several times for several targets:
    /// clients spread round-robin over them, one worker process per target at least
    /// (docs/DISTRIBUTED.md); in SWARM_URL, separated by spaces.
    #[arg(long, env = "SWARM_URL", hide_env_values = true, value_delimiter = ' ')]
    pub url: Vec<String>,
    /// Socket.IO CONNECT auth (a JSON object), replacing the plan's `auth`; may hold
    /// placeholders, e.g. '{"token":"{token}"}' with --data.
    #[arg(long, env = "SWARM_AUTH", hide_env_values = true)]
    pub auth: Option<String>,
    /// Extra handshake header K:V, added to the plan's `headers` (repeatable; in
    /// SWARM_HEADER one per line).
    #[arg(
        long = "header",
        short = 'H',
        env = "SWARM_HEADER",
        hide_env_values = true,
        value_delimiter = '\n'
    )]
    pub headers: Vec<String>,
    /// Extra query parameter K=V, added to the plan's `query` (repeatable; in SWARM_QUERY
    /// joined by `&`).
    #[arg(
        long = "query",
        env = "SWARM_QUERY",
        hide_env_values = true,
        value_delimiter = '&'
    )]
    pub query: Vec<String>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Reconnect options, overriding the plan's `reconnect*` keys when given.
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub dry: DryRunArgs,
}

/// Per-connection data (`--data`), shared by every command that runs clients.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Per-connection data (docs/TESTING-YOUR-SERVER.md)")]
pub struct DataArgs {
    /// A CSV file with a header line, or JSON Lines (.jsonl): client i takes record i, whose
    /// fields fill the {FIELD} placeholders of the URL, --query, --header, --auth and the
    /// join/publish arguments ({client} and {room} work without it). Values are never
    /// written to the run's files. Example: --data users.csv --auth '{"token":"{token}"}'
    #[arg(long, value_name = "FILE", env = "SWARM_DATA")]
    pub data: Option<String>,
    /// wrap: client i takes record i mod N (the default); unique: refuse a plan with more
    /// clients than records.
    #[arg(long, value_enum, value_name = "MODE", env = "SWARM_DATA_MODE")]
    pub data_mode: Option<crate::data::DataMode>,
    /// Write the data values into results.json (meta.options.data.values); off by default
    /// because they are often credentials.
    #[arg(long)]
    pub record_data: bool,
}

/// TLS and addressing, shared by every command that runs clients (plan keys of the same
/// names; on `swarm run` these go over the plan's).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "TLS and addresses")]
pub struct TlsArgs {
    /// Trust the CA certificates in this PEM file instead of the built-in roots (Mozilla's,
    /// compiled in through the webpki-roots crate), e.g. a private CA.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<String>,
    /// Client certificate chain (PEM) for servers that ask for one (mTLS); with --key.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<String>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<String>,
    /// Send this server name (SNI) and verify the certificate against it, instead of the
    /// URL's host. Example: wss://10.0.0.7/ws --sni chat.example.com
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Open the connections to HOST:PORT instead of the URL's; the URL's host is still the
    /// Host header and the TLS name. Example: https://chat.example --connect-to 127.0.0.1:8443
    #[arg(long, value_name = "HOST:PORT")]
    pub connect_to: Option<String>,
    /// first: every client uses the first resolved address that accepts a connection
    /// (default); all: clients spread over every address that does, round robin, with the
    /// connects per address in results.json (meta.options.addresses).
    #[arg(long, value_enum, value_name = "first|all")]
    pub resolve: Option<crate::model::Resolve>,
}

/// How many clients, how fast they connect, how long they stay (`connect`, `echo`).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Clients")]
pub struct ClientsArgs {
    /// Number of clients (accepts 10k, 1.5k, 2m).
    #[arg(long, short = 'c', default_value = "100", value_parser = parse_count)]
    pub clients: u32,
    /// Connect attempts per second, e.g. 500/s (default 1000/s unless --ramp is given).
    #[arg(long, value_parser = parse_rate, conflicts_with = "ramp")]
    pub connect_rate: Option<f64>,
    /// Spread the connects evenly over this time instead of --connect-rate, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// How long to hold the clients (and send, for echo) once connected, e.g. 30s, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// What each echo client sends, and when.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Sending")]
pub struct SendArgs {
    /// Messages per second per client, e.g. 10/s, 30/m.
    #[arg(long, default_value = "1/s", value_parser = parse_rate)]
    pub rate: f64,
    /// Size in bytes of each serialized payload object. Minimum 106.
    #[arg(long, default_value_t = crate::payload::MIN_PAYLOAD_SIZE)]
    pub payload_size: usize,
    /// Send instants: evenly spaced (constant) or a Poisson process (poisson).
    #[arg(long, value_enum, default_value_t = Arrival::Constant)]
    pub arrival: Arrival,
    /// Cap of outstanding messages per client (closed model). 0 = no cap (open model).
    #[arg(long, default_value_t = 0)]
    pub max_in_flight: u32,
}

/// The event an echo is emitted as, and how its reply comes back (Socket.IO).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Target")]
pub struct EchoEventArgs {
    /// Event emitted for each echo (Socket.IO), answered by ack unless --reply-event.
    #[arg(long, default_value = "echo")]
    pub event: String,
    /// The server answers with this event (carrying the payload) instead of an ack.
    #[arg(long)]
    pub reply_event: Option<String>,
}

/// The drain after the last send (commands whose clients wait for replies or deliveries).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Target")]
pub struct DrainArgs {
    /// After the last send, wait up to min(timeout, grace) for outstanding replies and
    /// deliveries (and muted heartbeat clients for their close).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub grace: Duration,
}

/// Where and how to talk.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Target")]
pub struct TargetArgs {
    /// Protocol; by default from the URL scheme (ws/wss = ws, http/https = socketio).
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Socket.IO transport: websocket only, or HTTP long-polling then upgrade.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub transport: Transport,
    /// Engine.IO path (Socket.IO).
    #[arg(long, default_value = "/socket.io/")]
    pub path: String,
    /// Socket.IO CONNECT auth payload, a JSON object, e.g. '{"token":"abc"}'.
    #[arg(long)]
    pub auth: Option<String>,
    /// Extra HTTP header on every handshake request, K:V (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Extra query parameter on every handshake request, K=V (repeatable).
    #[arg(long = "query")]
    pub query: Vec<String>,
    /// A reply not back within this time is a timeout (a later one is `late`); also the
    /// limit for each connect.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Socket.IO parser of the server: `default` (JSON text, as socket.io-parser) or
    /// `msgpack` (one msgpack map per binary frame, as socket.io-msgpack-parser).
    #[arg(long, value_enum, default_value_t = ParserKind::Default)]
    pub parser: ParserKind,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long)]
    pub insecure: bool,
    /// Local addresses to connect from, in turn: `auto` (loopback targets with more than
    /// 8,000 clients: 127.0.0.1, .2, ... one per 8,000, because one source address runs
    /// short of cheap ephemeral ports near 14,000 connections), `none` (the kernel's
    /// choice), or a list such as `127.0.0.1-8` or `10.0.0.5,10.0.0.6`.
    #[arg(long, default_value = "auto", value_parser = crate::source::SourceSpec::parse)]
    pub source_addrs: crate::source::SourceSpec,
    /// Largest message a client accepts from the server: a WebSocket message or frame, or
    /// a polling response body (e.g. 64KiB, 16MiB, 1MB). A larger one ends that connection,
    /// counted as `message_too_large`. A hostile or broken server cannot make each client
    /// hold more.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_size: usize,
    /// A write that makes no progress for this long (the server stopped reading and the
    /// socket buffers are full) ends that connection, counted as `write_timeout`; `off`
    /// waits until the run's end.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = write_timeout_arg)]
    pub write_timeout: WriteTimeout,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `--write-timeout`: a duration, or `None` for `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTimeout(pub Option<Duration>);

fn write_timeout_arg(s: &str) -> Result<WriteTimeout, String> {
    parse_write_timeout(s).map(WriteTimeout)
}

/// What to write and print.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output folder (default ./swarm-results/<scenario>-<timestamp>/); or, repeatable,
    /// `ndjson=PATH` (`ndjson=-`: stdout) for one JSON object per second as the run goes,
    /// and `junit=PATH` for one JUnit test case per threshold.
    #[arg(long = "out", value_name = "DIR|ndjson=PATH|junit=PATH", value_parser = parse_out)]
    pub outs: Vec<OutArg>,
    /// Print the run summary as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No live progress.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Pass/fail rule, e.g. 'echo.latency.p99 < 50ms' (repeatable; exit 1 if one fails).
    /// Rules join with `and` / `or`: 'echo.latency.p99 < 50ms and connect.failed == 0'.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    #[command(flatten)]
    pub scale: ScaleArgs,
    #[command(flatten)]
    pub live: LiveArgs,
}

impl OutputArgs {
    /// The output folder: the last `--out` that is not a stream.
    pub fn out_dir(&self) -> Option<PathBuf> {
        self.outs.iter().rev().find_map(|o| match o {
            OutArg::Dir(d) => Some(d.clone()),
            _ => None,
        })
    }
}

/// One `--out` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutArg {
    Dir(PathBuf),
    Ndjson(crate::live::Stream),
    Junit(PathBuf),
}

fn parse_out(s: &str) -> Result<OutArg, String> {
    let nonempty = |v: &str, what: &str| {
        if v.is_empty() {
            Err(format!("`{what}=` needs a path"))
        } else {
            Ok(PathBuf::from(v))
        }
    };
    Ok(match s.split_once('=') {
        Some(("ndjson", "-")) => OutArg::Ndjson(crate::live::Stream::Stdout),
        Some(("ndjson", p)) => OutArg::Ndjson(crate::live::Stream::File(nonempty(p, "ndjson")?)),
        Some(("junit", p)) => OutArg::Junit(nonempty(p, "junit")?),
        _ if s.is_empty() => return Err("an empty --out".into()),
        _ => OutArg::Dir(PathBuf::from(s)),
    })
}

/// `--metrics-addr`: `HOST:PORT`, or `PORT` / `:PORT` for 127.0.0.1 (`localhost` is
/// 127.0.0.1 too).
fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let loopback = |p: &str| {
        p.parse::<u16>()
            .map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|_| format!("`{s}`: give HOST:PORT (e.g. 127.0.0.1:9464) or a port"))
    };
    if let Some(p) = s.strip_prefix(':').or_else(|| s.strip_prefix("localhost:")) {
        return loopback(p);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return loopback(s);
    }
    s.parse().map_err(|_| {
        format!("`{s}`: give HOST:PORT with an IP address (e.g. 127.0.0.1:9464, 0.0.0.0:9464)")
    })
}

/// Watching a run live (README "Watching a run live").
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Watching a run live (README: Watching a run live)")]
pub struct LiveArgs {
    /// Serve OpenMetrics at http://ADDR/metrics while the run goes on: counters, gauges and
    /// latency summaries of the last second, labelled run_id, phase, scenario, target.
    /// `9464` or `:9464` mean 127.0.0.1:9464; the endpoint leaves loopback only when you
    /// give another address (e.g. 0.0.0.0:9464).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// How long --metrics-addr stays up after the run, so the last scrape sees the final
    /// values (set it to at least your scrape interval; 0s: stop at once).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub metrics_linger: Duration,
    /// Push the same series every second to a Prometheus remote-write receiver
    /// (http://HOST:PORT/api/v1/write), plus a final push. Failed pushes are counted in the
    /// results (`live.remote_write`) and never stop the run.
    #[arg(long, value_name = "URL")]
    pub prometheus_remote_write: Option<String>,
    /// Check every --threshold each second and stop the run when one has failed for
    /// --abort-delay (the results say which; exit 1). Live checks take echo/broadcast
    /// latency at p50, p90, p99 or max, and the run's counters.
    #[arg(long)]
    pub abort_on_fail: bool,
    /// How long a threshold must fail, second after second, before --abort-on-fail stops
    /// the run [default: 30s, or the plan's abort-delay].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub abort_delay: Option<Duration>,
}

/// Threads, and more than one process (docs/DISTRIBUTED.md).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Threads and processes (docs/DISTRIBUTED.md)")]
pub struct ScaleArgs {
    /// Threads that run the clients (default: one per core). At low message rates one
    /// thread uses about 16% less CPU per message (wake-ups are shared by more clients);
    /// high rates need more than one (docs/PERFORMANCE.md).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Worker processes that run the clients: `auto` starts one per 15,000 clients (a
    /// process's open-file limit), so up to 15,000 clients run in this process as before;
    /// N starts N local workers (the same binary) and merges their results exactly into
    /// one results folder. 0 with --expect-workers: remote workers only. [default: auto]
    #[arg(long, value_parser = crate::model::Procs::parse)]
    pub procs: Option<crate::model::Procs>,
    /// Address of the control port workers connect to (default 127.0.0.1, a free port).
    /// Give a routable address (e.g. 0.0.0.0:7700) for workers on other machines.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Remote workers to wait for (`swarm worker --join HOST:PORT` on other machines or
    /// pods) before the run starts, besides the local --procs.
    #[arg(long, default_value_t = 0)]
    pub expect_workers: u32,
    /// The run's secret: a worker without it is refused. Default: the environment variable
    /// SWARM_TOKEN, else a random one (local workers get it themselves). Required with a
    /// non-loopback --listen.
    #[arg(long)]
    pub token: Option<String>,
}

#[cfg(test)]
mod tests;
