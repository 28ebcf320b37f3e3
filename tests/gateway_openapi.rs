//! OpenAPI import over real public documents (copied unmodified from the shared set into `tests/fixtures/openapi/`) and a
//! generated large one: every operation becomes a tool whose name and
//! schemas MCP clients accept, and whose schemas compile.

#[path = "common/openapi_gen.rs"]
mod openapi_gen;

use std::path::PathBuf;

use portcullis::gateway::{
    openapi::{self, Filter},
    schema::ArgumentSchema,
};
use serde_json::{Map, Value};

fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi")
        .join(name)
}

/// What the MCP schema's `Tool` definition requires of `inputSchema` and
/// `outputSchema`: an object schema (`type: "object"`) whose `properties`
/// is an object of objects and `required` a list of strings; plus a valid
/// Draft 2020-12 schema, checked by compiling it.
fn check_tool_schema(tool: &str, which: &str, schema: &Map<String, Value>) {
    assert_eq!(schema["type"], "object", "{tool} {which}");
    if let Some(p) = schema.get("properties") {
        let p = p
            .as_object()
            .unwrap_or_else(|| panic!("{tool} {which}: properties"));
        assert!(
            p.values().all(|v| v.is_object() || v.is_boolean()),
            "{tool} {which}"
        );
    }
    if let Some(r) = schema.get("required") {
        assert!(
            r.as_array().unwrap().iter().all(Value::is_string),
            "{tool} {which}"
        );
    }
    ArgumentSchema::compile(schema).unwrap_or_else(|e| panic!("{tool} {which}: {e}"));
}

fn import_all(doc: &Value, expected: usize, label: &str) -> openapi::Imported {
    let imported = openapi::import(doc, &Filter::default()).unwrap();
    let mut names = std::collections::HashSet::new();
    for op in &imported.operations {
        assert!(
            !op.name.is_empty()
                && op.name.len() <= 64
                && op
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{label}: bad tool name {:?}",
            op.name
        );
        assert!(
            names.insert(op.name.clone()),
            "{label}: duplicate {}",
            op.name
        );
        assert!(!op.description.trim().is_empty(), "{label}: {}", op.name);
        assert!(!op.path.contains('#'), "{label}: {}", op.path);
        check_tool_schema(&op.name, "inputSchema", &op.input_schema);
        if let Some(out) = &op.output_schema {
            check_tool_schema(&op.name, "outputSchema", out);
        }
    }
    assert_eq!(
        imported.operations.len() + imported.skipped.len(),
        expected,
        "{label}: skipped {:?}",
        imported.skipped
    );
    imported
}

#[test]
fn box_platform_api_imports_every_operation() {
    let text = std::fs::read_to_string(shared("box-openapi.json")).unwrap();
    let doc = openapi::parse_document(&text).unwrap();
    let imported = import_all(&doc, 296, "box");
    // Multipart and binary uploads cannot be forwarded as JSON: listed, not failed.
    assert!(imported.skipped.len() <= 6, "{:?}", imported.skipped);
    // A `#fragment` path key keeps its fragment out of the forwarded path.
    let shared_link = imported
        .operations
        .iter()
        .find(|o| o.id == "put_files_id#add_shared_link")
        .expect("operation present");
    assert_eq!(shared_link.path, "/files/{file_id}");
    assert!(shared_link.name.len() <= 64);
    // An 82-character operationId is shortened, stably.
    let long = "put_metadata_templates_enterprise_securityClassification-6VMVochwUWo_schema#update";
    let op = imported.operations.iter().find(|o| o.id == long).unwrap();
    assert!(op.name.len() <= 64, "{}", op.name);
    let again = import_all(&doc, 296, "box");
    let op2 = again.operations.iter().find(|o| o.id == long).unwrap();
    assert_eq!(op.name, op2.name);
}

#[test]
fn iceberg_3_1_with_cycles_and_integer_response_codes_imports() {
    let text = std::fs::read_to_string(shared("iceberg-rest-catalog-open-api.yaml")).unwrap();
    let doc = openapi::parse_document(&text).unwrap();
    let imported = import_all(&doc, 35, "iceberg");
    // HEAD existence checks are read tools.
    let head = imported
        .operations
        .iter()
        .find(|o| o.method == portcullis::gateway::catalog::Method::Head)
        .expect("a HEAD operation");
    assert_eq!(head.scope, portcullis::identity::scope::Scope::McpRead);
    // Output schemas come from 2xx object responses (YAML `200:` keys are integers).
    assert!(
        imported
            .operations
            .iter()
            .any(|o| o.output_schema.is_some())
    );
}

#[test]
fn overseerr_without_operation_ids_names_tools_by_method_and_path() {
    let text = std::fs::read_to_string(shared("overseerr-api.yml")).unwrap();
    let doc = openapi::parse_document(&text).unwrap();
    let imported = import_all(&doc, 170, "overseerr");
    let names: Vec<&str> = imported
        .operations
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert!(names.contains(&"get_settings_main"), "{names:?}");
    assert!(names.contains(&"delete_user_user_id"), "{names:?}");
    let post = imported
        .operations
        .iter()
        .find(|o| o.id == "POST /request/{requestId}/{status}")
        .unwrap();
    assert_eq!(post.path_params, ["requestId", "status"]);
    // No known verb: the HTTP method decides.
    assert_eq!(post.scope, portcullis::identity::scope::Scope::McpWrite);
    let delete = imported
        .operations
        .iter()
        .find(|o| o.name == "delete_user_user_id")
        .unwrap();
    assert_eq!(delete.scope, portcullis::identity::scope::Scope::McpAdmin);
    assert!(delete.destructive);
}

#[test]
fn a_generated_document_of_400_operations_with_cycles_imports() {
    let doc = openapi_gen::large_document(400);
    let imported = import_all(&doc, 400, "generated");
    let create = imported
        .operations
        .iter()
        .find(|o| o.name == "create_item7")
        .unwrap();
    // The object body's properties are top-level arguments; readOnly ones are not.
    let props = create.input_schema["properties"].as_object().unwrap();
    assert!(
        props.contains_key("name") && !props.contains_key("id"),
        "{props:?}"
    );
    assert_eq!(create.input_schema["required"], serde_json::json!(["name"]));
    let schema = ArgumentSchema::compile(&create.input_schema).unwrap();
    let ok = serde_json::json!({
        "name": "a", "email": null, "size": 1,
        "parent": { "name": "p", "parent": null },
        "children": [{ "name": "c", "children": [] }],
        "kind": { "custom": "x", "of": { "custom": "y" } },
        "tags": [["ab"]]
    });
    assert_eq!(schema.validate(&ok), Ok(()));
    for (bad, field) in [
        (serde_json::json!({ "name": "" }), "name"),
        (serde_json::json!({ "name": "a", "size": 0 }), "size"),
        (serde_json::json!({ "name": "a", "email": "nope" }), "email"),
        (
            serde_json::json!({ "name": "a", "tags": [["A"]] }),
            "tags[0][0]",
        ),
        (
            serde_json::json!({ "name": "a", "children": [{}] }),
            "children[0].name is required",
        ),
    ] {
        let err = schema.validate(&bad).unwrap_err();
        assert!(err.contains(field), "{bad}: {err}");
    }
    let get = imported
        .operations
        .iter()
        .find(|o| o.id == "GET /items3/{itemId}")
        .unwrap();
    assert_eq!(get.name, "get_items3_item_id");
    assert!(get.output_schema.is_some());
}
