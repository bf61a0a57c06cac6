//! The gateway's HTTP API as a frontend calls it: JSON in, JSON out, the session in a
//! cookie. Every call is printed (method, path, body, status, answer) so the walkthrough
//! reads as the API's reference.

use anyhow::{Context, Result, bail};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A client of one gateway, signed in once [`Api::login`] succeeded.
pub struct Api {
    base: String,
    http: reqwest::Client,
    /// `name=value` of the session cookie. A browser keeps it by itself (`fetch` with
    /// `credentials: "include"`); here it is kept by hand to show what travels.
    cookie: Option<String>,
}

/// A status and a JSON answer (`Null` for an empty body, a string for a non-JSON one).
pub struct Reply {
    pub status: StatusCode,
    pub json: Value,
    /// The `Set-Cookie` header, when the gateway set one.
    pub set_cookie: Option<String>,
}

impl Reply {
    /// The answer when the status is `expected`; otherwise the error body as the error.
    pub fn expect(self, expected: u16) -> Result<Value> {
        if self.status.as_u16() != expected {
            bail!(
                "expected HTTP {expected}, got {}: {}",
                self.status,
                self.json
            );
        }
        Ok(self.json)
    }
}

impl Api {
    pub fn new(base: &str) -> Result<Api> {
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .context("building the HTTP client")?,
            cookie: None,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// `GET path` without printing: for polling, whose answers the caller prints.
    pub async fn poll(&self, path: &str) -> Result<Reply> {
        self.exchange(Method::GET, path, None, &[], false).await
    }

    /// A request with extra headers (`X-Grid-Order` to pick an app, say).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        self.exchange(method, path, body, headers, true).await
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        echo: bool,
    ) -> Result<Reply> {
        match &body {
            _ if !echo => {}
            Some(body) => println!("  → {method} {path} {body}"),
            None => println!("  → {method} {path}"),
        }
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}: the gateway did not answer"))?;
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if echo {
            println!("  ← {status} {}", short(&redact_token(&json)));
        }
        if let Some(set_cookie) = set_cookie.as_ref().filter(|_| echo) {
            println!("    Set-Cookie: {}", redact_cookie(set_cookie));
        }
        Ok(Reply {
            status,
            json,
            set_cookie,
        })
    }

    /// Keeps the session cookie from a login's `Set-Cookie` (its `name=value` part) and
    /// sends it from now on.
    pub fn keep_session(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap_or(set_cookie).trim();
        self.cookie = Some(pair.to_owned());
    }

    /// The session cookie's name, once signed in.
    pub fn session_cookie_name(&self) -> Option<&str> {
        self.cookie.as_deref()?.split('=').next()
    }
}

/// An answer on one line, cut to a readable length.
pub fn short(json: &Value) -> String {
    let text = json.to_string();
    if text.chars().count() > 400 {
        let cut: String = text.chars().take(400).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The login answer's `token` (the session, for `Authorization: Bearer`) hidden: printed
/// output ends up in logs.
fn redact_token(json: &Value) -> Value {
    let mut shown = json.clone();
    if let Some(token) = shown.get_mut("token").filter(|t| t.is_string()) {
        *token = Value::String("<session token>".into());
    }
    shown
}

/// A `Set-Cookie` with its value hidden: the value is a credential.
fn redact_cookie(set_cookie: &str) -> String {
    match set_cookie.split_once('=') {
        Some((name, rest)) => {
            let attributes = rest.split_once(';').map(|(_, a)| a).unwrap_or("");
            format!("{name}=<session token>;{attributes}")
        }
        None => set_cookie.to_owned(),
    }
}
