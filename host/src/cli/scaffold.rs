//! `grid-gateway policy new`: scaffolds a policy project in Rust, TypeScript or Python that
//! builds and passes its own fixtures as generated.
//!
//! The templates live in `templates/` beside this file and are embedded in the binary: the
//! fixtures (and their `settings.json`) are shared by the three languages, since the same
//! policy gives the same answers in each; every language has one policy file per world and
//! project files with the world's parts substituted. Placeholders are `{{key}}`; every one
//! is replaced (a test checks that no `{{` is left in any generated file).
//!
//! The project depends on the SDK of its language in a grid-gateway checkout, by a relative
//! path when the project is inside that checkout, by an absolute one otherwise. The checkout
//! is `--sdk-path`, else the one the project directory is in, else the one the binary was
//! built from (when it still exists). Without any, a Rust project depends on
//! `grid-policy-sdk` from crates.io at this gateway's version; TypeScript and Python
//! projects are refused, their SDKs being published nowhere but the repository.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::policy::World;

/// The language of a scaffolded policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Rust, with `guest-sdk` (grid-policy-sdk).
    Rust,
    /// TypeScript, with `sdk/typescript` (@grid/policy-sdk) and componentize-js.
    TypeScript,
    /// Python, with `sdk/python` (grid_policy) and componentize-py.
    Python,
}

impl Lang {
    /// The language's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::TypeScript => "typescript",
            Lang::Python => "python",
        }
    }

    /// The SDK's directory inside a checkout.
    fn sdk_dir(self) -> &'static str {
        match self {
            Lang::Rust => "guest-sdk",
            Lang::TypeScript => "sdk/typescript",
            Lang::Python => "sdk/python",
        }
    }
}

/// What `policy new` is asked to make.
#[derive(Clone, Debug)]
pub struct NewOptions {
    /// The language.
    pub lang: Lang,
    /// The world the policy implements.
    pub world: World,
    /// The project's name (lower-case letters, digits and single dashes).
    pub name: String,
    /// The project directory; `NAME` in the current directory when `None`.
    pub dir: Option<PathBuf>,
    /// A grid-gateway checkout whose SDK the project uses (`--sdk-path`).
    pub sdk_path: Option<PathBuf>,
    /// The checkout to fall back to when neither `sdk_path` nor the project's location
    /// names one (the binary passes the checkout it was built from).
    pub fallback_checkout: Option<PathBuf>,
}

/// Why `policy new` made nothing. Each has a stable code ([`ScaffoldError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a package, crate and module name.
    #[error("bad_name: {name:?} cannot name a policy: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The project directory exists and holds something.
    #[error("directory_not_empty: {0} exists and is not an empty directory; choose another --dir")]
    DirectoryNotEmpty(PathBuf),
    /// `--sdk-path` is not a grid-gateway checkout.
    #[error("bad_sdk_path: {path} is not a grid-gateway checkout (no {missing} in it)")]
    BadSdkPath {
        /// The path given.
        path: PathBuf,
        /// The file that should be there.
        missing: &'static str,
    },
    /// No checkout to take a TypeScript or Python SDK from.
    #[error(
        "sdk_not_found: the {lang} SDK is not published; pass --sdk-path with a grid-gateway checkout"
    )]
    SdkNotFound {
        /// The language.
        lang: &'static str,
    },
    /// A path cannot be written into the project's files as it is.
    #[error(
        "unusable_path: {0} is not valid UTF-8 or holds a quote, backslash or control character; \
         use a plainer path"
    )]
    UnusablePath(PathBuf),
    /// A file or directory could not be created.
    #[error("write_failed: cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl ScaffoldError {
    /// The stable code, also the first word of the message.
    pub fn code(&self) -> &'static str {
        match self {
            ScaffoldError::BadName { .. } => "bad_name",
            ScaffoldError::DirectoryNotEmpty(_) => "directory_not_empty",
            ScaffoldError::BadSdkPath { .. } => "bad_sdk_path",
            ScaffoldError::SdkNotFound { .. } => "sdk_not_found",
            ScaffoldError::UnusablePath(_) => "unusable_path",
            ScaffoldError::Write { .. } => "write_failed",
        }
    }
}

/// Where the project's SDK comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SdkSource {
    /// A directory of a checkout, as written into the project (relative or absolute).
    Path(String),
    /// `grid-policy-sdk` from crates.io at this version (Rust only).
    Registry(String),
}

