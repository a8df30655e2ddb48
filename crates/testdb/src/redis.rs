//! A Redis server of a test's own, for faults: the shared one on
//! 127.0.0.1:6379 must never be stopped or flushed (other tests use it).

/// A Redis of this test's own on a free port (the shared one must never be
/// stopped): killed and started again by the test, killed when dropped.
pub struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// A new one, or `None` (said on stderr) where `redis-server` is not
    /// installed; under `CI` that is a failure.
    ///
    /// # Panics
    /// When it cannot be started: tests want the reason loudly.
    pub fn start() -> Option<Self> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(std::env::var_os("CI").is_none(), "CI needs redis-server");
            eprintln!("skipped: no redis-server here");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.up();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty), and waits until it accepts connections.
    ///
    /// # Panics
    /// When it does not.
    pub fn up(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        // Bounded wait for the child to accept connections: nothing to
        // await but the port.
        let ready = (0..200).any(|_| {
            let up = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if !up {
                #[expect(
                    clippy::disallowed_methods,
                    reason = "polling a child process's port, bounded to two seconds"
                )]
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            up
        });
        assert!(ready, "redis-server did not start");
    }

    /// Kills it.
    ///
    /// # Panics
    /// When the process cannot be killed.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("redis-server is killed");
            child.wait().expect("redis-server is reaped");
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.down();
    }
}
