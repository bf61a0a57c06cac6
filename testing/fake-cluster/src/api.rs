//! The API server: routing, API-server checks, dry run, server-side apply pruning, the
//! Namespace translation, and the hand-off to the store (kube-fake-client) and the stand-in
//! controllers.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::storage::{NS_STORAGE_API_VERSION, NS_STORAGE_PLURAL};
use crate::util::{
    Query, RespBody, Target, bad_request, collect_limited, invalid, json_response, name_problem,
    no_such_resource, not_found, raw_json_response, status_response, status_value,
};
use crate::{FakeOptions, Fault, controllers, discovery, logs, ssa, storage};

/// Request bodies above this are refused with 413 (a real API server's limit is ~3 MiB).
pub(crate) const BODY_LIMIT: usize = 8 * 1024 * 1024;

const CONTENT_TYPE_JSON: &str = "application/json";
const CONTENT_TYPE_JSON_PATCH: &str = "application/json-patch+json";

/// Where a request came from: HTTP requests are logged and can hit injected faults; the
/// direct client of [`crate::FakeCluster::in_memory`] and the controllers' own calls are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Http,
    Direct,
}

/// Everything the server shares between requests.
pub(crate) struct State {
    /// kube-fake-client's in-memory client: the store. Only this crate talks to it, always
    /// with storage paths (see [`crate::storage`]).
    pub(crate) store: kube::Client,
    pub(crate) options: FakeOptions,
    pub(crate) addr: SocketAddr,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<Vec<(Method, String)>>,
    next_service_ip: Mutex<u32>,
    next_pod_ip: Mutex<u32>,
    /// Serialises the stand-in controllers (workload reconcile, namespace purge).
    pub(crate) controller: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
}

/// An answer from the store.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn from_value(status: StatusCode, value: &Value) -> Reply {
        Reply {
            status,
            body: Bytes::from(value.to_string()),
        }
    }
}

/// Sends one request to a store (the real one or a dry run's scratch copy). A request the
/// store's router rejects outright (an unparsable body, say) becomes a 400 `Status`.
pub(crate) async fn call(
    store: &kube::Client,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    let request = match builder.body(kube::client::Body::from(body.unwrap_or_default())) {
        Ok(r) => r,
        Err(e) => {
            return Reply::from_value(
                StatusCode::BAD_REQUEST,
                &status_value(400, "BadRequest", &e.to_string()),
            );
        }
    };
    match store.send(request).await {
        Ok(response) => {
            let status = response.status();
            match collect_limited(response.into_body(), usize::MAX).await {
                Ok(body) => Reply { status, body },
                Err(e) => Reply::from_value(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &status_value(500, "InternalError", &e),
                ),
            }
        }
        Err(e) => Reply::from_value(
            StatusCode::BAD_REQUEST,
            &status_value(400, "BadRequest", &e.to_string()),
        ),
    }
}

impl State {
    pub(crate) fn new(
        store: kube::Client,
        options: FakeOptions,
        addr: SocketAddr,
        shutdown: watch::Sender<bool>,
    ) -> Self {
        Self {
            store,
            options,
            addr,
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            // 10.96.0.0/12, handed out from 10.96.0.1 on.
            next_service_ip: Mutex::new(u32::from(Ipv4Addr::new(10, 96, 0, 1))),
            next_pod_ip: Mutex::new(u32::from(Ipv4Addr::new(10, 244, 0, 2))),
            controller: tokio::sync::Mutex::new(()),
            shutdown,
        }
    }

    pub(crate) fn push_fault(&self, mut fault: Fault) {
        fault.times = fault.times.max(1);
        self.faults.lock().expect("lock").push(fault);
    }

    fn take_fault(&self, method: &Method, path_and_query: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().expect("lock");
        let index = faults.iter().position(|f| {
            f.method.as_ref().is_none_or(|m| m == method)
                && path_and_query.contains(&f.path_contains)
        })?;
        let fault = faults[index].clone();
        if faults[index].times <= 1 {
            faults.remove(index);
        } else {
            faults[index].times -= 1;
        }
        Some(fault)
    }