/// What `policy new` made.
#[derive(Clone, Debug, Serialize)]
pub struct Scaffold {
    /// The project directory.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// Where the SDK comes from.
    pub sdk: SdkSource,
}

/// Names the templates import or generate, which a project of that name would shadow.
const RESERVED: &[&str] = &[
    "grid-policy",
    "grid-policy-sdk",
    "serde",
    "pytest",
    "os",
    "typing",
    "dataclasses",
    "wit-world",
    "componentize-py-types",
    "componentize-py-runtime",
    "test",
];

/// Longest name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a project name: lower-case ASCII letters and digits in words joined by single
/// dashes, starting with a letter, so that it is a valid Cargo package, npm package and
/// (with `_` for `-`) Rust crate and Python module name.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |reason| {
        Err(ScaffoldError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad("it must have 1 to 64 characters");
    }
    if !name
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    {
        return bad("use lower-case ASCII letters, digits and dashes only");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a letter");
    }
    if name.ends_with('-') || name.contains("--") {
        return bad("dashes must join words (no dash at the end, no two in a row)");
    }
    if RESERVED.contains(&name) {
        return bad("it would shadow a module or package the project uses");
    }
    Ok(())
}

/// The files a checkout has (relative paths), which `--sdk-path` is checked against.
const CHECKOUT_MARKERS: &[&str] = &[
    "wit/worlds.wit",
    "guest-sdk/Cargo.toml",
    "sdk/typescript/package.json",
    "sdk/python/grid_policy/__init__.py",
];

fn missing_marker(dir: &Path) -> Option<&'static str> {
    CHECKOUT_MARKERS
        .iter()
        .copied()
        .find(|m| !dir.join(m).is_file())
}

/// The nearest existing ancestor of `dir` (or `dir`) that is a checkout.
fn enclosing_checkout(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|a| a.is_dir() && missing_marker(a).is_none())
        .map(Path::to_path_buf)
}

/// `path` as text fit for TOML, JSON and shell lines: UTF-8 without quotes, backslashes
/// or control characters.
fn plain(path: &Path) -> Result<String, ScaffoldError> {
    match path.to_str() {
        Some(s)
            if !s
                .chars()
                .any(|c| c == '"' || c == '\'' || c == '\\' || c.is_control()) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(ScaffoldError::UnusablePath(path.to_owned())),
    }
}

/// `target` as seen from `from` (both absolute and normalised): relative when `from` lies
/// inside `root` and `target` too, absolute otherwise.
fn reference(root: &Path, from: &Path, target: &Path) -> PathBuf {
    let (Ok(inside), Ok(rest)) = (from.strip_prefix(root), target.strip_prefix(root)) else {
        return target.to_owned();
    };
    let mut up = PathBuf::new();
    for c in inside.components() {
        if matches!(c, Component::Normal(_)) {
            up.push("..");
        }
    }
    up.join(rest)
}

/// A template file: where it goes in the project and its text.
struct Template {
    path: String,
    text: &'static str,
}

fn file(path: impl Into<String>, text: &'static str) -> Template {
    Template {
        path: path.into(),
        text,
    }
}

/// The fixtures of a world, shared by every language.
fn fixtures(world: World) -> Vec<Template> {
    macro_rules! fixture {
        ($world:literal, $name:literal) => {
            file(
                concat!("fixtures/", $name),
                include_str!(concat!("templates/fixtures/", $world, "/", $name)),
            )
        };
    }
    match world {
        World::Pricing => vec![
            fixture!("pricing", "settings.json"),
            fixture!("pricing", "accept-two-cores-for-an-hour.json"),
            fixture!("pricing", "refuse-payment-below-price.json"),
            fixture!("pricing", "refuse-duration-too-short.json"),
            fixture!("pricing", "refuse-not-enough-free-cpu.json"),
        ],
        World::Payee => vec![
            fixture!("payee", "settings.json"),
            fixture!("payee", "allow-node-wallet.json"),
            fixture!("payee", "allow-listed-payee.json"),
            fixture!("payee", "deny-unknown-payee.json"),
        ],
        World::Authorization => vec![
            fixture!("authorization", "settings.json"),
            fixture!("authorization", "session-grant-active-order.json"),
            fixture!("authorization", "session-deny-no-active-order.json"),
            fixture!("authorization", "request-allow.json"),
            fixture!("authorization", "request-deny-admin-path.json"),
        ],
    }
}

