//! The API contract in the tests: every JSON body a test receives is checked against the
//! OpenAPI document the code generates, by the schema of its operation and status (an error
//! status without one of its own: the `default`, `ErrorBody`). A body that does not match, or
//! a success status the document does not list, fails the test.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Value, json};

struct Contract {
    document: Value,
    /// (method, path template split in segments), for each operation.
    operations: Vec<(String, Vec<String>)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let mut document = latchkey::openapi::document();
    close_response_schemas(&mut document);
    let mut operations = Vec::new();
    for (path, methods) in document["paths"].as_object().expect("paths") {
        for method in methods.as_object().expect("operations").keys() {
            operations.push((method.to_uppercase(), path.split('/').map(str::to_owned).collect()));
        }
    }
    Contract { document, operations, validators: Mutex::default() }
});

/// In the tests, an answer may hold nothing its schema does not name, so that a field leaked
/// into a body (a password hash, a member shown a full record) fails the test. The published
/// document leaves answers open, so that adding a field later breaks no client. Request bodies
/// stay open too: the server ignores properties it does not know.
fn close_response_schemas(document: &mut Value) {
    let requests: Vec<String> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|methods| methods.as_object().expect("operations").values())
        .filter_map(|operation| operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str())
        .map(|reference| reference.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    // A schema that is part of another (`allOf`) is closed by the one it is part of, which
    // sees the properties of all its parts.
    let schemas = document["components"]["schemas"].as_object_mut().expect("schemas");
    let parts: Vec<String> = schemas
        .values()
        .filter_map(|schema| schema["allOf"].as_array())
        .flatten()
        .filter_map(|part| part["$ref"].as_str())
        .map(|reference| reference.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    for (name, schema) in schemas {
        let object = schema.get("properties").is_some() || schema.get("allOf").is_some();
        if object && !requests.contains(name) && !parts.contains(name) {
            schema["unevaluatedProperties"] = json!(false);
        }
    }
    // A part answered whole is closed where it is answered.
    for methods in document["paths"].as_object_mut().expect("paths").values_mut() {
        for operation in methods.as_object_mut().expect("operations").values_mut() {
            for response in operation["responses"].as_object_mut().expect("responses").values_mut() {
                let Some(schema) = response.pointer_mut("/content/application~1json/schema") else { continue };
                let reference = schema["$ref"].as_str().map(|r| r.rsplit('/').next().unwrap_or_default().to_owned());
                if reference.is_some_and(|name| parts.contains(&name)) {
                    schema["unevaluatedProperties"] = json!(false);
                }
            }
        }
    }
}

/// The path template of the operation `method path` is, preferring literal segments
/// (`/v1/auth/oauth/exchange` over `/v1/auth/oauth/{provider}`).
fn operation_of(method: &str, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    CONTRACT
        .operations
        .iter()
        .filter(|(m, template)| {
            m == method
                && template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        })
        .max_by_key(|(_, template)| template.iter().filter(|t| !t.starts_with('{')).count())
        .map(|(_, template)| template.join("/"))
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1").replace('{', "%7B").replace('}', "%7D")
}

fn validator(pointer: &str) -> Arc<jsonschema::Validator> {
    let mut validators = CONTRACT.validators.lock().unwrap();
    let compiled = validators.entry(pointer.to_owned()).or_insert_with(|| {
        let mut schema = CONTRACT.document.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        schema["$ref"] = json!(pointer);
        Arc::new(jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{pointer} does not compile: {e}")))
    });
    Arc::clone(compiled)
}

/// Panics unless `body`, answered with `status` to `method path`, is what the document says.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    let path = path.split('?').next().unwrap_or_default();
    let pointer = match operation_of(method, path) {
        Some(template) => {
            let responses = &CONTRACT.document["paths"][&template][method.to_lowercase()]["responses"];
            let key = match responses.get(status.to_string()) {
                Some(_) => status.to_string(),
                None if status >= 400 => "default".to_owned(),
                None => panic!("{method} {template} answered {status}, which the document does not list: {body}"),
            };
            let response = &responses[&key];
            if response.get("content").is_none() {
                assert!(body.is_null(), "{method} {template} {status} has no documented body, but answered {body}");
                return;
            }
            format!(
                "#/paths/{}/{}/responses/{key}/content/application~1json/schema",
                escape(&template),
                method.to_lowercase()
            )
        }
        // Not an operation (an unknown route, the local server's object URLs): errors are
        // still the documented error body.
        None if status >= 400 => "#/components/schemas/ErrorBody".to_owned(),
        None => return,
    };
    let validator = validator(&pointer);
    let errors: Vec<String> =
        validator.iter_errors(body).map(|error| format!("{} at {}", error, error.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body the document does not allow:\n{}\n{body}",
        errors.join("\n")
    );
}

/// Whether the document's schema `name` (under `components/schemas`) allows `value`.
pub fn schema_allows(name: &str, value: &Value) -> bool {
    assert!(CONTRACT.document["components"]["schemas"].get(name).is_some(), "no schema {name}");
    validator(&format!("#/components/schemas/{name}")).is_valid(value)
}

/// Whether the document allows `value` for the query parameter `name` of `GET path`.
pub fn query_parameter_allows(path: &str, name: &str, value: &Value) -> bool {
    let parameters = CONTRACT.document["paths"][path]["get"]["parameters"].as_array().expect("parameters");
    let index = parameters.iter().position(|p| p["name"] == name).unwrap_or_else(|| panic!("no parameter {name}"));
    validator(&format!("#/paths/{}/get/parameters/{index}/schema", escape(path))).is_valid(value)
}
