//! A real OCI registry on loopback for the tests: Debian's `docker-registry` (the CNCF
//! distribution server), its storage in a temporary directory, with or without htpasswd
//! authentication. Stopped when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary (`apt-get install docker-registry`).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub const USER: &str = "grid";
pub const PASSWORD: &str = "s3cret-pass";

pub struct TestRegistry {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
    pub authenticated: bool,
}

impl TestRegistry {
    /// A registry without authentication.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A registry requiring [`USER`] / [`PASSWORD`] (htpasswd, bcrypt).
    pub fn start_with_auth() -> Self {
        Self::launch(true)
    }

    fn launch(authenticated: bool) -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install -y docker-registry (scripts/bootstrap.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if authenticated {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (apt-get install -y apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(&htpasswd, out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: grid\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = TestRegistry {
            child,
            dir,
            host,
            authenticated,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                let _ = write!(
                    stream,
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.host
                );
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 401") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where the registry keeps the blob (layer or manifest) with this digest.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `host/repo:tag`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
