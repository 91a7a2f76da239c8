//! Message flows: the plan's `[[flow]]` tables (docs/TESTING-YOUR-SERVER.md#flows), as
//! written ([`RawFlow`], [`RawStep`]) and checked ([`Flow`], [`Step`]).
//!
//! Receives the flows as the TOML deserialized them, the data file's field names, the
//! protocol and the plan's timeout and join / leave events. Emits flows whose steps are
//! numbered run-wide (the [`Step::id`] every flow sample carries), whose templates are
//! bound to the data fields and the flow's capture variables, or every problem, each
//! naming its flow and step.
//! Must not: accept more than [`MAX_STEPS`] steps, [`MAX_VARS`] variables, a repeat
//! inside a repeat, or a step name that is not `[A-Za-z0-9_-]+` (names become threshold
//! segments: `flow.STEP.latency.p99`).

pub mod path;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use path::{Cond, Path};

use crate::model::{Protocol, parse_duration, parse_rate};
use crate::template::{Escape, Template, Text};

/// Most steps in all the flows of a plan, repeat bodies included.
pub const MAX_STEPS: usize = 256;
/// The built-in variable: the client's request counter, one more at every step that sends.
pub const SEQ: &str = "seq";
/// Most capture variables in one flow.
pub const MAX_VARS: usize = 32;
/// Largest captured value, in bytes (a longer one is a `bad_path` error of its step).
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most requests of one client awaiting their reply at once (a rated repeat that outruns
/// its server fails the oldest as timeouts).
pub const MAX_OUTSTANDING: usize = 1024;
/// Largest received frame a flow parses as JSON (larger ones cannot meet a condition).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// One `[[flow]]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFlow {
    pub name: Option<String>,
    #[serde(default, rename = "step")]
    pub steps: Vec<RawStep>,
}

/// `repeat = 10` or `repeat = "30s"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawRepeat {
    Times(i64),
    For(String),
}

/// One `[[flow.step]]` as written: exactly one of `emit`, `send`, `wait`, `sleep`,
/// `think`, `join`, `leave`, `repeat`, or `capture` alone.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawStep {
    pub name: Option<String>,
    pub emit: Option<String>,
    pub args: Option<String>,
    pub ack: Option<bool>,
    pub send: Option<String>,
    pub binary: Option<bool>,
    pub wait: Option<String>,
    pub reply: Option<String>,
    #[serde(rename = "match")]
    pub match_path: Option<String>,
    #[serde(rename = "where")]
    pub where_cond: Option<String>,
    pub capture: Option<BTreeMap<String, String>>,
    pub error: Option<String>,
    pub timeout: Option<String>,
    pub sleep: Option<String>,
    pub think: Option<String>,
    pub join: Option<String>,
    pub leave: Option<String>,
    pub repeat: Option<RawRepeat>,
    pub rate: Option<String>,
    #[serde(rename = "do")]
    pub body: Option<Vec<RawStep>>,
}

/// What a step waits for after its send (or, for `wait`, instead of one).
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The event's name; `None`: any event (`"*"`), and any frame over raw WebSocket.
    pub event: Option<String>,
    /// Correlation: the reply carries at this path the value the request carried there.
    pub matching: Option<Path>,
    pub cond: Option<Cond>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Socket.IO emit of `event` with `args`; `ack`: ask for and wait for the ack.
    Emit {
        event: String,
        args: Template,
        ack: bool,
        reply: Option<Expect>,
    },
    /// Raw text (or binary) frame; over Socket.IO, an Engine.IO message as written.
    Send {
        text: Text,
        binary: bool,
        reply: Option<Expect>,
    },
    /// Wait for an event or frame.
    Wait(Expect),
    /// Capture from the last value the flow received.
    Capture,
    /// Pause for a duration drawn uniformly from `min..=max`.
    Sleep { min: Duration, max: Duration },
    /// Join (or leave) a room by the plan's join-event / leave-event and join-args.
    Join { room: Text, leave: bool },
    /// Run `body` `times` times or for `for_`, each iteration at `1/rate` from the last
    /// one's intended start (a rated repeat does not wait for replies: they are matched by
    /// ack id or `match`).
    Repeat {
        times: Option<u32>,
        for_: Option<Duration>,
        rate: Option<f64>,
        body: Vec<Step>,
    },
}

