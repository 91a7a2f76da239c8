//! deploy/kubernetes/, checked offline (no cluster is contacted): every manifest validates
//! against the Kubernetes OpenAPI schemas as written and as kustomized, and the swarm's
//! wiring holds (`interop/k8s-validate.mjs`, run with Node); the same script rejects
//! deliberately broken copies, naming the field; the plan it ships parses as a swarm plan;
//! the image the Dockerfile builds holds every program the manifests run.
//!
//! Node missing: skipped locally, a failure under `CI` (testkit's `node_ready` rule).

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{ScriptRun, node_ready, run_node_script};

const SCRIPT: &str = "k8s-validate.mjs";
const PACKAGES: &[&str] = &["kubernetes-models", "yaml"];
const LIMIT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifests() -> PathBuf {
    repo().join("deploy/kubernetes")
}

fn check(dir: &Path) -> ScriptRun {
    run_node_script(SCRIPT, &[dir.to_str().expect("UTF-8 path")], LIMIT)
}

#[test]
fn the_manifests_pass_the_schemas_and_the_wiring_checks() {
    if !node_ready(
        "the_manifests_pass_the_schemas_and_the_wiring_checks",
        PACKAGES,
    ) {
        return;
    }
    let run = check(&manifests());
    assert!(run.success(), "{}", run.transcript());
    let done = run.done().expect("a done line");
    // coordinator Job + Service, workers Job, PVC + reader Pod, target-server Deployment +
    // Service.
    assert_eq!(done["objects"], 7, "{}", run.transcript());
    assert!(run.stderr.is_empty(), "{}", run.transcript());
}

/// A copy of deploy/kubernetes in a temp dir with `file`'s `from` replaced by `to` (which
/// must be there exactly once).
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(manifests()).expect("deploy/kubernetes") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
    }
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(
        text.matches(from).count(),
        1,
        "{file} holds {from:?} exactly once (the test's break point moved)"
    );
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    dir
}

#[test]
fn broken_manifests_are_rejected_naming_the_field() {
    if !node_ready("broken_manifests_are_rejected_naming_the_field", PACKAGES) {
        return;
    }
    // (file, what is there, what breaks it, what the message must name)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // A schema error: a count written as text.
        (
            "workers.yaml",
            "  completions: 4\n",
            "  completions: four\n",
            &[
                "workers.yaml",
                "Job/swarm-workers",
                "spec.completions",
                "must be integer",
            ],
        ),
        // A schema error in a field the schema constrains to a set of values.
        (
            "coordinator.yaml",
            "      restartPolicy: Never\n",
            "      restartPolicy: Sometimes\n",
            &["coordinator.yaml", "spec.template.spec.restartPolicy"],
        ),
        // Valid to the schema, wrong for the swarm: fewer completions than workers.
        (
            "workers.yaml",
            "  completions: 4\n",
            "  completions: 3\n",
            &["spec.parallelism (4) must equal spec.completions (3)"],
        ),
        // The workers join a Service that does not exist.
        (
            "workers.yaml",
            "swarm-coordinator:7700",
            "swarm-coord:7700",
            &["--join swarm-coord:7700", "no Service named swarm-coord"],
        ),
        // ... or a port the Service does not have.
        (
            "workers.yaml",
            "swarm-coordinator:7700",
            "swarm-coordinator:7701",
            &["Service swarm-coordinator has no port 7701"],
        ),
        // The coordinator waits for a different number of workers.
        (
            "coordinator.yaml",
            "value: \"4\"",
            "value: \"5\"",
            &["--expect-workers (5)", "spec.parallelism (4)"],
        ),
        // The coordinator listens on another port than the Service sends to.
        (
            "coordinator.yaml",
            "0.0.0.0:7700",
            "0.0.0.0:7800",
            &["--listen 0.0.0.0:7800", "targetPort control"],
        ),
        // The kustomization names a file that is not there.
        (
            "kustomization.yaml",
            "  - results.yaml\n",
            "  - result.yaml\n",
            &["resources: result.yaml", "does not exist"],
        ),
        // A knob set to something the schema refuses, caught after the patch is applied.
        (
            "kustomization.yaml",
            "            memory: 128Mi\n",
            "            memory: [lots]\n",
            &["(kustomized)", "resources.requests.memory"],
        ),
        // A patch whose path is not in the resource.
        (
            "kustomization.yaml",
            "path: /spec/parallelism",
            "path: /spec/paralelism/x",
            &["patches[0]", "/spec/paralelism/x does not exist"],
        ),
    ];
    for (file, from, to, needles) in cases {
        let dir = broken_copy(file, from, to);
        let run = check(dir.path());
        assert_eq!(
            run.status.and_then(|s| s.code()),
            Some(1),
            "{file}: {from:?} -> {to:?} must be rejected\n{}",
            run.transcript()
        );
        for needle in *needles {
            assert!(
                run.stderr.contains(needle),
                "{file}: {from:?} -> {to:?}: {needle:?} not in the message\n{}",
                run.transcript()
            );
        }
        assert!(run.done().is_none(), "{}", run.transcript());
    }
}

#[test]
fn the_shipped_plan_is_a_valid_swarm_plan() {
    let text = std::fs::read_to_string(manifests().join("plan.toml")).expect("plan.toml");
    let plan = harness::plan::from_toml(
        &text,
        "kubernetes",
        None,
        &harness::plan::RawOutput::default(),
    )
    .unwrap_or_else(|e| panic!("deploy/kubernetes/plan.toml: {e}"));
    assert_eq!(plan.max_clients(), 20_000);
    // The coordinator's --expect-workers default (4) splits it into shards of 5,000: the
    // per-worker figure the manifests' resources are sized for.
    let coordinator =
        std::fs::read_to_string(manifests().join("coordinator.yaml")).expect("coordinator");
    assert!(coordinator.contains("value: \"4\""), "{coordinator}");
}

#[test]
fn the_image_holds_every_program_the_manifests_run() {
    let dockerfile =
        std::fs::read_to_string(repo().join("deploy/docker/Dockerfile")).expect("Dockerfile");
    let copied = dockerfile
        .lines()
        .find(|l| l.starts_with("COPY --from=build"))
        .expect("the COPY of the binaries");
    for name in ["coordinator.yaml", "workers.yaml", "target-server.yaml"] {
        let text = std::fs::read_to_string(manifests().join(name)).expect(name);
        let commands: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("command: [\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert!(!commands.is_empty(), "{name} names its command");
        for command in commands {
            let program = command
                .strip_prefix("/usr/local/bin/")
                .unwrap_or_else(|| panic!("{name}: {command} is not in /usr/local/bin"));
            assert!(
                copied.contains(&format!("/out/{program}")) && copied.ends_with("/usr/local/bin/"),
                "{name} runs {command}, which the Dockerfile does not copy: {copied}"
            );
        }
    }
}
