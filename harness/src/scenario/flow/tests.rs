//! The flow state machine alone: frames out, frames in, outcomes.

use super::*;
use crate::model::Protocol;
use crate::plan::flow::{Context, RawFlow, build};

fn flow(text: &str) -> Arc<Flow> {
    #[derive(serde::Deserialize)]
    struct W {
        flow: Vec<RawFlow>,
    }
    let w: W = toml::from_str(text).expect("toml");
    let fields = vec!["token".to_string()];
    let cx = Context {
        protocol: Protocol::Socketio,
        timeout: Duration::from_millis(100),
        fields: &fields,
    };
    build(&w.flow, &cx).expect("valid").remove(0)
}

fn wire() -> Arc<Wire> {
    Arc::new(Wire {
        socketio: true,
        emit_head: b"42".to_vec(),
        join_head: br#"["join""#.to_vec(),
        leave_head: br#"["leave""#.to_vec(),
        join_args: Template::parse(r#"["{room}"]"#, false).unwrap(),
    })
}

fn sent(r: &mut FlowRun, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    while let Poll::Send(o) = r.poll(now) {
        out.push(o.text);
    }
    out
}

fn outcomes(r: &mut FlowRun) -> Vec<(String, FlowOutcome)> {
    r.take_done()
        .map(|d| (d.name.to_string(), d.outcome))
        .collect()
}

#[test]
fn a_captured_value_is_used_by_a_later_step() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "login"
        emit = "login"
        args = '["{token}"]'
        ack = true
        capture = { sid = "$.session" }
        [[flow.step]]
        name = "use"
        emit = "use"
        args = '[{"s":"{sid}","c":{client}}]'
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 7, &["tok-7".into()], 1, t0);
    assert_eq!(sent(&mut r, t0), [r#"421["login","tok-7"]"#]);
    // Blocked until the ack.
    assert_eq!(sent(&mut r, t0), Vec::<String>::new());
    r.on_ack(
        1,
        r#"[{"session":"abc\"1"}]"#,
        t0 + Duration::from_millis(5),
    );
    let out = sent(&mut r, t0 + Duration::from_millis(5));
    assert_eq!(out, [r#"42["use",{"s":"abc\"1","c":7}]"#]);
    let o = outcomes(&mut r);
    assert_eq!(
        o,
        [
            ("login".to_string(), FlowOutcome::Ok),
            ("use".to_string(), FlowOutcome::Ok)
        ]
    );
    assert!(r.finished());
}

#[test]
fn a_wait_condition_is_met_or_times_out() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "news"
        wait = "news"
        where = '$.n == 2'
        timeout = "50ms"
        [[flow.step]]
        name = "again"
        wait = "late"
        timeout = "50ms"
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    assert!(sent(&mut r, t0).is_empty());
    r.on_frame(r#"["news",{"n":1}]"#, t0); // condition not met: ignored
    r.on_frame(r#"["other",{"n":2}]"#, t0); // another event: ignored
    assert!(outcomes(&mut r).is_empty());
    r.on_frame(r#"["news",{"n":2}]"#, t0 + Duration::from_millis(3));
    let d: Vec<Done> = r.take_done().collect();
    assert_eq!(d[0].outcome, FlowOutcome::Ok);
    assert_eq!(d[0].latency, Duration::from_millis(3));
    // The second wait gets nothing: a timeout at its deadline, not before.
    let t1 = t0 + Duration::from_millis(3);
    assert!(sent(&mut r, t1).is_empty());
    assert_eq!(r.wake(), Some(t1 + Duration::from_millis(50)));
    assert!(sent(&mut r, t1 + Duration::from_millis(49)).is_empty());
    assert!(outcomes(&mut r).is_empty());
    assert!(sent(&mut r, t1 + Duration::from_millis(50)).is_empty());
    assert_eq!(
        outcomes(&mut r),
        [("again".to_string(), FlowOutcome::Timeout)]
    );
    assert!(r.finished());
}

#[test]
fn replies_are_matched_by_field_out_of_order() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "calls"
        repeat = 3
        rate = "1000/s"
          [[flow.step.do]]
          name = "ask"
          emit = "ask"
          args = '[{"requestId":"{client}-{token}-x"}]'
          reply = "answer"
          match = "$.requestId"
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 2, &["t".into()], 1, t0);
    // Open model: the three requests go out at their own instants without waiting.
    let mut n = 0;
    for ms in 0..3 {
        n += sent(&mut r, t0 + Duration::from_millis(ms)).len();
    }
    assert_eq!(n, 3);
    assert_eq!(r.outstanding(), 3);
    // A reply for nobody: unmatched; the requests stay outstanding.
    r.on_frame(
        r#"["answer",{"requestId":"nobody"}]"#,
        t0 + Duration::from_millis(4),
    );
    assert_eq!(
        outcomes(&mut r),
        [("ask".to_string(), FlowOutcome::Unmatched)]
    );
    // Every request carries the same value here, so each reply settles the oldest: what
    // matters is that replies settle requests by value.
    for _ in 0..3 {
        r.on_frame(
            r#"["answer",{"requestId":"2-t-x"}]"#,
            t0 + Duration::from_millis(5),
        );
    }
    assert_eq!(r.outstanding(), 0);
    let o = outcomes(&mut r);
    assert_eq!(o.len(), 3);
    assert!(o.iter().all(|x| x.1 == FlowOutcome::Ok), "{o:?}");
}

#[test]
fn distinct_request_ids_settle_their_own_requests() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "calls"
        repeat = 2
        rate = "1000/s"
          [[flow.step.do]]
          name = "ask"
          emit = "ask"
          args = '[{"id":"{n}"}]'
          reply = "answer"
          match = "$.id"
          capture = { n = "$.next" }
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    // {n} is empty at first; a reply sets it.
    let a = sent(&mut r, t0);
    assert_eq!(a, [r#"42["ask",{"id":""}]"#]);
    r.on_frame(r#"["answer",{"id":"","next":"B"}]"#, t0);
    let b = sent(&mut r, t0 + Duration::from_millis(1));
    assert_eq!(b, [r#"42["ask",{"id":"B"}]"#]);
    r.on_frame(
        r#"["answer",{"id":"B","next":"C"}]"#,
        t0 + Duration::from_millis(2),
    );
    assert_eq!(r.outstanding(), 0);
    assert_eq!(outcomes(&mut r).len(), 2);
}

#[test]
fn out_of_order_replies_find_their_requests() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "calls"
        repeat = 3
        rate = "1000/s"
          [[flow.step.do]]
          name = "ask"
          emit = "ask"
          args = '[{"id":"{client}"}]'
          reply = "answer"
          match = "$.id"
        "#,
    );
    // Requests by client number differ per client; with one client they would not, so
    // run three flows side by side and cross the replies between them: each flow accepts
    // only the replies carrying its own value.
    let t0 = Instant::now();
    let mut runs: Vec<FlowRun> = (0..3)
        .map(|c| FlowRun::new(f.clone(), wire(), c, &[], 1, t0))
        .collect();
    for r in &mut runs {
        assert_eq!(sent(r, t0).len(), 1);
    }
    runs[0].on_frame(r#"["answer",{"id":"2"}]"#, t0);
    assert_eq!(runs[0].outstanding(), 1);
    assert_eq!(
        outcomes(&mut runs[0]),
        [("ask".to_string(), FlowOutcome::Unmatched)]
    );
    runs[2].on_frame(r#"["answer",{"id":2}]"#, t0); // a number matches its text
    assert_eq!(runs[2].outstanding(), 0);
}

#[test]
fn hostile_frames_never_panic_and_errors_are_classified() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "a"
        emit = "a"
        ack = true
        error = "$.error"
        [[flow.step]]
        name = "b"
        emit = "b"
        ack = true
        capture = { v = "$.v" }
        [[flow.step]]
        name = "c"
        emit = "c"
        ack = true
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    sent(&mut r, t0);
    for junk in ["", "[", "{}", "[1,2", &"[".repeat(10_000), "\u{0}"] {
        r.on_frame(junk, t0);
    }
    r.on_ack(1, r#"[{"error":"no"}]"#, t0);
    sent(&mut r, t0);
    r.on_ack(2, r#"[{"w":1}]"#, t0);
    sent(&mut r, t0);
    r.on_ack(3, "not json", t0);
    let o: Vec<FlowOutcome> = outcomes(&mut r).into_iter().map(|x| x.1).collect();
    assert_eq!(
        o,
        [
            FlowOutcome::ServerError,
            FlowOutcome::BadPath,
            FlowOutcome::BadPath
        ]
    );
    // A too-large captured value is refused.
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "big"
        emit = "big"
        ack = true
        capture = { v = "$" }
        "#,
    );
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    sent(&mut r, t0);
    let big = format!("[\"{}\"]", "x".repeat(MAX_VALUE_BYTES + 1));
    r.on_ack(1, &big, t0);
    assert_eq!(
        outcomes(&mut r),
        [("big".to_string(), FlowOutcome::BadPath)]
    );
}

#[test]
fn a_wait_takes_an_event_that_came_before_it_started() {
    // The server broadcasts the message before it acks the emit: the wait after the emit
    // still gets it.
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "say"
        emit = "say"
        ack = true
        capture = { id = "$.id" }
        [[flow.step]]
        name = "echoed"
        wait = "said"
        where = '$.id == "{id}"'
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    assert_eq!(sent(&mut r, t0), [r#"421["say"]"#]);
    r.on_frame(r#"["said",{"id":9}]"#, t0 + Duration::from_millis(1));
    r.on_ack(1, r#"[{"id":9}]"#, t0 + Duration::from_millis(2));
    assert!(sent(&mut r, t0 + Duration::from_millis(2)).is_empty());
    assert_eq!(
        outcomes(&mut r),
        [
            ("say".to_string(), FlowOutcome::Ok),
            ("echoed".to_string(), FlowOutcome::Ok)
        ]
    );
    assert!(r.finished());
}

#[test]
fn seq_numbers_every_request() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        repeat = 3
          [[flow.step.do]]
          name = "n"
          emit = "n"
          args = '["{seq}"]'
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    assert_eq!(
        sent(&mut r, t0),
        [r#"42["n","1"]"#, r#"42["n","2"]"#, r#"42["n","3"]"#]
    );
}

#[test]
fn a_lost_connection_ends_waits_as_disconnected() {
    let f = flow(
        r#"
        [[flow]]
        [[flow.step]]
        name = "w"
        wait = "*"
        "#,
    );
    let t0 = Instant::now();
    let mut r = FlowRun::new(f, wire(), 0, &[], 1, t0);
    sent(&mut r, t0);
    r.disconnected(t0);
    assert_eq!(
        outcomes(&mut r),
        [("w".to_string(), FlowOutcome::Disconnected)]
    );
    assert!(r.finished());
}
