//! `grid-fake-cluster`: runs the fake Kubernetes API server until SIGINT/SIGTERM.
//! A DEVELOPMENT STAND-IN, not a cluster: nothing is scheduled or run.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use grid_fake_cluster::{FakeCluster, FakeNode, FakeOptions};

const HELP: &str = "\
grid-fake-cluster - a DEVELOPMENT STAND-IN for a Kubernetes API server. NOT A CLUSTER:
nothing is scheduled or run, objects live in memory and vanish on exit, there is no
authentication. Deployments and StatefulSets are reported available at once, Services get
a cluster IP, pod logs are invented lines. Use it to run grid-gateway locally or in tests.

USAGE:
    grid-fake-cluster --kubeconfig PATH [OPTIONS]

OPTIONS:
    --listen ADDR          address to serve on (default 127.0.0.1:0, a free port)
    --kubeconfig PATH      write a kubeconfig for the server here (required)
    --service-ip IP        give every Service (and Pod) this IP, e.g. 127.0.0.1 so the
                           gateway's entrances reach apps you run on loopback
                           (default: 10.96.0.1, 10.96.0.2, ... which reach nothing)
    --node SPEC            seed a node; SPEC is cpu=8,memory=32Gi,storage=500Gi,gpu=0
                           (every key optional, name=... too); repeat for more nodes
                           (default: one node with the values above)
    --controller-delay-ms N  report workloads available N ms after each change (default 0)
    -h, --help             this text

Prints the server URL on stdout, then serves until SIGINT or SIGTERM.
";

struct Args {
    options: FakeOptions,
    kubeconfig: PathBuf,
}

fn parse_node(spec: &str, index: usize) -> Result<FakeNode, String> {
    let mut node = FakeNode::named(format!("fake-node-{index}"));
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("--node: expected key=value, got {part:?}"))?;
        match key {
            "name" => node.name = value.to_string(),
            "cpu" => node.cpu = value.to_string(),
            "memory" => node.memory = value.to_string(),
            "storage" | "ephemeral-storage" => node.ephemeral_storage = value.to_string(),
            "gpu" => {
                node.gpu = value
                    .parse()
                    .map_err(|_| format!("--node: gpu must be a whole number, got {value:?}"))?;
            }
            other => {
                return Err(format!(
                    "--node: unknown key {other:?} (cpu, memory, storage, gpu, name)"
                ));
            }
        }
    }
    Ok(node)
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut options = FakeOptions::default();
    let mut nodes = Vec::new();
    let mut kubeconfig = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("--listen")?;
                options.listen = v
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--service-ip" => {
                let v = value("--service-ip")?;
                options.service_ip = Some(
                    v.parse::<IpAddr>()
                        .map_err(|e| format!("--service-ip {v:?}: {e}"))?,
                );
            }
            "--node" => {
                let v = value("--node")?;
                nodes.push(parse_node(&v, nodes.len())?);
            }
            "--controller-delay-ms" => {
                let v = value("--controller-delay-ms")?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--controller-delay-ms: not a number: {v:?}"))?;
                options.controller_delay = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if !nodes.is_empty() {
        options.nodes = nodes;
    }
    let kubeconfig = kubeconfig.ok_or("--kubeconfig PATH is required (see --help)")?;
    Ok(Some(Args {
        options,
        kubeconfig,
    }))
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("grid-fake-cluster: {e}");
            return ExitCode::from(2);
        }
    };
    let non_loopback = !args.options.listen.ip().is_loopback();
    let cluster = match FakeCluster::start(args.options).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grid-fake-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = cluster.write_kubeconfig(&args.kubeconfig) {
        eprintln!(
            "grid-fake-cluster: cannot write the kubeconfig {}: {e}",
            args.kubeconfig.display()
        );
        return ExitCode::FAILURE;
    }
    println!("{}", cluster.url());
    eprintln!(
        "grid-fake-cluster: DEVELOPMENT STAND-IN for a Kubernetes API server, NOT A CLUSTER \
         (nothing runs; state is in memory) serving at {} ; kubeconfig written to {}",
        cluster.url(),
        args.kubeconfig.display()
    );
    if non_loopback {
        eprintln!(
            "grid-fake-cluster: warning: listening beyond loopback, and there is no authentication"
        );
    }
    terminated().await;
    cluster.shutdown().await;
    eprintln!("grid-fake-cluster: stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_the_documented_flags() {
        let a = args(&[
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig",
            "/tmp/k",
            "--service-ip",
            "127.0.0.1",
            "--node",
            "cpu=8,memory=32Gi,storage=500Gi,gpu=0",
            "--node",
            "gpu=2,name=gpu-box",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.kubeconfig, PathBuf::from("/tmp/k"));
        assert_eq!(a.options.service_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(a.options.nodes.len(), 2);
        assert_eq!(a.options.nodes[0].name, "fake-node-0");
        assert_eq!(a.options.nodes[1].name, "gpu-box");
        assert_eq!(a.options.nodes[1].gpu, 2);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--listen", "127.0.0.1:0"]).is_err());
        assert!(args(&["--kubeconfig", "k", "--node", "disk=1"]).is_err());
    }
}
