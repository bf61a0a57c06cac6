//! The `grid-fake-cluster` binary: prints the URL, writes a working kubeconfig, stops on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

#[tokio::test]
async fn the_binary_serves_until_sigterm() {
    grid_fake_cluster::install_rustls_provider();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig_path = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_grid-fake-cluster"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig_path)
        .args([
            "--service-ip",
            "127.0.0.1",
            "--node",
            "cpu=4,memory=8Gi,storage=100Gi,gpu=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut banner = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    stderr.read_line(&mut banner).unwrap();
    assert!(banner.contains("DEVELOPMENT STAND-IN"), "{banner}");

    let kubeconfig = Kubeconfig::read_from(&kubeconfig_path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let nodes = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(nodes.items.len(), 1);
    let allocatable = nodes.items[0]
        .status
        .as_ref()
        .unwrap()
        .allocatable
        .clone()
        .unwrap();
    assert_eq!(allocatable["cpu"].0, "4");
    assert_eq!(allocatable["nvidia.com/gpu"].0, "1");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(code) = child.try_wait().unwrap() {
            exited = Some(code);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the binary did not stop on SIGTERM")
    });
    assert!(code.success(), "{code:?}");
    let port = url.rsplit(':').next().unwrap();
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
}
