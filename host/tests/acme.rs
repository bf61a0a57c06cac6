//! Certificates from ACME against a real CA: Debian's `pebble` (Let's Encrypt's RFC 8555
//! test server), started here on loopback with its own config, validating for real. Its
//! resolver (`-dnsserver`) is a tiny DNS responder run by the test, answering A records
//! for the test names (127.0.0.1, or another address to make a validation fail); pebble's
//! "always valid" shortcut stays off. Pebble connects for HTTP-01 to the gateway's plain
//! port and for TLS-ALPN-01 to its TLS port (both fixed before pebble starts). Clients
//! trust pebble's root only (from its management interface, `/roots/0`).
//!
//! Needs `/usr/bin/pebble` (`apt-get install pebble`; scripts/bootstrap.sh installs it).

mod schema_support;
mod seeded_support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_gateway::proxy::ProxyConfig;
use grid_gateway::store::AppStatus;
use grid_gateway::tls::acme::ChallengeKind;
use grid_gateway::tls::{AcmeConfig, AcmeHostStatus, HstsConfig, TlsConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpStream, UdpSocket};

/// Names → the address the DNS responder answers for them (others: NXDOMAIN).
type Names = Arc<Mutex<HashMap<String, Ipv4Addr>>>;

/// A DNS responder on a UDP loopback port: A records from `names`; AAAA and every other
/// type of a known name get an empty answer.
async fn dns(names: Names) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            if let Some(answer) = answer_query(&buf[..len], &names) {
                let _ = socket.send_to(&answer, peer).await;
            }
        }
    });
    addr
}

