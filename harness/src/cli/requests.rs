//! The command line, converted into what the rest of the crate takes: a [`plan::Request`]
//! (a typed raw plan, or a plan file) for the commands that run a plan, a
//! [`commands::Request`] for `report` and `compare`.
//!
//! Receives parsed arguments (clap has already parsed counts, rates, durations, sizes).
//! Emits the same values, typed, in the raw plan's fields: nothing is printed to be parsed
//! again. Must not: check cross-field rules (the plan does).

use crate::commands;
use crate::plan::{
    self, ByteSize, PlanError, RawOutput, RawPhase, RawPlan, ReconnectOverride, Scenario,
};
use crate::scenario::churn::args::ChurnRateArgs;

use super::{
    BroadcastArgs, ClientsArgs, Command, ConnectArgs, EchoArgs, HeartbeatArgs, OutputArgs,
    PacingArgs, ReconnectArgs, TargetArgs,
};

impl Command {
    /// `report` and `compare`, which read results files instead of running a plan.
    pub fn tool(&self) -> Option<commands::Request> {
        match self {
            Command::Report(a) => Some(commands::Request::Report(a.clone())),
            Command::Compare(a) => Some(commands::Request::Compare(a.clone())),
            Command::Merge(a) => Some(commands::Request::Merge(a.clone())),
            _ => None,
        }
    }
}

impl TryFrom<&Command> for plan::Request {
    type Error = PlanError;

    fn try_from(command: &Command) -> Result<plan::Request, PlanError> {
        let one_phase = |raw: RawPlan, output: &OutputArgs, label_errors| plan::Request::Command {
            raw: Box::new(raw),
            output: output.into(),
            label_errors,
        };
        Ok(match command {
            Command::Connect(a) => one_phase(a.raw_plan(), &a.output, false),
            Command::Echo(a) => one_phase(a.raw_plan(), &a.output, false),
            Command::Broadcast(a) => {
                one_phase(a.raw_plan(Scenario::Broadcast, None), &a.output, true)
            }
            Command::Churn(a) => one_phase(
                a.broadcast.raw_plan(Scenario::Churn, Some(&a.churn)),
                &a.broadcast.output,
                true,
            ),
            Command::Heartbeat(a) => one_phase(a.raw_plan(), &a.output, true),
            Command::Run(a) | Command::Flow(a) => plan::Request::File {
                path: a.plan.clone(),
                url: a.url.clone(),
                reconnect: (&a.reconnect).into(),
                target: Box::new(plan::TargetOverride {
                    auth: a.auth.clone(),
                    headers: a.headers.clone(),
                    query: a.query.clone(),
                    data: a.data.data.clone(),
                    data_mode: a.data.data_mode,
                    record_data: a.data.record_data,
                    cacert: a.tls.cacert.clone(),
                    cert: a.tls.cert.clone(),
                    key: a.tls.key.clone(),
                    sni: a.tls.sni.clone(),
                    connect_to: a.tls.connect_to.clone(),
                    resolve: a.tls.resolve,
                }),
                output: (&a.output).into(),
            },
            Command::Report(_)
            | Command::Compare(_)
            | Command::Merge(_)
            | Command::Completions(_) => {
                return Err(PlanError::Invalid(vec![
                    "`swarm report`, `swarm compare`, `swarm merge` and `swarm completions` \
                     run no plan"
                        .into(),
                ]));
            }
            Command::Worker(_) => {
                return Err(PlanError::Invalid(vec![
                    "`swarm worker` runs the plan its coordinator sends".into(),
                ]));
            }
            Command::Capacity(_) => {
                return Err(PlanError::Invalid(vec![
                    "`swarm capacity` runs a search of plans (crate::capacity), not one plan"
                        .into(),
                ]));
            }
        })
    }
}

impl From<&OutputArgs> for RawOutput {
    fn from(o: &OutputArgs) -> RawOutput {
        RawOutput {
            out: o.out_dir(),
            json: o.json,
            quiet: o.quiet,
            thresholds: o.thresholds.clone(),
            live: crate::live::LiveOptions {
                metrics_addr: o.live.metrics_addr,
                metrics_linger: o.live.metrics_linger,
                remote_write: o.live.prometheus_remote_write.clone(),
                ndjson: o.outs.iter().rev().find_map(|x| match x {
                    super::OutArg::Ndjson(s) => Some(s.clone()),
                    _ => None,
                }),
                junit: o.outs.iter().rev().find_map(|x| match x {
                    super::OutArg::Junit(p) => Some(p.clone()),
                    _ => None,
                }),
                abort_on_fail: o.live.abort_on_fail,
                abort_delay: crate::live::DEFAULT_ABORT_DELAY,
            },
            abort_delay: o.live.abort_delay,
            procs: o.scale.procs,
            listen: o.scale.listen,
            expect_workers: o.scale.expect_workers,
            token: o.scale.token.clone(),
        }
    }
}

