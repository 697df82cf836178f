//! The API contract, generated from the code: each slice's operations (`#[utoipa::path]` on
//! its handlers), the typed bodies they take and return, and the limits the parsers enforce
//! (`http::schemas`). `openapi.yaml` is this document, written by
//! `cargo run -p latchkey-local -- openapi > openapi.yaml`; a test fails when they differ.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::features::{account, avatars, chat, directory, friends, mfa, providers, sessions};
use crate::functions;
use crate::http::schemas::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey",
        description = "Registration, sign-in with passwords, second factors and third-party providers, rotating refresh tokens, profiles, a user directory, friends, avatars and chat. The guide is docs/api.md: error bodies and codes, throttling, second factors, the chat WebSocket.\n\nEvery error answers the `ErrorBody` schema (the `default` response of each operation). `x-latchkey-function` names the Lambda function that serves an operation.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "sessions", description = "Registration, sign-in, token refresh and sign-out, introspection and the keys."),
        (name = "mfa", description = "Second factors: TOTP with recovery codes, and codes sent by email."),
        (name = "account", description = "Email verification, password reset and change, address changes."),
        (name = "users", description = "Profiles, the user directory, roles and statuses."),
        (name = "friends", description = "Mutual friendships."),
        (name = "avatars", description = "Avatar images: uploads, views and removal."),
        (name = "oauth", description = "Sign-in with third-party providers, and linked identities."),
        (name = "chat", description = "Conversations, and tickets for the chat WebSocket."),
    )
)]
struct Base;

/// Fields of which a request takes exactly one, or at most one (a `null` counts as absent).
const CHOICES: &[(&str, Choice, &[&str])] = &[
    ("LoginRequest", Choice::ExactlyOne, &["email", "username", "phone"]),
    ("LoginRequest", Choice::AtMostOne, &["totp_code", "recovery_code", "email_code"]),
    ("UnlockRequest", Choice::ExactlyOne, &["email", "username", "phone"]),
    ("EmailCodeRequest", Choice::ExactlyOne, &["email", "username"]),
    ("EmailCodesSetting", Choice::AtMostOne, &["totp_code", "email_code"]),
    ("UpdateProfileRequest", Choice::AtMostOne, &["totp_code", "email_code"]),
    ("ProviderSignInRequest", Choice::ExactlyOne, &["id_token", "access_token"]),
    ("ProviderSignInRequest", Choice::AtMostOne, &["access_token", "nonce"]),
    ("ProviderSignInRequest", Choice::AtMostOne, &["totp_code", "recovery_code", "email_code"]),
    ("ExchangeRequest", Choice::AtMostOne, &["totp_code", "recovery_code", "email_code"]),
    ("LinkRequest", Choice::ExactlyOne, &["id_token", "access_token"]),
    ("LinkRequest", Choice::AtMostOne, &["access_token", "nonce"]),
];

/// Properties that always hold one value: they tell the alternatives of an answer apart.
const CONSTANTS: &[(&str, &str, bool)] = &[
    ("ActiveToken", "active", true),
    ("InactiveToken", "active", false),
    ("VerificationRequired", "verification_required", true),
];

#[derive(Clone, Copy)]
enum Choice {
    ExactlyOne,
    AtMostOne,
}