/// One checked step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Run-wide number (the flow samples' step).
    pub id: u16,
    pub name: Arc<str>,
    pub kind: StepKind,
    pub timeout: Duration,
    /// `(variable slot, path)`: what to keep from what the step received.
    pub capture: Vec<(usize, Path)>,
    /// A reply holding this path is a server error.
    pub error: Option<Path>,
}

impl Step {
    /// Whether the step is recorded (sleeps and repeats are not).
    pub fn recorded(&self) -> bool {
        !matches!(self.kind, StepKind::Sleep { .. } | StepKind::Repeat { .. })
    }
}

/// One checked flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub name: String,
    pub steps: Vec<Step>,
    /// Capture variable names; slot `i` is placeholder `{vars[i]}`.
    pub vars: Vec<String>,
    /// The data file's field names (slots before the variables' in a client's record).
    pub fields: Vec<String>,
    /// The flow has a `wait` step (clients keep recent unclaimed events for it).
    pub waits: bool,
}

/// The names and kinds of every recorded step of `flows`, by id.
pub fn step_names(flows: &[Arc<Flow>]) -> Vec<(u16, Arc<str>)> {
    fn walk(steps: &[Step], out: &mut Vec<(u16, Arc<str>)>) {
        for s in steps {
            if s.recorded() {
                out.push((s.id, s.name.clone()));
            }
            if let StepKind::Repeat { body, .. } = &s.kind {
                walk(body, out);
            }
        }
    }
    let mut out = Vec::new();
    for f in flows {
        walk(&f.steps, &mut out);
    }
    out
}

/// What flow checking needs of the rest of the plan.
pub struct Context<'a> {
    pub protocol: Protocol,
    pub timeout: Duration,
    pub fields: &'a [String],
}

fn ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

struct Builder<'a> {
    cx: &'a Context<'a>,
    next_id: usize,
    names: std::collections::HashSet<String>,
    errors: Vec<String>,
}

/// Checks every flow; the errors name the flow and the step (`flow "chat" step "history"
/// (#3): ...`).
pub fn build(raw: &[RawFlow], cx: &Context) -> Result<Vec<Arc<Flow>>, Vec<String>> {
    let mut b = Builder {
        cx,
        next_id: 0,
        names: Default::default(),
        errors: Vec::new(),
    };
    let mut flows = Vec::new();
    let mut flow_names = std::collections::HashSet::new();
    for (i, rf) in raw.iter().enumerate() {
        let name = rf.name.clone().unwrap_or_else(|| format!("flow{}", i + 1));
        if !ident(&name) {
            b.errors.push(format!(
                "flow {name:?}: the name must be [A-Za-z0-9_-]+ (at most 64)"
            ));
        }
        if !flow_names.insert(name.clone()) {
            b.errors.push(format!("flow name {name:?} is used twice"));
        }
        if rf.steps.is_empty() {
            b.errors.push(format!("flow {name:?} has no [[flow.step]]"));
        }
        // Variables: `seq` (the request counter), then every capture key in order of first
        // appearance.
        let mut vars = vec![SEQ.to_string()];
        collect_vars(&rf.steps, &mut vars);
        if vars.len() > MAX_VARS {
            b.errors.push(format!(
                "flow {name:?} captures {} variables; at most {MAX_VARS}",
                vars.len()
            ));
        }
        for v in &vars {
            if v == SEQ {
                continue;
            }
            if !ident(v)
                || cx.fields.contains(v)
                || ["client", "room", "payload"].contains(&v.as_str())
            {
                b.errors.push(format!(
                    "flow {name:?}: capture variable {v:?} must be [A-Za-z0-9_-]+ and differ \
                     from the data fields and from client, room, payload"
                ));
            }
        }
        let mut names: Vec<String> = cx.fields.to_vec();
        names.extend(vars.iter().cloned());
        let steps = b.steps(&name, &rf.steps, &names, &vars, false);
        let waits = has_wait(&steps);
        flows.push(Arc::new(Flow {
            name,
            steps,
            vars,
            fields: cx.fields.to_vec(),
            waits,
        }));
    }
    if b.next_id > MAX_STEPS {
        b.errors.push(format!(
            "the flows have {} steps; at most {MAX_STEPS}",
            b.next_id
        ));
    }
    if b.errors.is_empty() {
        Ok(flows)
    } else {
        Err(b.errors)
    }
}

fn has_wait(steps: &[Step]) -> bool {
    steps.iter().any(|s| match &s.kind {
        StepKind::Wait(_) => true,
        StepKind::Repeat { body, .. } => has_wait(body),
        _ => false,
    })
}