    pub(crate) fn requests(&self) -> Vec<(Method, String)> {
        self.requests.lock().expect("lock").clone()
    }

    pub(crate) fn clear_requests(&self) {
        self.requests.lock().expect("lock").clear();
    }

    pub(crate) fn signal_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// A Service's cluster IP: the configured one, or the next of 10.96.0.0/12. A dry run
    /// peeks without taking it.
    pub(crate) fn service_ip(&self, take: bool) -> IpAddr {
        if let Some(ip) = self.options.service_ip {
            return ip;
        }
        let mut next = self.next_service_ip.lock().expect("lock");
        let ip = Ipv4Addr::from(*next);
        if take {
            *next += 1;
        }
        IpAddr::V4(ip)
    }

    /// A Pod's IP: the configured Service IP (so pod IPs are reachable too), or the next of
    /// 10.244.0.0/16.
    pub(crate) fn pod_ip(&self) -> IpAddr {
        if let Some(ip) = self.options.service_ip {
            return ip;
        }
        let mut next = self.next_pod_ip.lock().expect("lock");
        let ip = Ipv4Addr::from(*next);
        *next += 1;
        IpAddr::V4(ip)
    }

    /// GET from the store; `None` unless 200.
    pub(crate) async fn get(&self, path: &str) -> Option<Value> {
        let reply = call(&self.store, Method::GET, path, None, None).await;
        if reply.ok() { reply.json() } else { None }
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        call(
            &self.store,
            method,
            path,
            content_type,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// Replaces an object's `status` through the status subresource.
    pub(crate) async fn put_status(&self, object_path: &str, status: &Value) -> Reply {
        let patch = json!([{ "op": "add", "path": "/status", "value": status }]);
        self.send(
            Method::PATCH,
            &format!("{object_path}/status"),
            Some(CONTENT_TYPE_JSON_PATCH),
            Some(&patch),
        )
        .await
    }
}

/// The `kube::Client` service behind [`crate::FakeCluster::in_memory`].
#[derive(Clone)]
pub(crate) struct Direct(pub(crate) Arc<State>);

impl tower::Service<Request<kube::client::Body>> for Direct {
    type Response = Response<RespBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match collect_limited(body, BODY_LIMIT).await {
                Ok(b) => b,
                Err(e) => return Ok(status_response(413, "RequestEntityTooLarge", &e)),
            };
            Ok(handle(&state, Request::from_parts(parts, body), Origin::Direct).await)
        })
    }
}

/// Entry point of every HTTP request.
pub(crate) async fn handle_http(
    state: &Arc<State>,
    request: Request<hyper::body::Incoming>,
) -> Response<RespBody> {
    let (parts, body) = request.into_parts();
    let body = match collect_limited(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return status_response(413, "RequestEntityTooLarge", &format!("request body: {e}"));
        }
    };
    handle(state, Request::from_parts(parts, body), Origin::Http).await
}

fn is_watch(path: &str, query: &Query) -> bool {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let watch_segment = matches!(
        segs.as_slice(),
        ["api", _, "watch", ..] | ["apis", _, _, "watch", ..]
    );
    watch_segment || matches!(query.get("watch"), Some("true" | "1"))
}

