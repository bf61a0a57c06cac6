//! `deploy/gateway.example.toml` stays honest: it loads through the real loader, it names
//! every key the config structs have, and what it shows as a default is the default.
//!
//! The example's conventions, which these tests rely on:
//! - `key = value`: set (the required keys, and the few a deployment sets);
//! - `#key = value` and `#[table]` (no space after `#`): a setting left at its default,
//!   showing the default (or an example value for a key whose default is "unset");
//! - `# text` (a space after `#`): prose.
//!
//! Uncommenting every `#key` line must give a file that still parses as a `Config` (so no
//! commented key is misspelt), and every key path of a `Config` with every section present
//! must be in that file.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use grid_gateway::config::Config;

use super::{CONFIG_MAP, config_map_toml, read, repo_file};

const EXAMPLE: &str = "deploy/gateway.example.toml";

/// A commented-out setting or table header: `#` directly followed by a key or `[`.
fn is_commented_setting(line: &str) -> bool {
    line.strip_prefix('#')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c == '[' || c == '_' || c.is_ascii_lowercase())
}

/// The example with every commented-out setting uncommented.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| {
            if is_commented_setting(line) {
                &line[1..]
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A config with every optional section present and at its defaults, as JSON: `null`
/// stands for an optional key that is unset by default, so it is still listed.
fn full_default_config() -> serde_json::Value {
    let mut config = Config::from_toml(
        "[auth]\ndomain = \"gateway.example\"\n",
        Path::new("minimal.toml"),
        std::iter::empty(),
    )
    .expect("the minimal config loads");
    config.chain = Some(grid_chain::ChainConfig::new(
        "https://rpc.example",
        Default::default(),
        1,
    ));
    config.cluster = Some(Default::default());
    config.tls = Some(
        toml::from_str(
            "listen = \"0.0.0.0:8443\"\n[acme]\ndirectory_url = \"https://acme-v02.api.letsencrypt.org/directory\"",
        )
        .expect("a [tls] table with [tls.acme]"),
    );
    serde_json::to_value(&config).expect("a Config serializes")
}

/// Every key path of `value` (`["cluster", "fetch", "max_bytes"]`); objects are walked into,
/// everything else (and an empty object) is a leaf. A map's entries (the default pod labels)
/// are walked into too: the example shows them as the default.
fn key_paths(value: &serde_json::Value) -> Vec<Vec<String>> {
    fn walk(prefix: &mut Vec<String>, value: &serde_json::Value, out: &mut Vec<Vec<String>>) {
        match value {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (key, value) in map {
                    prefix.push(key.clone());
                    walk(prefix, value, out);
                    prefix.pop();
                }
            }
            _ => out.push(prefix.clone()),
        }
    }
    let mut out = Vec::new();
    walk(&mut Vec::new(), value, &mut out);
    out
}

fn lookup<'a, S: AsRef<str>>(
    value: &'a serde_json::Value,
    path: &[S],
) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |v, key| v.get(key.as_ref()))
}

#[test]
fn the_example_loads_through_the_config_loader() {
    let path = repo_file(EXAMPLE);
    let config = Config::load(&path, std::iter::empty()).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.chain.is_some(), "the example configures [chain]");
    assert!(config.cluster.is_some(), "the example configures [cluster]");
}

#[test]
fn config_check_accepts_the_example_with_a_wallet() {
    // The example's key file lives in /etc; point the chain at a test key instead, the way
    // the systemd unit points it at its credential.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("wallet.key");
    // anvil's first default account: a well-known test key, never a real one.
    std::fs::write(
        &key,
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(["config", "check", "--config"])
        .arg(repo_file(EXAMPLE))
        .env("GRID_GATEWAY__CHAIN__KEY_FILE", &key)
        .env("GRID_GATEWAY__DATA_DIR", dir.path())
        .output()
        .expect("run grid-gateway");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "config check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        "{stdout}"
    );
}

