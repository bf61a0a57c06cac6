//! `grid-gateway serve` as an operator runs it: it starts on its config file, logs that it
//! listens (JSON logs when `log_format = "json"`), answers, and on SIGTERM stops listening
//! and exits with success.
//! The gateway is its own process; see support/mod.rs.

mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_its_config_and_stops_on_sigterm() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n\
             [auth]\ndomain = \"gw.example\"\n",
            dir.path().join("data").display()
        ),
    )?;
    let mut gateway = Proc::spawn(
        Command::new(binary("grid-gateway"))
            .args(["serve", "--config"])
            .arg(&config),
        &dir.path().join("gateway.log"),
    );
    let url = &format!("http://127.0.0.1:{port}/_grid/healthz");
    eventually("serve to answer /_grid/healthz", move || async move {
        let reply = reqwest::get(url).await.ok()?;
        reply.status().is_success().then_some(())
    })
    .await?;

    let status = gateway.terminate().await?;
    let log = std::fs::read_to_string(&gateway.log)?;
    assert!(status.success(), "serve exited with {status}:\n{log}");
    assert!(
        log.contains(r#""message":"grid-gateway listening""#),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after its exit"
    );
    Ok(())
}
