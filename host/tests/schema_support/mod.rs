//! API answers checked against the gateway's own OpenAPI document
//! (`grid_gateway::http::openapi`, what `/_grid/openapi.json` serves): the schema of a
//! documented response, `$ref`s resolved in the document's components.

#![allow(dead_code)]

use serde_json::{Value, json};

/// Panics, naming each mismatch, unless `answer` is valid against the schema the document
/// gives `method path`'s `status` JSON response (and that one is documented).
#[track_caller]
pub fn assert_documented(path: &str, method: &str, status: u16, answer: &Value) {
    let document = serde_json::to_value(grid_gateway::http::openapi()).expect("the document");
    let schema = &document["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} has no JSON schema for {status}"
    );
    // The response's schema with the components beside it, where its `$ref`s point.
    let root = json!({ "components": document["components"], "allOf": [schema] });
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} (at {})", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match its schema:\n{}\n{answer:#}",
        errors.join("\n")
    );
}