#[test]
fn every_commented_setting_is_a_real_key() {
    let text = uncommented(&read(EXAMPLE));
    let table: toml::Table = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("{EXAMPLE} with its settings uncommented: {e}"));
    // Deserialization only: alternatives (key_file / keystore) may not be valid together.
    let _: Config = toml::Value::Table(table)
        .try_into()
        .unwrap_or_else(|e| panic!("{EXAMPLE} with its settings uncommented: {e}"));
}

#[test]
fn the_example_names_every_key_of_the_config() {
    let example: toml::Table = toml::from_str(&uncommented(&read(EXAMPLE))).unwrap();
    let example = serde_json::to_value(&example).unwrap();
    let missing: Vec<String> = key_paths(&full_default_config())
        .into_iter()
        .filter(|path| lookup(&example, path).is_none())
        .map(|path| path.join("."))
        .collect();
    assert!(
        missing.is_empty(),
        "{EXAMPLE} does not mention these keys (add each with its default, unit and why one \
         would change it):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn commented_settings_show_the_default() {
    let defaults = full_default_config();
    let text = read(EXAMPLE);
    let mut table: Vec<String> = Vec::new();
    let mut wrong = Vec::new();
    let mut checked = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let setting = line
            .strip_prefix('#')
            .filter(|_| is_commented_setting(line));
        let header = setting.unwrap_or(line).trim();
        if let Some(name) = header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            table = name.split('.').map(|k| k.trim().to_owned()).collect();
            continue;
        }
        let Some(setting) = setting else { continue };
        let parsed: toml::Table = toml::from_str(setting)
            .unwrap_or_else(|e| panic!("{EXAMPLE}:{line_no}: {setting:?} is not TOML: {e}"));
        for (key, value) in parsed {
            let mut path = table.clone();
            path.push(key);
            let path_text = path.join(".");
            let Some(default) = lookup(&defaults, &path) else {
                wrong.push(format!("{EXAMPLE}:{line_no}: {path_text} is not a key"));
                continue;
            };
            let shown = serde_json::to_value(&value).unwrap();
            // A key unset by default shows an example value.
            if !default.is_null() && *default != shown {
                wrong.push(format!(
                    "{EXAMPLE}:{line_no}: {path_text} shows {shown}, the default is {default}"
                ));
            }
            checked.insert(path_text);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked.len() > 50, "only {} settings found", checked.len());
}

#[test]
fn no_setting_hides_under_a_commented_table() {
    // `#[cluster.fetch]` followed by `max_bytes = 1` would set `max_bytes` in the table
    // above it: an uncommented key needs an uncommented header.
    let mut commented_header: Option<(usize, &str)> = None;
    for (n, line) in read(EXAMPLE).lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            commented_header = None;
        } else if line.starts_with("#[") {
            commented_header = Some((n + 1, line));
        } else if !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && let Some((at, header)) = commented_header
        {
            panic!(
                "{EXAMPLE}:{}: {trimmed:?} is set under the commented {header:?} (line {at}): \
                 uncomment the header or comment the key",
                n + 1
            );
        }
    }
}

#[test]
fn the_config_map_loads_through_the_config_loader() {
    let mut table: toml::Table = toml::from_str(&config_map_toml()).unwrap();
    // The policy directory is a volume of the pod; here a temporary directory stands in.
    let policies = tempfile::tempdir().unwrap();
    let policy = table
        .get_mut("policy")
        .and_then(toml::Value::as_table_mut)
        .expect("the ConfigMap's gateway.toml has [policy]");
    policy.insert(
        "dir".into(),
        toml::Value::String(policies.path().display().to_string()),
    );
    let config = Config::from_toml(
        &table.to_string(),
        Path::new(CONFIG_MAP),
        std::iter::empty(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cluster = config.cluster.expect("the ConfigMap configures [cluster]");
    assert_eq!(
        cluster.sandbox.gateway_namespace, "grid-system",
        "deploy/gateway.yaml runs the gateway in grid-system"
    );
}
