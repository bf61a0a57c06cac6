//! `grid-gateway policy new`: what it writes for each language and world, where the SDK
//! comes from, and what it refuses. That each project builds and passes its fixtures is
//! `scripts/policy-new-check.sh`'s job (it needs the wasm, npm and Python toolchains).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use grid_gateway::cli::scaffold::{Lang, NewOptions, SdkSource, new_project};
use grid_gateway::policy::World;
use grid_policy_sdk::fixture;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grid-gateway"))
        .args(args)
        .output()
        .expect("run grid-gateway")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// No placeholder is left in any file, and every fixture is one of `world`'s.
fn assert_complete(dir: &Path, world: &str) {
    let mut fixtures = 0;
    for file in files_under(dir) {
        let text = read(&dir.join(&file));
        assert!(
            !text.contains("{{"),
            "{file} keeps a placeholder: {}",
            text.lines().find(|l| l.contains("{{")).unwrap_or_default()
        );
        if file.starts_with("fixtures/") && file != "fixtures/settings.json" {
            let f = fixture::read_file(&dir.join(&file)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.call.world(), world, "{file}");
            assert!(f.expect.is_some(), "{file} has no expect");
            fixtures += 1;
        }
    }
    assert!(
        fixtures >= 3,
        "only {fixtures} fixtures in {}",
        dir.display()
    );
    serde_json::from_str::<serde_json::Value>(&read(&dir.join("fixtures/settings.json")))
        .expect("settings.json is JSON");
}

#[test]
fn rust_projects_for_each_world_name_the_policy_everywhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    for world in ["pricing", "payee", "authorization"] {
        let name = format!("acme-{world}-policy");
        let dir = tmp.path().join(&name);
        let out = gateway(&[
            "policy",
            "new",
            "--lang",
            "rust",
            "--world",
            world,
            &name,
            "--dir",
            dir.to_str().expect("utf-8"),
            "--sdk-path",
            repo.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files = files_under(&dir);
        for expected in [
            ".gitignore",
            "Cargo.lock",
            "Cargo.toml",
            "README.md",
            "fixtures/settings.json",
            "src/lib.rs",
        ] {
            assert!(files.contains(&expected.to_owned()), "{world}: {files:?}");
        }
        assert_complete(&dir, world);

        let crate_name = name.replace('-', "_");
        let manifest = read(&dir.join("Cargo.toml"));
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{manifest}"
        );
        // Outside the checkout: the SDK by its absolute path, which exists.
        let sdk = repo.join("guest-sdk");
        assert!(
            manifest.contains(&format!(
                "grid-policy-sdk = {{ path = \"{}\"",
                sdk.display()
            )),
            "{manifest}"
        );
        let lib = read(&dir.join("src/lib.rs"));
        assert!(lib.starts_with(&format!("//! `{name}`: ")), "{lib}");
        assert!(lib.contains(&format!("grid_policy_sdk::export_{world}!(Settings);")));
        let readme = read(&dir.join("README.md"));
        assert!(readme.starts_with(&format!("# {name}\n")));
        assert!(readme.contains(&format!("release/{crate_name}.wasm")));
        assert!(readme.contains(&format!("--world {world} --policy")));
        assert!(readme.contains(&format!("$P/{world}.settings.json")));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("the SDK by path: {}", sdk.display())));
    }
}

#[test]
fn typescript_and_python_projects_name_the_policy_everywhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = |lang, world, name: &str| NewOptions {
        lang,
        world,
        name: name.to_owned(),
        dir: Some(tmp.path().join(name)),
        sdk_path: Some(repo()),
        fallback_checkout: None,
    };

    let ts = new_project(&options(
        Lang::TypeScript,
        World::Authorization,
        "edge-authz",
    ))
    .expect("typescript project");
    assert_complete(&ts.dir, "authorization");
    let package: serde_json::Value =
        serde_json::from_str(&read(&ts.dir.join("package.json"))).expect("package.json");
    assert_eq!(package["name"], "edge-authz");
    let sdk = repo().join("sdk/typescript");
    assert_eq!(
        package["dependencies"]["@grid/policy-sdk"],
        format!("file:{}", sdk.display())
    );
    assert!(
        package["scripts"]["componentize"]
            .as_str()
            .is_some_and(
                |s| s.contains("--world authorization") && s.ends_with("build/edge-authz.wasm")
            )
    );
    let component = read(&ts.dir.join("src/component.ts"));
    assert!(component.contains(
        "export const { validateSettings, authorizeSession, authorizeRequest } = authorizationExports(policy, host);"
    ));
    assert!(read(&ts.dir.join("test/policy.test.ts")).contains("fixture.runAuthorization"));

    let py =
        new_project(&options(Lang::Python, World::Pricing, "eu-pricing")).expect("python project");
    assert_complete(&py.dir, "pricing");
    assert!(py.dir.join("eu_pricing.py").is_file());
    assert!(read(&py.dir.join("test_eu_pricing.py")).contains("from eu_pricing import Settings"));
    assert!(read(&py.dir.join("pyproject.toml")).contains(&format!(
        "pythonpath = [\".\", \"{}\"]",
        repo().join("sdk/python").display()
    )));
    let readme = read(&py.dir.join("README.md"));
    assert!(readme.contains(&format!("-d {} -w pricing", repo().join("wit").display())));
    assert!(readme.contains("-o build/eu_pricing.wasm eu_pricing"));
}