pub(crate) async fn handle(
    state: &Arc<State>,
    request: Request<Bytes>,
    origin: Origin,
) -> Response<RespBody> {
    let (parts, body) = request.into_parts();
    let method = parts.method;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if origin == Origin::Http {
        state
            .requests
            .lock()
            .expect("lock")
            .push((method.clone(), path_and_query.clone()));
        if let Some(fault) = state.take_fault(&method, &path_and_query) {
            tracing::debug!(%method, %path_and_query, status = fault.status, "injected fault");
            return status_response(
                fault.status,
                &fault.reason,
                &format!(
                    "grid-fake-cluster: injected fault ({}) for {method} {path_and_query}",
                    fault.reason
                ),
            );
        }
    }
    let path = parts.uri.path();
    let query = Query::parse(parts.uri.query());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    if method == Method::GET {
        if let Some(response) = discovery::answer(state, path) {
            return response;
        }
        if is_watch(path, &query) {
            return status_response(
                405,
                "MethodNotAllowed",
                "grid-fake-cluster does not support watch: poll with get/list instead",
            );
        }
    }
    let Some(target) = Target::parse(path) else {
        return no_such_resource();
    };
    if (target.namespaced && target.namespace.is_none() && target.name.is_some())
        || (!target.namespaced && target.namespace.is_some())
    {
        return no_such_resource();
    }
    match target.subresource.as_deref() {
        None | Some("status") => {}
        Some("log") if target.group.is_empty() && target.resource == "pods" => {
            return if method == Method::GET {
                logs::answer(state, &target, &query).await
            } else {
                status_response(405, "MethodNotAllowed", "pods/log only supports GET")
            };
        }
        Some(other) => {
            return status_response(
                404,
                "NotFound",
                &format!(
                    "the server could not find the requested resource ({}/{other}): \
                     grid-fake-cluster serves only the status subresource and pods/log",
                    target.resource
                ),
            );
        }
    }
    match method {
        Method::GET => read(state, &target, &query).await,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            write(
                state,
                &method,
                &target,
                &query,
                content_type.as_deref(),
                body,
            )
            .await
        }
        _ => status_response(
            405,
            "MethodNotAllowed",
            &format!("method {method} is not supported"),
        ),
    }
}

/// GET of one object or a list. Lists come back sorted by namespace and name (the order of a
/// real API server's storage) and honour `limit`/`continue`.
async fn read(state: &Arc<State>, target: &Target, query: &Query) -> Response<RespBody> {
    if target.name.is_some() {
        let reply = call(
            &state.store,
            Method::GET,
            &target.storage_path(),
            None,
            None,
        )
        .await;
        return respond(target, reply);
    }
    let uri = format!(
        "{}{}",
        target.storage_collection(),
        query.only(&["labelSelector", "fieldSelector"])
    );
    let reply = call(&state.store, Method::GET, &uri, None, None).await;
    if !reply.ok() {
        return respond(target, reply);
    }
    let Some(mut list) = reply.json() else {
        return respond(target, reply);
    };
    let mut items = match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    items.sort_by_key(sort_key);
    let offset = match query.get("continue").filter(|c| !c.is_empty()) {
        None => 0,
        Some(token) => match token
            .strip_prefix("grid-fake-")
            .and_then(|n| n.parse().ok())
        {
            Some(n) => n,
            None => return bad_request(&format!("invalid continue token {token:?}")),
        },
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let total = items.len();
    let mut page: Vec<Value> = items.into_iter().skip(offset).collect();
    if let Some(limit) = limit
        && page.len() > limit
    {
        page.truncate(limit);
        let next = offset + limit;
        list["metadata"]["continue"] = json!(format!("grid-fake-{next}"));
        list["metadata"]["remainingItemCount"] = json!(total - next);
    }
    list["items"] = Value::Array(page);
    if target.is_namespace() {
        namespace_out(&mut list);
    }
    json_response(StatusCode::OK, &list)
}

fn sort_key(v: &Value) -> (String, String) {
    let meta = &v["metadata"];
    (
        meta["namespace"].as_str().unwrap_or("").to_string(),
        meta["name"].as_str().unwrap_or("").to_string(),
    )
}

/// Turns a store reply into the response, translating Namespaces back.
fn respond(target: &Target, reply: Reply) -> Response<RespBody> {
    if target.is_namespace()
        && let Some(mut v) = reply.json()
    {
        namespace_out(&mut v);
        return json_response(reply.status, &v);
    }
    raw_json_response(reply.status, reply.body)
}

/// The storage form of Namespaces (objects, lists, Status messages) back to `v1`.
pub(crate) fn namespace_out(v: &mut Value) {
    if v["kind"] == "Status" {
        if let Some(message) = v["message"].as_str() {
            v["message"] = json!(
                message
                    .replace(NS_STORAGE_PLURAL, "namespaces")
                    .replace(NS_STORAGE_API_VERSION, "v1")
            );
        }
        return;
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(namespace_object_out);
        v["apiVersion"] = json!("v1");
        v["kind"] = json!("NamespaceList");
        return;
    }
    namespace_object_out(v);
}

fn namespace_object_out(v: &mut Value) {
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Namespace");
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("namespace");
        if let Some(fields) = meta.get_mut("managedFields").and_then(Value::as_array_mut) {
            for entry in fields {
                if entry["apiVersion"] == NS_STORAGE_API_VERSION {
                    entry["apiVersion"] = json!("v1");
                }
            }
        }
    }
}

