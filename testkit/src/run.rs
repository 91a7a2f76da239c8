//! The end-to-end scaffold of the swarm's tests, written once: a reference server, a temp
//! dir, a `swarm` command line with `--quiet --out <dir>`, the run, its parsed results.
//!
//! testkit does not depend on `harness` (harness's tests depend on testkit): the caller says
//! how a command line runs through [`Swarm`] (in-process in harness's tests), and a test
//! that runs the binary passes `env!("CARGO_BIN_EXE_swarm")` itself.
//!
//! Must not: write outside the temp dir it owns, or leave the server running (both go when
//! the [`EmbeddedRun`] drops).

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use target_server::Config;

use crate::server::Target;

/// How a test crate runs one `swarm` command line (argv[0] included).
pub trait Swarm {
    /// What a finished run gives the test.
    type Finished;
    fn run(argv: Vec<String>) -> impl Future<Output = Self::Finished>;
}

/// `swarm ARGS... --quiet --out OUT` as an argv.
pub fn swarm_argv(args: &[&str], out: &Path) -> Vec<String> {
    let mut argv: Vec<String> = std::iter::once("swarm")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    argv.extend([
        "--quiet".to_string(),
        "--out".to_string(),
        out.display().to_string(),
    ]);
    argv
}

/// A reference server and a temp dir for one test's swarm runs.
pub struct EmbeddedRun<S> {
    pub server: Target,
    dir: tempfile::TempDir,
    swarm: PhantomData<S>,
}

impl<S: Swarm> EmbeddedRun<S> {
    /// Starts `config` on 127.0.0.1:0 and makes the temp dir.
    pub fn start(config: Config) -> Self {
        Self::start_with(|_| config)
    }

    /// Makes the temp dir first and starts the server `config(dir)` gives (e.g. a TLS
    /// config whose certificate files it writes there).
    pub fn start_with(config: impl FnOnce(&Path) -> Config) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Target::start(config(dir.path()));
        EmbeddedRun {
            server,
            dir,
            swarm: PhantomData,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The temp dir (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `swarm ARGS... --quiet --out <dir>`.
    pub async fn run(&self, args: &[&str]) -> S::Finished {
        S::run(swarm_argv(args, self.dir.path())).await
    }

    /// Runs `swarm ARGS... --quiet --out <dir>/SUB` (several runs in one test).
    pub async fn run_in(&self, sub: &str, args: &[&str]) -> S::Finished {
        S::run(swarm_argv(args, &self.out(sub))).await
    }

    /// `<dir>/SUB`.
    pub fn out(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_ends_with_quiet_and_the_out_dir() {
        let argv = swarm_argv(&["echo", "ws://x/ws/echo"], Path::new("/tmp/o"));
        assert_eq!(
            argv,
            [
                "swarm",
                "echo",
                "ws://x/ws/echo",
                "--quiet",
                "--out",
                "/tmp/o"
            ]
        );
    }

    struct Echoes;

    impl Swarm for Echoes {
        type Finished = Vec<String>;
        async fn run(argv: Vec<String>) -> Vec<String> {
            argv
        }
    }

    #[tokio::test]
    async fn runs_go_to_the_temp_dir_or_a_folder_in_it() {
        let e = EmbeddedRun::<Echoes>::start(Config::default());
        let argv = e.run(&["connect"]).await;
        assert_eq!(argv.last().map(String::as_str), e.dir().to_str());
        let argv = e.run_in("b1", &["connect"]).await;
        assert_eq!(Path::new(argv.last().unwrap()), e.dir().join("b1"));
        // The server listens on loopback.
        assert!(e.addr().ip().is_loopback());
        std::net::TcpStream::connect(e.addr()).expect("server accepts");
    }
}
