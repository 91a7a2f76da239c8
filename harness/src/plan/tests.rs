//! Plan validation: the default and example plans, every error at once, ramps, URLs.

use super::*;

fn toml_plan(text: &str) -> Result<Plan, PlanError> {
    from_toml(text, "t", None, &OutputArgs::default())
}

#[test]
fn default_plan_is_valid_and_small() {
    let plan = toml_plan(DEFAULT_PLAN).unwrap();
    assert!(plan.max_clients() <= 2000);
    let total = plan.total().as_secs();
    assert!((40..=90).contains(&total), "default plan lasts {total}s");
    assert!(plan.phases.iter().any(|p| p.scenario == Scenario::Echo));
    assert!(plan.target.endpoint.is_none());
}

#[test]
fn example_plan_is_valid() {
    let text = include_str!("../../plans/example.toml");
    let plan = toml_plan(text).unwrap();
    assert!(plan.phases.len() >= 3);
}

#[test]
fn reports_every_error_at_once() {
    let err = toml_plan(
        r#"
        url = "ftp://x"
        auth = "[1]"
        [[phase]]
        name = "a"
        scenario = "echo"
        clients = 10
        duration = "soon"
        payload-size = 10
        [[phase]]
        name = "a"
        clients = "3k"
        duration = "1s"
        connect-rate = "5/s"
        ramp = "1s"
        "#,
    )
    .unwrap_err();
    let PlanError::Invalid(errors) = err else {
        panic!("not invalid")
    };
    let all = errors.join("\n");
    for needle in [
        "scheme",
        "auth",
        "duration",
        "payload-size",
        "used twice",
        "not both",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

#[test]
fn unknown_keys_are_errors() {
    assert!(toml_plan("clientz = 3\n[[phase]]\nclients=1\nduration=\"1s\"").is_err());
}

#[test]
fn ramps_from_rate_and_new_clients_only() {
    let plan = toml_plan(
        r#"
        [[phase]]
        name = "up"
        clients = 100
        connect-rate = "50/s"
        duration = "1s"
        [[phase]]
        name = "more"
        clients = 150
        connect-rate = "10/s"
        duration = "1s"
        "#,
    )
    .unwrap();
    assert_eq!(plan.phases[0].ramp, Duration::from_secs(2));
    assert_eq!(plan.phases[1].ramp, Duration::from_secs(5));
    assert_eq!(plan.total(), Duration::from_secs(9));
}

#[test]
fn url_decides_protocol() {
    let (e, p) = Endpoint::parse("wss://example.test:8443/ws/echo?x=1").unwrap();
    assert_eq!(p, Protocol::Ws);
    assert!(e.tls);
    assert_eq!(
        (e.port, e.path.as_str(), e.query.as_deref()),
        (8443, "/ws/echo", Some("x=1"))
    );
    let (e, p) = Endpoint::parse("http://127.0.0.1:3000").unwrap();
    assert_eq!(p, Protocol::Socketio);
    assert_eq!(e.path, "/");
}
