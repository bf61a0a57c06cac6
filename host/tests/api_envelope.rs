//! Every refusal of the API is the one error envelope with a documented status, and an
//! order id means the same on every endpoint (issue 22, items 5 and 6).

mod apps_support;
mod node_support;
mod schema_support;

use apps_support::*;
use axum::body::Body;
use axum::http::{Request, header};
use node_support::*;
use serde_json::Value;

/// True when `reply` is `{"error":{"code","message"}}` with a JSON content type.
#[track_caller]
fn assert_envelope(reply: &Reply, status: u16, code: &str) {
    reply.assert_error(status, code);
    assert!(
        reply.json["error"]["message"].is_string(),
        "no message: {}",
        reply.json
    );
    let content_type = reply.headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}

/// The statuses the OpenAPI document gives `method path`.
fn documented(openapi: &Value, path: &str, method: &str) -> Vec<u16> {
    openapi["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
        .keys()
        .map(|status| status.parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_refusals_are_the_error_envelope_and_documented() {
    let node = Node::start(true).await;
    let openapi = get(&node.gw, "/_grid/openapi.json").await.json;

    // Query strings: a missing or mistyped parameter (axum answered 400 text/plain).
    let greet = get(&node.gw, "/greet").await;
    assert_envelope(&greet, 400, "bad_request");
    assert!(documented(&openapi, "/greet", "get").contains(&400));
    let greet = get(&node.gw, "/greet?type=zero").await;
    assert_envelope(&greet, 400, "bad_request");

    let order = node.order.clone();
    let logs = node
        .call("GET", &format!("/_grid/v1/apps/{order}/logs?tail=-1"))
        .await;
    assert_envelope(&logs, 400, "bad_request");
    assert!(
        documented(&openapi, "/_grid/v1/apps/{order_id}/logs", "get").contains(&400),
        "400 undocumented"
    );

    // A known path with an unknown method (axum answered 405 with an empty body); `Allow`
    // still names the methods it has.
    let wrong = send(
        &node.gw,
        Request::delete("/_grid/v1/quote")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_envelope(&wrong, 405, "method_not_allowed");
    assert_eq!(wrong.headers[header::ALLOW], "POST");

    // An id that is not one: 400 invalid_order_id, documented on every endpoint with an id.
    let accept = post(
        &node.gw,
        "/_grid/v1/orders/x7/accept",
        serde_json::json!({}),
    )
    .await;
    assert_envelope(&accept, 400, "invalid_order_id");
    for (path, method) in [
        ("/_grid/v1/orders/{id}/accept", "post"),
        ("/_grid/v1/orders/{id}", "get"),
        ("/_grid/v1/apps/{order_id}", "get"),
        ("/_grid/v1/apps/{order_id}", "delete"),
        ("/_grid/v1/apps/{order_id}/logs", "get"),
        ("/_grid/v1/apps/{order_id}/handoff", "post"),
    ] {
        assert!(
            documented(&openapi, path, method).contains(&400),
            "{method} {path}: 400 undocumented"
        );
    }
    let status = node.call("GET", "/_grid/v1/apps/x7").await;
    assert_envelope(&status, 400, "invalid_order_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_id_is_read_the_same_everywhere() {
    let node = Node::start(true).await;
    let padded = format!("00{}", node.order);

    // The order endpoint, the app endpoints and deploy all read `007` as order 7.
    let order = get(&node.gw, &format!("/_grid/v1/orders/{padded}")).await;
    assert_eq!(order.status, 200, "{}", order.json);
    assert_eq!(order.json["order_id"], node.order.as_str());

    // No app yet: the same answer for both spellings.
    let plain = node.app_status().await;
    let status = node.app_status_as(&node.cookie, &padded).await;
    assert_eq!(
        (status.status, status.code().to_owned()),
        (plain.status, plain.code().to_owned()),
        "{} vs {}",
        status.json,
        plain.json
    );

    let app = start_app("web").await;
    let url = node
        .files
        .put("padded.yaml", manifest(app.port(), "500m", "256Mi"));
    let deploy = node.deploy_as(&node.cookie, &padded, &url).await;
    assert_eq!(deploy.status, 202, "{}", deploy.json);
    assert_eq!(deploy.json["order_id"], node.order.as_str());
    let settled = node.settled().await;
    assert_eq!(settled.json["status"], "available", "{}", settled.json);

    let status = node.app_status_as(&node.cookie, &padded).await;
    assert_eq!(status.status, 200, "{}", status.json);
    assert_eq!(status.json["order_id"], node.order.as_str());

    // Process: `X-Grid-Order: 007` reaches order 7's app; a non-id is refused as one.
    let proxied = send(
        &node.gw,
        Request::get("/hello")
            .header(header::COOKIE, &node.cookie)
            .header("x-grid-order", &padded)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(proxied.status, 200, "{}", proxied.json);
    let bogus = send(
        &node.gw,
        Request::get("/hello")
            .header(header::COOKIE, &node.cookie)
            .header("x-grid-order", "seven")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_envelope(&bogus, 400, "invalid_order_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_answer_matches_its_closed_schema() {
    let node = Node::start(true).await;
    let answer = get(&node.gw, "/_grid/v1/node").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(answer.json["market"].is_string(), "{}", answer.json);
    assert_eq!(answer.json["policies"].as_array().map(Vec::len), Some(3));
    schema_support::assert_documented("/_grid/v1/node", "get", 200, &answer.json);
    // The schema is closed and typed: a field it does not name, or one of another type,
    // fails it (so the gateway cannot send an undocumented field unnoticed).
    for (pointer, value) in [
        ("/capacity/free/spare", Value::Bool(true)),
        ("/policies/0/current/source/extra", Value::Null),
        ("/chain_id", Value::String("1".into())),
        ("/policies/0/world", Value::String("billing".into())),
    ] {
        let mut changed = answer.json.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        changed.pointer_mut(parent).unwrap()[key] = value;
        let refused = std::panic::catch_unwind(|| {
            schema_support::assert_documented("/_grid/v1/node", "get", 200, &changed)
        });
        assert!(refused.is_err(), "{pointer} passed the schema");
    }
}