impl From<&ReconnectArgs> for ReconnectOverride {
    fn from(a: &ReconnectArgs) -> ReconnectOverride {
        ReconnectOverride {
            reconnect: a.reconnect,
            delay: a.reconnect_delay,
            max_delay: a.reconnect_max_delay,
            jitter: a.reconnect_jitter,
            max_attempts: a.reconnect_max_attempts,
        }
    }
}

impl TargetArgs {
    /// The run-wide keys every command shares, named `name`, aimed at `url`.
    pub(super) fn raw_plan(&self, name: &str, url: &[String]) -> RawPlan {
        RawPlan {
            name: Some(name.to_string()),
            url: plan::Urls::given(url),
            protocol: self.protocol,
            transport: Some(self.transport),
            path: Some(self.path.clone()),
            auth: self.auth.clone(),
            headers: self.headers.clone(),
            query: self.query.clone(),
            timeout: Some(Ok(self.timeout)),
            parser: Some(self.parser),
            insecure: self.insecure,
            source_addrs: Some(Ok(self.source_addrs.clone())),
            max_message_size: Some(Ok(ByteSize {
                bytes: self.max_message_size,
                written: self.max_message_size.to_string(),
            })),
            write_timeout: Some(Ok(self.write_timeout.0)),
            data: self.data.data.clone(),
            data_mode: self.data.data_mode,
            record_data: self.data.record_data,
            cacert: self.tls.cacert.clone(),
            cert: self.tls.cert.clone(),
            key: self.tls.key.clone(),
            sni: self.tls.sni.clone(),
            connect_to: self.tls.connect_to.clone(),
            resolve: self.tls.resolve,
            ..RawPlan::default()
        }
    }
}

impl PacingArgs {
    /// A phase named after `scenario`, paced by these flags.
    pub(super) fn raw_phase(&self, scenario: Scenario) -> RawPhase {
        RawPhase {
            name: Some(scenario.name().to_string()),
            scenario: Some(scenario),
            connect_rate: self.connect_rate.map(Ok),
            ramp: self.ramp.map(Ok),
            duration: Some(Ok(self.duration)),
            ..RawPhase::default()
        }
    }
}

impl ClientsArgs {
    /// A phase of `scenario` with these clients and this pacing.
    fn raw_phase(&self, scenario: Scenario) -> RawPhase {
        let pacing = PacingArgs {
            connect_rate: self.connect_rate,
            ramp: self.ramp,
            duration: self.duration,
        };
        RawPhase {
            clients: Some(Ok(self.clients)),
            ..pacing.raw_phase(scenario)
        }
    }
}

impl ConnectArgs {
    /// `swarm connect` as a one-phase raw plan.
    fn raw_plan(&self) -> RawPlan {
        let scenario = Scenario::Connect;
        RawPlan {
            phases: vec![self.clients.raw_phase(scenario)],
            ..self.target.raw_plan(scenario.name(), &self.url)
        }
        .with_reconnect(&(&self.reconnect).into())
    }
}

impl EchoArgs {
    /// `swarm echo` as a one-phase raw plan.
    fn raw_plan(&self) -> RawPlan {
        let scenario = Scenario::Echo;
        let s = &self.send;
        let phase = RawPhase {
            rate: Some(Ok(s.rate)),
            payload_size: Some(s.payload_size),
            arrival: Some(s.arrival),
            max_in_flight: Some(s.max_in_flight),
            ..self.clients.raw_phase(scenario)
        };
        RawPlan {
            event: Some(self.events.event.clone()),
            reply_event: self.events.reply_event.clone(),
            grace: Some(Ok(self.drain.grace)),
            phases: vec![phase],
            ..self.target.raw_plan(scenario.name(), &self.url)
        }
        .with_reconnect(&(&self.reconnect).into())
    }
}

impl BroadcastArgs {
    /// `swarm broadcast` (`swarm churn` with `churn`) as a one-phase raw plan: the
    /// scenarios' own flags become plan keys in `scenario/*/args.rs`.
    fn raw_plan(&self, scenario: Scenario, churn: Option<&ChurnRateArgs>) -> RawPlan {
        let mut phase = self.fanout.phase_keys(self.pacing.raw_phase(scenario));
        if let Some(c) = churn {
            phase = c.phase_keys(phase);
        }
        RawPlan {
            grace: Some(Ok(self.drain.grace)),
            phases: vec![phase],
            ..self
                .fanout
                .plan_keys(self.target.raw_plan(scenario.name(), &self.url))
        }
        .with_reconnect(&(&self.reconnect).into())
    }
}

impl HeartbeatArgs {
    /// `swarm heartbeat` as a one-phase raw plan.
    fn raw_plan(&self) -> RawPlan {
        let phase = RawPhase {
            clients: Some(Ok(self.clients)),
            ..self
                .heartbeat
                .phase_keys(self.pacing.raw_phase(Scenario::Heartbeat))
        };
        RawPlan {
            grace: Some(Ok(self.drain.grace)),
            phases: vec![phase],
            ..self
                .heartbeat
                .plan_keys(self.target.raw_plan("heartbeat", &self.url))
        }
        .with_reconnect(&(&self.reconnect).into())
    }
}