fn answer_query(query: &[u8], names: &Names) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    let ip = names.lock().unwrap().get(&name).copied();
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]);
    let rcode = if ip.is_some() { 0 } else { 3 };
    out.extend_from_slice(&[0x81, 0x80 | rcode]);
    let answers: u16 = (ip.is_some() && qtype == 1).into();
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let (Some(ip), 1) = (ip, answers) {
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

/// A free loopback TCP port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pebble, killed on drop.
struct Pebble {
    child: Child,
    directory: String,
    management: u16,
    /// The CA pebble's own HTTPS endpoints are verified with (PEM file).
    wfe_root: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts pebble validating against the gateway's `plain`/`tls` ports, resolving by `dns`,
/// issuing certificates valid for `validity_secs`.
async fn pebble(dir: &Path, dns: SocketAddr, plain: u16, tls: u16, validity_secs: u64) -> Pebble {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let wfe_root = dir.join("wfe-root.pem");
    std::fs::write(&wfe_root, ca.pem()).unwrap();
    std::fs::write(dir.join("wfe.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("wfe.key"), leaf_key.serialize_pem()).unwrap();
    let (listen, management) = (free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.join("wfe.pem"),
        "privateKey": dir.join("wfe.key"),
        "httpPort": plain,
        "tlsPort": tls,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": validity_secs,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let child = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .arg("-dnsserver")
        .arg(dns.to_string())
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_AUTHZREUSE", "0")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env_remove("PEBBLE_VA_ALWAYS_VALID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble (apt-get install pebble)");
    let pebble = Pebble {
        child,
        directory: format!("https://127.0.0.1:{listen}/dir"),
        management,
        wfe_root,
    };
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", listen)).await.is_ok()
            && TcpStream::connect(("127.0.0.1", management)).await.is_ok()
        {
            return pebble;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pebble did not start");
}

fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// GET `path` over HTTPS on `addr` for `sni`, trusting `roots`: status and body.
async fn https_get(
    roots: &rustls::RootCertStore,
    addr: SocketAddr,
    sni: &str,
    path: &str,
) -> Result<(u16, String, CertificateDer<'static>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(client_config(roots.clone()))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", sni)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        leaf,
    ))
}

/// Pebble's issuing root, from its management interface.
async fn pebble_root(pebble: &Pebble) -> rustls::RootCertStore {
    let mut wfe = rustls::RootCertStore::empty();
    wfe.add(CertificateDer::from_pem_file(&pebble.wfe_root).unwrap())
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], pebble.management).into();
    let (status, pem, _) = https_get(&wfe, addr, "127.0.0.1", "/roots/0")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    roots
}

struct Ports {
    plain: u16,
    tls: u16,
}

/// A gateway on fixed ports with `[tls.acme]` for `gw.test` (and app hosts under
/// `apps.test` on demand), its data in `data`.
async fn gateway(
    data: &Path,
    ports: &Ports,
    pebble_dir: &str,
    wfe_root: &Path,
    challenges: Vec<ChallengeKind>,
) -> grid_gateway::server::Running {
    let mut config = seeded_support::config(
        &format!("127.0.0.1:{}", ports.plain),
        data,
        false,
        ProxyConfig::default(),
    );
    config.session.secure = true;
    config.http.workers = 1;
    config.process.apps_domain = Some("apps.test".into());
    config.tls = Some(TlsConfig {
        listen: ([127, 0, 0, 1], ports.tls).into(),
        cert_file: None,
        key_file: None,
        certificates: Vec::new(),
        redirect_http: true,
        plain_health: false,
        hsts: HstsConfig::default(),
        reload_poll_ms: 200,
        acme: Some(AcmeConfig {
            directory_url: pebble_dir.into(),
            contact_email: Some("ops@gw.test".into()),
            ca_root_file: Some(wfe_root.to_owned()),
            hosts: vec!["gw.test".into()],
            on_demand_apps: true,
            max_orders_in_flight: 2,
            challenges,
            check_interval_ms: 100,
            retry_min_ms: 2000,
            retry_max_ms: 60_000,
        }),
    });
    config.validate().unwrap();
    // After a shutdown, the previous node's aborted tasks release the store a moment later.
    for _ in 0..50 {
        match grid_gateway::server::start(config.clone(), grid_gateway::orders::Hooks::default())
            .await
        {
            Ok(running) => return running,
            Err(e) if e.to_string().contains("already open") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the store stayed open")
}

fn status_of(running: &grid_gateway::server::Running, host: &str) -> Option<AcmeHostStatus> {
    running
        .gateway
        .acme
        .as_ref()
        .unwrap()
        .status()
        .into_iter()
        .find(|s| s.host == host)
}

/// Waits (up to 60 s) until `ready` holds.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..600 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

struct Setup {
    dir: tempfile::TempDir,
    names: Names,
    ports: Ports,
    pebble: Pebble,
}

async fn setup(validity_secs: u64, app_available: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let names: Names = Arc::new(Mutex::new(HashMap::new()));
    for name in ["gw.test", "1.apps.test", "2.apps.test"] {
        names
            .lock()
            .unwrap()
            .insert(name.into(), Ipv4Addr::LOCALHOST);
    }
    let dns = dns(names.clone()).await;
    let ports = Ports {
        plain: free_port(),
        tls: free_port(),
    };
    let pebble = pebble(dir.path(), dns, ports.plain, ports.tls, validity_secs).await;
    let data = dir.path().join("data");
    seeded_support::seed(&data, "http://127.0.0.1:9");
    if !app_available {
        let store = grid_gateway::store::Store::open(&data).unwrap();
        let mut app = store.app(seeded_support::ORDER).unwrap().unwrap();
        app.status = AppStatus::Deploying;
        store.put_app(&app).unwrap();
    }
    Setup {
        dir,
        names,
        ports,
        pebble,
    }
}

fn tls_addr(ports: &Ports) -> SocketAddr {
    ([127, 0, 0, 1], ports.tls).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_app_certificates_are_issued_over_http01_only_for_available_apps() {
    let s = setup(3600, false).await;
    let running = gateway(
        &s.dir.path().join("data"),
        &s.ports,
        &s.pebble.directory,
        &s.pebble.wfe_root,
        vec![ChallengeKind::Http01],
    )
    .await;
    let roots = pebble_root(&s.pebble).await;
    until("gw.test's certificate", || {
        status_of(&running, "gw.test").is_some_and(|s| s.serving)
    })
    .await;
    let (status, body, _) = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/healthz")
        .await
        .expect("gw.test is served with a certificate from pebble");
    assert_eq!(status, 200, "{body}");
    // The challenge path stays on the plain listener (no redirect); an unknown token is 404.
    let plain = TcpStream::connect(("127.0.0.1", s.ports.plain))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(plain))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            http::Request::get("/.well-known/acme-challenge/unknown-token")
                .header("host", "gw.test")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("not_found"));
    let gw = status_of(&running, "gw.test").unwrap();
    assert!(gw.not_after.unwrap() > gw.renew_at.unwrap());
    assert_eq!(gw.failures, 0);

    // The app is not available: no order for its host, nor for a host with no app.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(status_of(&running, "1.apps.test").is_none());
    assert!(
        https_get(&roots, tls_addr(&s.ports), "1.apps.test", "/")
            .await
            .is_err(),
        "no certificate for an app that is not available"
    );

    // The app becomes available: its host gets a certificate; an unknown host still none.
    let store = &running.gateway.store;
    let mut app = store.app(seeded_support::ORDER).unwrap().unwrap();
    app.status = AppStatus::Available;
    store.put_app(&app).unwrap();
    running.gateway.apps.refresh_routes().unwrap();
    running.gateway.acme.as_ref().unwrap().wake();
    until("1.apps.test's certificate", || {
        status_of(&running, "1.apps.test").is_some_and(|s| s.serving)
    })
    .await;
    let tcp = TcpStream::connect(tls_addr(&s.ports)).await.unwrap();
    tokio_rustls::TlsConnector::from(client_config(roots.clone()))
        .connect(ServerName::try_from("1.apps.test").unwrap(), tcp)
        .await
        .expect("the app host's certificate verifies against pebble's root");
    assert!(
        https_get(&roots, tls_addr(&s.ports), "2.apps.test", "/")
            .await
            .is_err()
    );
    assert!(status_of(&running, "2.apps.test").is_none());
    let metrics = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/metrics")
        .await
        .unwrap()
        .1;
    assert!(
        metrics.contains("grid_tls_acme_certificates_issued_total 2"),
        "{metrics}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_certificates_renew_without_a_dropped_request_and_failures_back_off() {
    // Valid 15 s: renewed after 10 s.
    let s = setup(15, true).await;
    let running = gateway(
        &s.dir.path().join("data"),
        &s.ports,
        &s.pebble.directory,
        &s.pebble.wfe_root,
        vec![ChallengeKind::TlsAlpn01],
    )
    .await;
    let roots = pebble_root(&s.pebble).await;
    until("gw.test's certificate", || {
        status_of(&running, "gw.test").is_some_and(|s| s.serving)
    })
    .await;
    let (_, _, first) = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/healthz")
        .await
        .unwrap();
    // Requests on new connections, back to back, until the renewed certificate is served.
    let mut served = 0;
    let renewed = loop {
        let (status, body, leaf) =
            https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/healthz")
                .await
                .expect("no request fails across the renewal");
        assert_eq!(status, 200, "{body}");
        served += 1;
        if leaf != first {
            break leaf;
        }
        assert!(served < 100_000, "no renewal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status_of(&running, "gw.test").unwrap().failures, 0);

    // Validation now fails (the name points elsewhere): the order fails, is retried after a
    // back-off, and the last good certificate keeps serving.
    s.names
        .lock()
        .unwrap()
        .insert("gw.test".into(), Ipv4Addr::new(127, 0, 0, 2));
    until("a failed renewal", || {
        status_of(&running, "gw.test").is_some_and(|s| s.failures >= 1)
    })
    .await;
    let failed = status_of(&running, "gw.test").unwrap();
    assert!(failed.serving);
    assert!(failed.last_error.is_some());
    assert!(failed.retry_at.unwrap() > failed.renew_at.unwrap());
    let (status, _, leaf) = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/healthz")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(leaf, renewed, "the last good certificate keeps serving");
    let node = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/v1/node")
        .await
        .unwrap()
        .1;
    let node: serde_json::Value = serde_json::from_str(&node).unwrap();
    schema_support::assert_documented("/_grid/v1/node", "get", 200, &node);
    let shown = node["acme"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "gw.test")
        .unwrap()
        .clone();
    assert!(shown["failures"].as_u64().unwrap() >= 1, "{shown}");
    assert!(shown["last_error"].is_string(), "{shown}");
    assert_eq!(shown["serving"], true);
    let node = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/metrics")
        .await
        .unwrap()
        .1;
    assert!(
        node.contains("grid_tls_acme_order_failures_total{host=\"gw.test\"}"),
        "{node}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_serves_stored_certificates_without_contacting_the_ca() {
    let mut s = setup(3600, true).await;
    let data = s.dir.path().join("data");
    let running = gateway(
        &data,
        &s.ports,
        &s.pebble.directory,
        &s.pebble.wfe_root,
        vec![ChallengeKind::TlsAlpn01, ChallengeKind::Http01],
    )
    .await;
    let roots = pebble_root(&s.pebble).await;
    until("both certificates", || {
        ["gw.test", "1.apps.test"]
            .iter()
            .all(|h| status_of(&running, h).is_some_and(|s| s.serving))
    })
    .await;
    let (_, _, before) = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/healthz")
        .await
        .unwrap();
    running.shutdown().await.unwrap();

    // The CA is gone: any contact would fail and show as a failure.
    let _ = s.pebble.child.kill();
    let _ = s.pebble.child.wait();
    let running = gateway(
        &data,
        &s.ports,
        &s.pebble.directory,
        &s.pebble.wfe_root,
        vec![ChallengeKind::TlsAlpn01],
    )
    .await;
    let (status, _, after) = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/healthz")
        .await
        .expect("the stored certificate is served at once");
    assert_eq!(status, 200);
    assert_eq!(after, before);
    until("the app host's stored certificate", || {
        status_of(&running, "1.apps.test").is_some_and(|s| s.serving)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for status in running.gateway.acme.as_ref().unwrap().status() {
        assert_eq!(status.failures, 0, "{status:?}");
        assert!(status.serving, "{status:?}");
    }
    let metrics = https_get(&roots, tls_addr(&s.ports), "gw.test", "/_grid/metrics")
        .await
        .unwrap()
        .1;
    assert!(
        metrics.contains("grid_tls_acme_certificates_issued_total 0"),
        "{metrics}"
    );
    running.shutdown().await.unwrap();
}