fn policy_source(lang: Lang, world: World) -> &'static str {
    match (lang, world) {
        (Lang::Rust, World::Pricing) => include_str!("templates/rust/pricing.rs"),
        (Lang::Rust, World::Payee) => include_str!("templates/rust/payee.rs"),
        (Lang::Rust, World::Authorization) => include_str!("templates/rust/authorization.rs"),
        (Lang::TypeScript, World::Pricing) => include_str!("templates/typescript/pricing.ts"),
        (Lang::TypeScript, World::Payee) => include_str!("templates/typescript/payee.ts"),
        (Lang::TypeScript, World::Authorization) => {
            include_str!("templates/typescript/authorization.ts")
        }
        (Lang::Python, World::Pricing) => include_str!("templates/python/pricing.py"),
        (Lang::Python, World::Payee) => include_str!("templates/python/payee.py"),
        (Lang::Python, World::Authorization) => include_str!("templates/python/authorization.py"),
    }
}

/// Every file of a project, before substitution.
fn templates(lang: Lang, world: World, module: &str) -> Vec<Template> {
    let mut files = match lang {
        Lang::Rust => vec![
            file("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            file("README.md", include_str!("templates/rust/README.md")),
            file(".gitignore", include_str!("templates/rust/gitignore")),
            file("src/lib.rs", policy_source(lang, world)),
        ],
        Lang::TypeScript => vec![
            file(
                "package.json",
                include_str!("templates/typescript/package.json"),
            ),
            file(
                "tsconfig.json",
                include_str!("templates/typescript/tsconfig.json"),
            ),
            file("README.md", include_str!("templates/typescript/README.md")),
            file(".gitignore", include_str!("templates/typescript/gitignore")),
            file("src/policy.ts", policy_source(lang, world)),
            file(
                "src/component.ts",
                include_str!("templates/typescript/component.ts"),
            ),
            file(
                "test/policy.test.ts",
                include_str!("templates/typescript/policy.test.ts"),
            ),
        ],
        Lang::Python => vec![
            file(
                "pyproject.toml",
                include_str!("templates/python/pyproject.toml"),
            ),
            file("README.md", include_str!("templates/python/README.md")),
            file(".gitignore", include_str!("templates/python/gitignore")),
            file(format!("{module}.py"), policy_source(lang, world)),
            file(
                format!("test_{module}.py"),
                include_str!("templates/python/test.py"),
            ),
        ],
    };
    files.extend(fixtures(world));
    files
}

/// The values of the world's placeholders.
fn world_values(world: World) -> [(&'static str, &'static str); 5] {
    match world {
        World::Pricing => [
            ("bench_fixture", "accept-two-cores-for-an-hour.json"),
            ("ts_exports", "pricingExports"),
            ("ts_export_names", "validateSettings, quote"),
            ("ts_runner", "runPricing"),
            ("bad_settings", r#"{"cpu_core_per_second": "0"}"#),
        ],
        World::Payee => [
            ("bench_fixture", "deny-unknown-payee.json"),
            ("ts_exports", "payeeExports"),
            ("ts_export_names", "validateSettings, check"),
            ("ts_runner", "runPayee"),
            ("bad_settings", r#"{"payees": ["0x12"]}"#),
        ],
        World::Authorization => [
            ("bench_fixture", "request-allow.json"),
            ("ts_exports", "authorizationExports"),
            (
                "ts_export_names",
                "validateSettings, authorizeSession, authorizeRequest",
            ),
            ("ts_runner", "runAuthorization"),
            ("bad_settings", r#"{"session_lifetime_secs": 0}"#),
        ],
    }
}

fn substitute(text: &str, values: &[(&str, String)]) -> String {
    let mut out = text.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

fn write_error(path: &Path, e: std::io::Error) -> ScaffoldError {
    ScaffoldError::Write {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Absolute and without `.`/`..`, without touching the filesystem (the directory may not
/// exist yet).
fn absolute(path: &Path) -> Result<PathBuf, ScaffoldError> {
    let abs = std::path::absolute(path).map_err(|e| write_error(path, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Makes the project. Nothing is written when the name, the directory or the SDK is
/// refused.
pub fn new_project(options: &NewOptions) -> Result<Scaffold, ScaffoldError> {
    check_name(&options.name)?;
    let dir = absolute(
        &options
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&options.name)),
    )?;
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .map_err(|e| write_error(&dir, e))?
                .next()
                .is_none();
        if !empty {
            return Err(ScaffoldError::DirectoryNotEmpty(dir));
        }
    }
    // Canonical where it exists, so that a symlinked prefix does not hide that the project
    // is inside the checkout.
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let checkout = match &options.sdk_path {
        Some(path) => {
            let path = absolute(path)?;
            if let Some(missing) = missing_marker(&path) {
                return Err(ScaffoldError::BadSdkPath { path, missing });
            }
            Some(path)
        }
        None => enclosing_checkout(&dir).or_else(|| {
            options
                .fallback_checkout
                .clone()
                .filter(|c| missing_marker(c).is_none())
        }),
    };
    let lang = options.lang;
    let (sdk, wit) = match &checkout {
        Some(root) => {
            let root = canonical(root);
            // The project directory's ancestors exist up to some point; resolve that part.
            let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(&dir);
            let resolved = canonical(existing).join(dir.strip_prefix(existing).unwrap_or(&dir));
            let sdk = plain(&reference(&root, &resolved, &root.join(lang.sdk_dir())))?;
            let wit = plain(&reference(&root, &resolved, &root.join("wit")))?;
            (SdkSource::Path(sdk), wit)
        }
        None if lang == Lang::Rust => (
            SdkSource::Registry(env!("CARGO_PKG_VERSION").to_owned()),
            String::new(),
        ),
        None => {
            return Err(ScaffoldError::SdkNotFound { lang: lang.name() });
        }
    };
    plain(&dir)?;

    let module = options.name.replace('-', "_");
    let (sdk_text, sdk_dependency, sdk_comment) = match &sdk {
        SdkSource::Path(p) => (
            p.clone(),
            format!(r#"{{ path = "{p}", features = ["guest"] }}"#),
            format!("The SDK is the grid-gateway checkout's, by path: {p}"),
        ),
        SdkSource::Registry(v) => (
            String::new(),
            format!(r#"{{ version = "={v}", features = ["guest"] }}"#),
            format!(
                "The SDK is grid-policy-sdk {v} from crates.io; to use a grid-gateway checkout \
                 instead, give its guest-sdk directory as `path`"
            ),
        ),
    };
    let mut values: Vec<(&str, String)> = vec![
        ("name", options.name.clone()),
        ("crate", module.clone()),
        ("module", module.clone()),
        ("world", options.world.name().to_owned()),
        ("sdk_dependency", sdk_dependency),
        ("sdk_comment", sdk_comment),
        ("sdk", sdk_text),
        ("wit", wit),
    ];
    values.extend(
        world_values(options.world)
            .into_iter()
            .map(|(k, v)| (k, v.to_owned())),
    );

    std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e))?;
    let mut files = Vec::new();
    for template in templates(lang, options.world, &module) {
        let path = dir.join(&template.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
        }
        std::fs::write(&path, substitute(template.text, &values))
            .map_err(|e| write_error(&path, e))?;
        files.push(PathBuf::from(template.path));
    }
    // A Rust project inside (or pointing at) a checkout starts from the checkout's lock
    // file: the SDK's dependencies at the versions the repository builds with, so the
    // first build needs nothing that is not already in Cargo's cache (offline CI).
    if let (Lang::Rust, Some(root)) = (lang, &checkout) {
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            let to = dir.join("Cargo.lock");
            std::fs::copy(&lock, &to).map_err(|e| write_error(&to, e))?;
            files.push(PathBuf::from("Cargo.lock"));
        }
    }
    Ok(Scaffold { dir, files, sdk })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["surge", "my-pricing2", "a", "pricing-v2-eu"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Surge",
            "my_pricing",
            "2fast",
            "-x",
            "x-",
            "a--b",
            "pytest",
            "a b",
            "é",
        ] {
            let err = check_name(bad).expect_err(bad);
            assert_eq!(err.code(), "bad_name", "{bad}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn references_are_relative_inside_the_checkout_only() {
        let root = Path::new("/repo");
        assert_eq!(
            reference(root, Path::new("/repo/a/b"), Path::new("/repo/guest-sdk")),
            PathBuf::from("../../guest-sdk")
        );
        assert_eq!(
            reference(root, Path::new("/elsewhere/p"), Path::new("/repo/wit")),
            PathBuf::from("/repo/wit")
        );
    }
}