fn is_apply(method: &Method, content_type: Option<&str>) -> bool {
    method == Method::PATCH
        && content_type.is_some_and(|ct| ct.starts_with("application/apply-patch"))
}

/// The API server's checks on a whole-object body (POST, PUT, apply): apiVersion, kind,
/// name and namespace must agree with the URL; a name (or `generateName`) is required and
/// must be a valid DNS name. Fills `metadata.name` from `generateName`. Returns the name.
fn check_object(
    method: &Method,
    target: &Target,
    object: &mut Value,
    apply: bool,
) -> Result<String, Box<Response<RespBody>>> {
    let Some(obj) = object.as_object_mut() else {
        return Err(Box::new(bad_request(
            "the request body must be a JSON object",
        )));
    };
    let expected_api_version = target.api_version();
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && av != expected_api_version
    {
        return Err(Box::new(bad_request(&format!(
            "the API version in the data ({av}) does not match the expected API version ({expected_api_version})"
        ))));
    }
    let subresource = target.subresource.is_some();
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && kind != target.kind
    {
        return Err(Box::new(bad_request(&format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            target.kind
        ))));
    }
    if apply && (!obj.contains_key("apiVersion") || !obj.contains_key("kind")) {
        return Err(Box::new(bad_request(
            "apply patches must set apiVersion and kind (invalid object type)",
        )));
    }
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Box::new(bad_request("metadata must be an object")))?;
    // Namespace of the object.
    if target.namespaced {
        let url_ns = target.namespace.as_deref().unwrap_or_default();
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != url_ns => {
                return Err(Box::new(bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                )));
            }
            _ => {}
        }
    } else {
        meta.remove("namespace");
    }
    // Name of the object.
    let body_name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let name = match (&target.name, body_name) {
        (Some(url), Some(body)) if *url != body => {
            return Err(Box::new(bad_request(&format!(
                "the name of the object ({body}) does not match the name on the URL ({url})"
            ))));
        }
        (Some(url), _) => url.clone(),
        (None, Some(body)) => body,
        (None, None) => match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) if *method == Method::POST && !prefix.is_empty() => {
                let name = format!("{prefix}{}", crate::util::random_suffix());
                meta.insert("name".into(), json!(name));
                name
            }
            _ => {
                return Err(Box::new(invalid(
                    &target.kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                )));
            }
        },
    };
    if !subresource && let Some(problem) = name_problem(&target.resource, &name) {
        return Err(Box::new(invalid(&target.kind, &name, &problem)));
    }
    if target.is_namespace() {
        obj.insert("apiVersion".into(), json!(NS_STORAGE_API_VERSION));
    }
    Ok(name)
}