fn collect_vars(steps: &[RawStep], out: &mut Vec<String>) {
    for s in steps {
        for k in s.capture.iter().flat_map(|c| c.keys()) {
            // `seq` is the flow's own (the step reports it).
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        if let Some(body) = &s.body {
            collect_vars(body, out);
        }
    }
}

impl Builder<'_> {
    fn steps(
        &mut self,
        flow: &str,
        raw: &[RawStep],
        names: &[String],
        vars: &[String],
        in_repeat: bool,
    ) -> Vec<Step> {
        raw.iter()
            .filter_map(|rs| self.step(flow, rs, names, vars, in_repeat))
            .collect()
    }

    fn step(
        &mut self,
        flow: &str,
        rs: &RawStep,
        names: &[String],
        vars: &[String],
        in_repeat: bool,
    ) -> Option<Step> {
        let id = self.next_id;
        self.next_id += 1;
        let kinds: Vec<&str> = [
            ("emit", rs.emit.is_some()),
            ("send", rs.send.is_some()),
            ("wait", rs.wait.is_some()),
            ("sleep", rs.sleep.is_some()),
            ("think", rs.think.is_some()),
            ("join", rs.join.is_some()),
            ("leave", rs.leave.is_some()),
            ("repeat", rs.repeat.is_some()),
        ]
        .into_iter()
        .filter(|k| k.1)
        .map(|k| k.0)
        .collect();
        let kind_name = match kinds.as_slice() {
            [k] => *k,
            [] if rs.capture.is_some() => "capture",
            _ => "",
        };
        let name = rs.name.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                if kind_name.is_empty() {
                    "step"
                } else {
                    kind_name
                },
                id + 1
            )
        });
        let label = format!("flow {flow:?} step {name:?} (#{})", id + 1);
        let mut errs: Vec<String> = Vec::new();
        if kind_name.is_empty() {
            errs.push(if kinds.is_empty() {
                "says nothing to do: give one of emit, send, wait, sleep, think, join, leave, \
                 repeat (or capture alone)"
                    .into()
            } else {
                format!("has {} at once; a step does one thing", kinds.join(" and "))
            });
        }
        if !ident(&name) {
            errs.push(
                "its name must be [A-Za-z0-9_-]+ (at most 64): it is a threshold segment".into(),
            );
        } else if !self.names.insert(name.clone()) {
            errs.push(
                "the name is used twice (step names are unique across the plan's flows)".into(),
            );
        }
        let cx = self.cx;
        let timeout = match &rs.timeout {
            None => cx.timeout,
            Some(t) => match parse_duration(t) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    errs.push("timeout must be above zero".into());
                    cx.timeout
                }
                Err(e) => {
                    errs.push(format!("timeout: {e}"));
                    cx.timeout
                }
            },
        };
        let path = |p: &str, what: &str, errs: &mut Vec<String>| match Path::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(format!("{what}: {e}"));
                None
            }
        };
        let mut capture = Vec::new();
        for (var, p) in rs.capture.iter().flatten() {
            if var == SEQ {
                errs.push(
                    "capture: `seq` is the flow's request counter; capture into another name"
                        .into(),
                );
                continue;
            }
            if let (Some(slot), Some(p)) = (
                vars.iter().position(|v| v == var),
                path(p, &format!("capture {var:?}"), &mut errs),
            ) {
                capture.push((cx.fields.len() + slot, p));
            }
        }
        let error = rs
            .error
            .as_deref()
            .and_then(|p| path(p, "error", &mut errs));
        let expect = |event: Option<&str>, errs: &mut Vec<String>| -> Expect {
            let matching = rs
                .match_path
                .as_deref()
                .and_then(|p| path(p, "match", errs));
            let cond = rs.where_cond.as_deref().and_then(|c| {
                match Cond::parse(c).and_then(|mut c| {
                    if let Some((_, t)) = c.cmp.as_mut() {
                        t.bind(names)?;
                    }
                    Ok(c)
                }) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        errs.push(format!("where: {e}"));
                        None
                    }
                }
            });
            Expect {
                event: event.filter(|e| *e != "*").map(str::to_string),
                matching,
                cond,
            }
        };
        let socketio = cx.protocol == Protocol::Socketio;
        let reply_keys = rs.match_path.is_some() || rs.where_cond.is_some();
        let kind = match kind_name {
            "emit" => {
                if !socketio {
                    errs.push("emit is Socket.IO; over raw WebSocket use send".into());
                }
                let args = rs.args.as_deref().unwrap_or("[]");
                let args = match Template::parse(args, false).and_then(|mut t| {
                    t.bind(names)?;
                    Ok(t)
                }) {
                    Ok(t) => t,
                    Err(e) => {
                        errs.push(format!("args: {e}"));
                        Template::parse("[]", false).ok()?
                    }
                };
                let ack = rs.ack.unwrap_or(false);
                if ack && rs.reply.is_some() {
                    errs.push("give ack or reply, not both".into());
                }
                if rs.match_path.is_some() && rs.reply.is_none() {
                    errs.push("match correlates a reply event: give reply = \"EVENT\"".into());
                }
                if rs.where_cond.is_some() && rs.reply.is_none() {
                    errs.push(
                        "where filters a reply event: give reply = \"EVENT\" (an ack is the \
                         answer itself)"
                            .into(),
                    );
                }
                StepKind::Emit {
                    event: rs.emit.clone().unwrap_or_default(),
                    args,
                    ack,
                    reply: rs.reply.as_deref().map(|r| expect(Some(r), &mut errs)),
                }
            }
            "send" => {
                let text = match Text::parse(rs.send.as_deref().unwrap_or(""), Escape::Json)
                    .and_then(|mut t| {
                        t.bind(names)?;
                        Ok(t)
                    }) {
                    Ok(t) => t,
                    Err(e) => {
                        errs.push(format!("send: {e}"));
                        Text::parse("", Escape::Json).ok()?
                    }
                };
                if reply_keys && rs.reply.is_none() {
                    errs.push("match and where need reply = \"*\" (or an event name)".into());
                }
                StepKind::Send {
                    text,
                    binary: rs.binary.unwrap_or(false),
                    reply: rs.reply.as_deref().map(|r| expect(Some(r), &mut errs)),
                }
            }
            "wait" => {
                if rs.match_path.is_some() {
                    errs.push("match belongs on the emit or send that asks (with reply)".into());
                }
                StepKind::Wait(expect(rs.wait.as_deref(), &mut errs))
            }
            "sleep" | "think" => {
                let text = rs.sleep.as_deref().or(rs.think.as_deref()).unwrap_or("");
                let (a, b) = text.split_once("..").unwrap_or((text, text));
                match (parse_duration(a.trim()), parse_duration(b.trim())) {
                    (Ok(min), Ok(max)) if min <= max && max <= Duration::from_secs(3600) => {
                        StepKind::Sleep { min, max }
                    }
                    (Ok(_), Ok(_)) => {
                        errs.push(format!(
                            "{kind_name} {text:?}: write a duration or MIN..MAX with MIN <= MAX <= 1h"
                        ));
                        StepKind::Sleep {
                            min: Duration::ZERO,
                            max: Duration::ZERO,
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        errs.push(format!("{kind_name}: {e}"));
                        StepKind::Sleep {
                            min: Duration::ZERO,
                            max: Duration::ZERO,
                        }
                    }
                }
            }
            "join" | "leave" => {
                if !socketio {
                    errs.push(format!("{kind_name} is Socket.IO (rooms by event)"));
                }
                let leave = kind_name == "leave";
                let text = if leave { &rs.leave } else { &rs.join };
                match Text::parse(text.as_deref().unwrap_or(""), Escape::Json).and_then(|mut t| {
                    t.bind(names)?;
                    Ok(t)
                }) {
                    Ok(room) => StepKind::Join { room, leave },
                    Err(e) => {
                        errs.push(format!("{kind_name}: {e}"));
                        StepKind::Join {
                            room: Text::parse("", Escape::Json).ok()?,
                            leave,
                        }
                    }
                }
            }
            "repeat" => {
                if in_repeat {
                    errs.push("a repeat inside a repeat is not supported".into());
                }
                let (times, for_) = match &rs.repeat {
                    Some(RawRepeat::Times(n)) => match u32::try_from(*n) {
                        Ok(n) if n > 0 => (Some(n), None),
                        _ => {
                            errs.push(format!("repeat = {n}: a count above zero"));
                            (Some(1), None)
                        }
                    },
                    Some(RawRepeat::For(s)) => match parse_duration(s) {
                        Ok(d) if !d.is_zero() => (None, Some(d)),
                        _ => {
                            errs.push(format!(
                                "repeat = {s:?}: a count (repeat = 10) or a duration above zero"
                            ));
                            (Some(1), None)
                        }
                    },
                    None => (Some(1), None),
                };
                let rate = match rs.rate.as_deref().map(parse_rate) {
                    None => None,
                    Some(Ok(r)) if r > 0.0 && r <= 100_000.0 => Some(r),
                    Some(Ok(r)) => {
                        errs.push(format!("rate {r}/s must be above 0 and at most 100000"));
                        None
                    }
                    Some(Err(e)) => {
                        errs.push(format!("rate: {e}"));
                        None
                    }
                };
                if for_.is_some() && rate.is_none() {
                    errs.push("a repeat for a duration needs a rate (e.g. rate = \"10/s\")".into());
                }
                let body = rs.body.as_deref().unwrap_or(&[]);
                if body.is_empty() {
                    errs.push("repeat needs steps: [[flow.step.do]] tables after it".into());
                }
                let body = self.steps(flow, body, names, vars, true);
                StepKind::Repeat {
                    times,
                    for_,
                    rate,
                    body,
                }
            }
            "capture" => StepKind::Capture,
            _ => StepKind::Capture,
        };
        if kind_name != "repeat" && (rs.rate.is_some() || rs.body.is_some()) {
            errs.push("rate and do belong to a repeat step".into());
        }
        let receives = match &kind {
            StepKind::Emit { ack, reply, .. } => *ack || reply.is_some(),
            StepKind::Send { reply, .. } => reply.is_some(),
            StepKind::Wait(_) | StepKind::Capture | StepKind::Join { .. } => true,
            _ => false,
        };
        if !receives && (rs.capture.is_some() || rs.error.is_some()) {
            errs.push("capture and error need something received (ack, reply or wait)".into());
        }
        if kind_name == "capture" && rs.error.is_some() {
            errs.push("a capture step takes no error path".into());
        }
        if let (Some(_), false) = (&rs.args, kind_name == "emit") {
            errs.push("args belongs to an emit".into());
        }
        let id = match u16::try_from(id) {
            Ok(id) => id,
            Err(_) => return None,
        };
        self.errors
            .extend(errs.into_iter().map(|e| format!("{label}: {e}")));
        Some(Step {
            id,
            name: name.into(),
            kind,
            timeout,
            capture,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(fields: &[String]) -> Context<'_> {
        Context {
            protocol: Protocol::Socketio,
            timeout: Duration::from_secs(5),
            fields,
        }
    }

    fn flows(text: &str) -> Result<Vec<Arc<Flow>>, Vec<String>> {
        #[derive(Deserialize)]
        struct W {
            flow: Vec<RawFlow>,
        }
        let w: W = toml::from_str(text).expect("toml");
        let fields = vec!["token".to_string()];
        build(&w.flow, &cx(&fields))
    }

    #[test]
    fn a_flow_with_every_kind_checks() {
        let f = flows(
            r#"
            [[flow]]
            name = "chat"
            [[flow.step]]
            name = "hello"
            emit = "hello"
            args = '["{token}"]'
            ack = true
            capture = { me = "$.id" }
            [[flow.step]]
            join = "room-{me}"
            [[flow.step]]
            think = "1ms..5ms"
            [[flow.step]]
            name = "talk"
            repeat = 3
            rate = "10/s"
              [[flow.step.do]]
              name = "ask"
              emit = "ask"
              args = '[{"id":"{client}-{me}"}]'
              reply = "answer"
              match = "$.id"
            [[flow.step]]
            name = "news"
            wait = "news"
            where = '$.room == "room-{me}"'
            "#,
        )
        .unwrap();
        assert_eq!(f[0].vars, vec!["seq".to_string(), "me".to_string()]);
        let names: Vec<String> = step_names(&f).iter().map(|s| s.1.to_string()).collect();
        assert_eq!(names, ["hello", "join2", "ask", "news"]);
    }

    #[test]
    fn errors_name_the_flow_and_step() {
        let e = flows(
            r#"
            [[flow]]
            name = "f"
            [[flow.step]]
            name = "bad"
            emit = "x"
            wait = "y"
            [[flow.step]]
            name = "p"
            wait = "z"
            where = "nope"
            [[flow.step]]
            name = "u"
            emit = "x"
            args = '["{nobody}"]'
            "#,
        )
        .unwrap_err();
        assert!(
            e[0].starts_with("flow \"f\" step \"bad\" (#1): has emit and wait"),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("flow \"f\" step \"p\" (#2): where")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("step \"u\"") && m.contains("{nobody}")),
            "{e:?}"
        );
    }
}
