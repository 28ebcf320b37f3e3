//! A generated OpenAPI 3.0 document of `operations` operations (a multiple
//! of 4) with what real documents contain: `$ref` cycles, `oneOf`, `allOf`,
//! `nullable`, formats, path, query and header parameters, request bodies
//! and object responses. Shared by the import tests and the bench.

use serde_json::{Value, json};

pub fn large_document(operations: usize) -> Value {
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    for i in 0..operations / 4 {
        schemas.insert(
            format!("Item{i}"),
            json!({
                "type": "object",
                "required": ["name"],
                "properties": {
                    "id": { "type": "string", "format": "uuid", "readOnly": true },
                    "name": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "email": { "type": "string", "format": "email", "nullable": true },
                    "created": { "type": "string", "format": "date-time" },
                    "size": { "type": "integer", "format": "int64", "minimum": 0, "exclusiveMinimum": true },
                    "parent": { "allOf": [{ "$ref": format!("#/components/schemas/Item{i}") }], "nullable": true },
                    "children": { "type": "array", "items": { "$ref": format!("#/components/schemas/Item{}", (i + 1) % (operations / 4)) } },
                    "kind": { "oneOf": [
                        { "type": "string", "enum": ["a", "b"] },
                        { "$ref": "#/components/schemas/Kind" }
                    ] },
                    "tags": { "type": "array", "items": { "type": "array", "items": { "type": "string", "pattern": "^[a-z]+$" } } }
                }
            }),
        );
        paths.insert(
            format!("/items{i}"),
            json!({
                "get": {
                    "operationId": format!("listItems{i}"),
                    "summary": "List items.",
                    "parameters": [
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } },
                        { "name": "X-Request-Id", "in": "header", "schema": { "type": "string" } }
                    ],
                    "responses": { "200": { "description": "ok", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/Item{i}") } } }
                    } } } } }
                },
                "post": {
                    "operationId": format!("createItem{i}"),
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/Item{i}") } } } },
                    "responses": { "201": { "description": "ok", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/Item{i}") } } } } }
                }
            }),
        );
        paths.insert(
            format!("/items{i}/{{itemId}}"),
            json!({
                "parameters": [{ "name": "itemId", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }],
                "get": {
                    "summary": "Get one item.",
                    "responses": { "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/Item{i}") } } } } }
                },
                "delete": { "operationId": format!("deleteItem{i}"), "responses": { "204": { "description": "gone" } } }
            }),
        );
    }
    schemas.insert(
        "Kind".into(),
        json!({ "type": "object", "properties": { "custom": { "type": "string" }, "of": { "$ref": "#/components/schemas/Kind" } } }),
    );
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Generated", "version": "1" },
        "paths": paths,
        "components": { "schemas": schemas }
    })
}