async fn write(
    state: &Arc<State>,
    method: &Method,
    target: &Target,
    query: &Query,
    content_type: Option<&str>,
    body: Bytes,
) -> Response<RespBody> {
    // DELETE carries its options (dryRun, preconditions) in a DeleteOptions body too.
    let delete_options: Value = if *method == Method::DELETE {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let body_dry_run: Vec<&str> = delete_options["dryRun"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let dry_run = match query.get("dryRun").or(body_dry_run.first().copied()) {
        None => false,
        Some("All") => true,
        Some(other) => {
            return bad_request(&format!(
                "Invalid value: {other:?}: supported values: \"All\" (dryRun)"
            ));
        }
    };
    let apply = is_apply(method, content_type);
    if apply && query.get("fieldManager").is_none_or(str::is_empty) {
        return bad_request("PATCH, application/apply-patch+yaml: fieldManager is required");
    }
    match (method, &target.name) {
        (&Method::POST, Some(_)) => {
            return status_response(405, "MethodNotAllowed", "POST must address a collection");
        }
        (&Method::PUT | &Method::PATCH, None) => {
            return status_response(
                405,
                "MethodNotAllowed",
                &format!("{method} needs an object name"),
            );
        }
        (&Method::DELETE, None) if target.is_namespace() => {
            return status_response(
                405,
                "MethodNotAllowed",
                "namespaces do not support deletecollection",
            );
        }
        _ => {}
    }

    let mut body_json: Option<Value> = None;
    if !body.is_empty() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => body_json = Some(v),
            Err(e) if *method != Method::DELETE => {
                return bad_request(&format!(
                    "the body of the request could not be decoded as JSON: {e}"
                ));
            }
            Err(_) => {}
        }
    }
    let mut name = target.name.clone();
    let whole_object = *method == Method::POST || *method == Method::PUT || apply;
    if whole_object {
        let Some(obj) = body_json.as_mut() else {
            return bad_request("the request needs a body");
        };
        match check_object(method, target, obj, apply) {
            Ok(n) => name = Some(n),
            Err(response) => return *response,
        }
    }

    // A namespaced object can only be written into an existing namespace.
    if *method != Method::DELETE
        && let Some(ns) = &target.namespace
        && state.get(&storage_namespace_path(ns)).await.is_none()
    {
        return not_found("namespaces", "", ns);
    }

    let forward_query = query.only(&[
        "fieldManager",
        "force",
        "propagationPolicy",
        "orphanDependents",
        "labelSelector",
        "fieldSelector",
    ]);
    let uri = format!("{}{}", target.storage_path(), forward_query);
    let body_bytes = match (&body_json, whole_object) {
        (Some(v), true) => Some(v.to_string().into_bytes()),
        _ => (!body.is_empty()).then(|| body.to_vec()),
    };
    let content_type = content_type.or(Some(CONTENT_TYPE_JSON));
    let preconditions = &delete_options["preconditions"];
    let existing = match &name {
        Some(n) if dry_run || apply || preconditions.is_object() => {
            state.get(&target.storage_object(n)).await
        }
        _ => None,
    };
    if let Some(current) = &existing {
        for field in ["uid", "resourceVersion"] {
            let wanted = &preconditions[field];
            if wanted.is_string() && *wanted != current["metadata"][field] {
                return status_response(
                    409,
                    "Conflict",
                    &format!(
                        "Precondition failed: {field} in precondition: {}, {field} in object meta: {}",
                        wanted.as_str().unwrap_or_default(),
                        current["metadata"][field].as_str().unwrap_or_default()
                    ),
                );
            }
        }
    }

    if dry_run {
        return dry_run_write(
            state,
            method,
            target,
            name.as_deref(),
            &uri,
            content_type,
            body_bytes,
            existing,
            apply,
            query,
        )
        .await;
    }

    let reply = if apply {
        apply_patch(
            &state.store,
            target,
            &uri,
            content_type,
            body_bytes.unwrap_or_default(),
            existing.as_ref(),
            query.get("fieldManager").unwrap_or_default(),
        )
        .await
    } else {
        call(&state.store, method.clone(), &uri, content_type, body_bytes).await
    };
    if !reply.ok() {
        return respond(target, reply);
    }
    let Some(object) = reply.json() else {
        return respond(target, reply);
    };
    let status = if apply && existing.is_none() && target.subresource.is_none() {
        StatusCode::CREATED
    } else {
        reply.status
    };
    let mut object = if target.name.is_some() || *method == Method::POST {
        controllers::after_write(state, method, target, object).await
    } else {
        object
    };
    if target.is_namespace() {
        namespace_out(&mut object);
    }
    json_response(status, &object)
}

pub(crate) fn storage_namespace_path(name: &str) -> String {
    format!(
        "/apis/{NS_STORAGE_API_VERSION}/namespaces/{}/{NS_STORAGE_PLURAL}/{name}",
        storage::NS_STORAGE_NAMESPACE
    )
}