#[test]
fn inside_a_checkout_the_sdk_is_a_relative_path() {
    let inside = tempfile::Builder::new()
        .prefix(".policy-new-test-")
        .tempdir_in(repo())
        .expect("tempdir in the checkout");
    let made = new_project(&NewOptions {
        lang: Lang::Rust,
        world: World::Pricing,
        name: "nested".into(),
        dir: Some(inside.path().join("policies/nested")),
        sdk_path: None,
        fallback_checkout: None,
    })
    .expect("project");
    assert_eq!(made.sdk, SdkSource::Path("../../../guest-sdk".into()));
    assert!(read(&made.dir.join("Cargo.toml")).contains(r#"path = "../../../guest-sdk""#));
    assert!(made.dir.join("../../../guest-sdk/Cargo.toml").is_file());
}

#[test]
fn without_a_checkout_rust_uses_the_registry_and_the_others_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = |lang, name: &str| NewOptions {
        lang,
        world: World::Payee,
        name: name.to_owned(),
        dir: Some(tmp.path().join(name)),
        sdk_path: None,
        fallback_checkout: None,
    };
    let rust = new_project(&options(Lang::Rust, "standalone")).expect("rust project");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(rust.sdk, SdkSource::Registry(version.into()));
    let manifest = read(&rust.dir.join("Cargo.toml"));
    assert!(
        manifest.contains(&format!(
            r#"grid-policy-sdk = {{ version = "={version}", features = ["guest"] }}"#
        )),
        "{manifest}"
    );
    assert!(!rust.dir.join("Cargo.lock").exists());
    assert_complete(&rust.dir, "payee");

    for lang in [Lang::TypeScript, Lang::Python] {
        let err = new_project(&options(lang, "orphan")).expect_err("no SDK to point at");
        assert_eq!(err.code(), "sdk_not_found");
        assert!(err.to_string().contains("--sdk-path"), "{err}");
        assert!(!tmp.path().join("orphan").exists(), "nothing is written");
    }
}

#[test]
fn bad_names_non_empty_directories_and_bad_sdk_paths_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let new = |name: &str, extra: &[&str]| {
        let target = dir(name);
        let mut args = vec![
            "policy", "new", "--lang", "rust", "--world", "pricing", name, "--dir", &target,
        ];
        args.extend_from_slice(extra);
        gateway(&args)
    };

    for bad in [
        "My-Policy",
        "my_policy",
        "9lives",
        "trailing-",
        "grid-policy-sdk",
    ] {
        let out = new(bad, &[]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("bad_name: {bad:?} cannot name a policy")),
            "{err}"
        );
        assert!(!Path::new(&dir(bad)).exists(), "{bad}: nothing is written");
    }

    let taken = tmp.path().join("taken");
    std::fs::create_dir(&taken).expect("mkdir");
    std::fs::write(taken.join("notes.txt"), "mine").expect("write");
    let out = new("taken", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("directory_not_empty:"), "{err}");
    assert_eq!(files_under(&taken), ["notes.txt"]);
    assert_eq!(read(&taken.join("notes.txt")), "mine");

    // An empty directory is fine.
    std::fs::create_dir(tmp.path().join("empty")).expect("mkdir");
    assert!(new("empty", &[]).status.success());

    let not_a_checkout = tmp.path().to_string_lossy().into_owned();
    let out = new("elsewhere", &["--sdk-path", &not_a_checkout]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad_sdk_path:"), "{err}");
    assert!(!Path::new(&dir("elsewhere")).exists());
}