/// The document, as JSON.
pub fn document() -> Value {
    let mut api = Base::openapi();
    for slice in [
        sessions::Api::openapi(),
        mfa::Api::openapi(),
        account::Api::openapi(),
        directory::Api::openapi(),
        friends::Api::openapi(),
        avatars::Api::openapi(),
        providers::Api::openapi(),
        chat::Api::openapi(),
    ] {
        api.merge(slice);
    }
    let mut document = serde_json::to_value(&api).expect("the document serialises");
    document["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from register, login, refresh or a provider sign-in.",
        }
    });
    for (function, method, path) in functions::table() {
        let operation = &mut document["paths"][path][method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{method} {path} is routed but has no #[utoipa::path]");
        operation["x-latchkey-function"] = function.name().into();
        operation["responses"]["default"] = json!({
            "description": "An error.",
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
        });
    }
    add_extra_schemas(&mut document);
    for (schema, property, value) in CONSTANTS {
        let property = &mut document["components"]["schemas"][*schema]["properties"][*property];
        assert!(property.is_object(), "{schema} has no property {property}");
        property["const"] = (*value).into();
    }
    for (schema, choice, fields) in CHOICES {
        let schema = &mut document["components"]["schemas"][*schema];
        assert!(schema.is_object(), "{schema} is not a schema of the document");
        let key = match choice {
            Choice::ExactlyOne => "oneOf",
            Choice::AtMostOne => "anyOf",
        };
        let alternatives = choose(*choice, fields);
        // Several choices on one schema: each must hold.
        match schema.get(key) {
            None => schema[key] = alternatives,
            Some(_) => {
                let all = schema.as_object_mut().expect("an object").entry("allOf").or_insert_with(|| json!([]));
                all.as_array_mut().expect("allOf is a list").push(json!({ key: alternatives }));
            }
        }
    }
    document
}

/// A profile's `extra` object as `Extra::parse` takes it: no empty keys, and numbers DynamoDB
/// can store (0, or a magnitude from 1e-130 to below 1e126), at every depth. Its size (4096
/// bytes of JSON) and depth (32) have no JSON Schema keyword; the description states them.
fn add_extra_schemas(document: &mut Value) {
    let schemas = &mut document["components"]["schemas"];
    schemas["Extra"] = json!({
        "type": "object",
        "description": "A free-form JSON object of at most 4096 bytes, nested at most 32 levels deep.",
        "propertyNames": { "minLength": 1 },
        "additionalProperties": { "$ref": "#/components/schemas/ExtraValue" },
    });
    schemas["ExtraValue"] = json!({
        "anyOf": [
            { "type": ["string", "boolean", "null"] },
            { "const": 0 },
            { "type": "number", "minimum": 1e-130, "exclusiveMaximum": 1e126 },
            { "type": "number", "maximum": -1e-130, "exclusiveMinimum": -1e126 },
            { "type": "array", "items": { "$ref": "#/components/schemas/ExtraValue" } },
            { "$ref": "#/components/schemas/Extra" },
        ],
    });
    let extra = json!({ "$ref": "#/components/schemas/Extra" });
    for (schema, nullable) in [("UserBody", false), ("UpdateProfileRequest", true)] {
        let property = &mut schemas[schema]["properties"]["extra"];
        let description = property["description"].clone();
        *property = match nullable {
            true => json!({ "description": description, "oneOf": [{ "type": "null" }, extra] }),
            false => json!({ "description": description, "allOf": [extra] }),
        };
    }
}

/// The alternatives of a choice among `fields`: each one given (not null) with the others
/// absent or null, and for `AtMostOne` also none given.
fn choose(choice: Choice, fields: &[&str]) -> Value {
    let only = |given: Option<&str>| {
        let mut properties = Map::new();
        for field in fields {
            let schema =
                if Some(*field) == given { json!({ "not": { "type": "null" } }) } else { json!({ "type": "null" }) };
            properties.insert((*field).to_owned(), schema);
        }
        let mut alternative = json!({ "properties": properties });
        if let Some(field) = given {
            alternative["required"] = json!([field]);
        }
        alternative
    };
    let mut alternatives: Vec<Value> = fields.iter().map(|field| only(Some(field))).collect();
    if let Choice::AtMostOne = choice {
        alternatives.push(only(None));
    }
    Value::Array(alternatives)
}

/// The document as `openapi.yaml` holds it: its sections in the usual order, the rest sorted.
pub fn yaml() -> String {
    let document = serde_norway::to_value(document()).expect("the document converts");
    let serde_norway::Value::Mapping(mut sections) = document else { unreachable!("the document is an object") };
    let mut ordered = serde_norway::Mapping::new();
    for key in ["openapi", "info", "tags", "paths", "components"] {
        if let Some(value) = sections.remove(key) {
            ordered.insert(key.into(), value);
        }
    }
    ordered.extend(sections);
    serde_norway::to_string(&ordered).expect("the document serialises as YAML")
}