/// Server-side apply: kube-fake-client merges the patch and records the manager's fields;
/// then the fields this manager applied last time and has now left out are removed, unless
/// another manager owns them (what a real API server does; kube-fake-client does not).
async fn apply_patch(
    store: &kube::Client,
    target: &Target,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    existing: Option<&Value>,
    manager: &str,
) -> Reply {
    let reply = call(store, Method::PATCH, uri, content_type, Some(body)).await;
    let (Some(existing), true, None) = (existing, reply.ok(), &target.subresource) else {
        return reply;
    };
    let Some(mut object) = reply.json() else {
        return reply;
    };
    let removed = ssa::fields_to_prune(existing, &object, manager);
    if removed.is_empty() {
        return reply;
    }
    for path in &removed {
        ssa::remove_path(&mut object, path);
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(
        store,
        Method::PUT,
        &target.storage_object(&name),
        Some(CONTENT_TYPE_JSON),
        Some(object.to_string().into_bytes()),
    )
    .await
}

/// `dryRun=All`: the same checks and the same result, computed on a scratch store that holds
/// only the object as it is now; nothing is persisted and no controller runs.
#[allow(clippy::too_many_arguments)]
async fn dry_run_write(
    state: &Arc<State>,
    method: &Method,
    target: &Target,
    name: Option<&str>,
    uri: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
    existing: Option<Value>,
    apply: bool,
    query: &Query,
) -> Response<RespBody> {
    if *method == Method::DELETE {
        let Some(name) = name else {
            // A dry-run deletecollection: the objects that would go.
            return read(state, target, query).await;
        };
        return match existing {
            Some(mut object) => {
                if target.is_namespace() {
                    controllers::mark_terminating(&mut object);
                    namespace_out(&mut object);
                }
                json_response(StatusCode::OK, &object)
            }
            None if target.is_namespace() => not_found("namespaces", "", name),
            None => not_found(&target.resource, &target.group, name),
        };
    }
    let scratch = match storage::builder()
        .with_runtime_objects(existing.clone().into_iter().collect())
        .build()
        .await
    {
        Ok(s) => s,
        Err(e) => return status_response(500, "InternalError", &e.to_string()),
    };
    let reply = if apply {
        apply_patch(
            &scratch,
            target,
            uri,
            content_type,
            body.unwrap_or_default(),
            existing.as_ref(),
            query.get("fieldManager").unwrap_or_default(),
        )
        .await
    } else {
        call(&scratch, method.clone(), uri, content_type, body).await
    };
    if !reply.ok() {
        return respond(target, reply);
    }
    let Some(mut object) = reply.json() else {
        return respond(target, reply);
    };
    let meta = &mut object["metadata"];
    match existing
        .as_ref()
        .map(|e| e["metadata"]["resourceVersion"].clone())
    {
        Some(rv) => meta["resourceVersion"] = rv,
        None => {
            if let Some(m) = meta.as_object_mut() {
                m.remove("resourceVersion");
            }
        }
    }
    if target.subresource.is_none() {
        controllers::defaults_for_dry_run(state, target, &mut object);
    }
    let status = if existing.is_none() && (apply || *method == Method::POST) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if target.is_namespace() {
        namespace_out(&mut object);
    }
    json_response(status, &object)
}

/// The collection path of every namespaced resource (all groups and versions kube-fake-client
/// knows) in `namespace`: what deleting the namespace has to empty.
pub(crate) fn namespaced_collections(namespace: &str) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for (group, version, kind, plural) in kube_fake_client::r#gen::discovery::list_resources() {
        if kube_fake_client::r#gen::discovery::is_namespaced(group, version, kind) != Some(true) {
            continue;
        }
        paths.insert(if group.is_empty() {
            format!("/api/{version}/namespaces/{namespace}/{plural}")
        } else {
            format!("/apis/{group}/{version}/namespaces/{namespace}/{plural}")
        });
    }
    paths.into_iter().collect()
}
