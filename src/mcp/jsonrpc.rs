//! JSON-RPC 2.0 framing for `/mcp`, read once per request: a parser that
//! refuses duplicate member names at any depth (RFC 8259 §4 leaves them
//! undefined; rmcp's typed parse would reject them with a non-JSON 415), the
//! envelope checks of JSON-RPC 2.0 §4, and the one error body every refusal
//! made before rmcp uses.

use std::borrow::Cow;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

/// A JSON-RPC error answered before rmcp sees the message (JSON-RPC 2.0
/// §5.1), with the HTTP status it travels with when it is the whole answer.
#[derive(Debug, Clone)]
pub struct JsonRpcError {
    pub status: StatusCode,
    /// The request's id; `null` when it could not be read.
    pub id: Value,
    pub code: i64,
    pub message: Cow<'static, str>,
    pub data: Option<Value>,
}

impl JsonRpcError {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const INVALID_PARAMS: i64 = -32602;
    /// The implementation-defined server error range of JSON-RPC 2.0 §5.1.
    pub const SERVER_ERROR: i64 = -32000;

    pub fn new(
        status: StatusCode,
        id: Value,
        code: i64,
        message: impl Into<Cow<'static, str>>,
    ) -> JsonRpcError {
        JsonRpcError {
            status,
            id,
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> JsonRpcError {
        self.data = Some(data);
        self
    }

    /// The error object as one message, e.g. an element of a batch answer.
    pub fn to_value(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": self.id, "error": error })
    }
}

impl IntoResponse for JsonRpcError {
    fn into_response(self) -> Response {
        (self.status, Json(self.to_value())).into_response()
    }
}

/// What one message is, after the envelope checks.
#[derive(Debug)]
pub enum Envelope {
    /// A request: it has an `id` and expects an answer.
    Request {
        id: Value,
        method: String,
        /// For `tools/call`: the tool it names.
        tool: Option<String>,
    },
    /// A notification: no `id`, no answer (JSON-RPC 2.0 §4.1).
    Notification,
    /// A response or error from the client to a server request.
    Response,
}

/// Parses a body as JSON, refusing duplicate member names at any depth.
///
/// # Errors
/// `-32700` for text that is not JSON; `-32600` for a duplicate name.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonRpcError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Checked::deserialize(&mut deserializer).and_then(|v| {
        deserializer.end()?;
        Ok(v.0)
    });
    parsed.map_err(|e| {
        if e.to_string().starts_with(DUPLICATE) {
            JsonRpcError::new(
                StatusCode::BAD_REQUEST,
                Value::Null,
                JsonRpcError::INVALID_REQUEST,
                format!("Invalid Request: {e}."),
            )
        } else {
            JsonRpcError::new(
                StatusCode::BAD_REQUEST,
                Value::Null,
                JsonRpcError::PARSE_ERROR,
                "Parse error: the body is not valid JSON.",
            )
        }
    })
}

const DUPLICATE: &str = "duplicate member name";

/// A JSON value whose objects had no repeated member names.
struct Checked(Value);

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor).map(Checked)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Checked::deserialize(d).map(|c| c.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Checked(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE} {key:?}")));
            }
            let Checked(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Checks one message's envelope (JSON-RPC 2.0 §4, §5). `method` is read
/// after JSON decoding, so an escaped spelling such as `tools\/call` is
/// still `tools/call`.
///
/// # Errors
/// `-32600` for a message that is not a JSON-RPC 2.0 request, notification
/// or response; `-32602` (HTTP 200, a request error) for `tools/call`
/// without a string `name` or with `arguments` that are not an object.
pub fn envelope(message: &Value) -> Result<Envelope, JsonRpcError> {
    let bad = |id: Value, text: &'static str| {
        JsonRpcError::new(
            StatusCode::BAD_REQUEST,
            id,
            JsonRpcError::INVALID_REQUEST,
            text,
        )
    };
    let Value::Object(message) = message else {
        return Err(bad(
            Value::Null,
            "Invalid Request: the body must be a JSON-RPC message object.",
        ));
    };
    let id = message.get("id").cloned();
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(
            id.unwrap_or(Value::Null),
            "Invalid Request: \"jsonrpc\" must be \"2.0\".",
        ));
    }
    match (message.get("method"), id) {
        // MCP basic protocol: "Requests MUST include a string or integer ID".
        (Some(Value::String(_)), Some(id)) if !(id.is_string() || id.is_i64()) => Err(bad(
            id,
            "Invalid Request: the id must be a string or an integer.",
        )),
        (Some(Value::String(method)), Some(id)) => {
            let tool = if method == "tools/call" {
                let params = message.get("params").and_then(Value::as_object);
                let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str);
                let arguments_ok = params
                    .and_then(|p| p.get("arguments"))
                    .is_none_or(|a| a.is_object() || a.is_null());
                match tool {
                    Some(tool) if arguments_ok => Some(tool.to_owned()),
                    _ => {
                        return Err(JsonRpcError::new(
                            StatusCode::OK,
                            id,
                            JsonRpcError::INVALID_PARAMS,
                            "Invalid params: tools/call needs \"name\" (a string) and optional \"arguments\" (an object).",
                        ));
                    }
                }
            } else {
                None
            };
            Ok(Envelope::Request {
                id,
                method: method.clone(),
                tool,
            })
        }
        (Some(Value::String(_)), None) => Ok(Envelope::Notification),
        (Some(_), id) => Err(bad(
            id.unwrap_or(Value::Null),
            "Invalid Request: \"method\" must be a string.",
        )),
        (None, _) if message.contains_key("result") || message.contains_key("error") => {
            Ok(Envelope::Response)
        }
        (None, id) => Err(bad(
            id.unwrap_or(Value::Null),
            "Invalid Request: a message needs a \"method\", or a \"result\" or \"error\".",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_at_any_depth() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}"#,
            r#"[{"a":1},{"b":[{"c":1,"c":1}]}]"#,
        ] {
            let e = parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.code, JsonRpcError::INVALID_REQUEST, "{body}");
        }
        assert_eq!(
            parse(b"{\"a\":").unwrap_err().code,
            JsonRpcError::PARSE_ERROR
        );
        assert_eq!(parse(b"{} {}").unwrap_err().code, JsonRpcError::PARSE_ERROR);
        let v = parse(br#"{"a":{"b":[1,2.5,"x",null,true]},"c":-3}"#).unwrap();
        assert_eq!(v, json!({"a":{"b":[1,2.5,"x",null,true]},"c":-3}));
    }

    #[test]
    fn envelopes_are_classified() {
        let request =
            json!({"jsonrpc":"2.0","id":"a","method":"tools\u{2f}call","params":{"name":"t"}});
        assert!(matches!(
            envelope(&request),
            Ok(Envelope::Request { tool: Some(t), .. }) if t == "t"
        ));
        assert!(matches!(
            envelope(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Ok(Envelope::Notification)
        ));
        assert!(matches!(
            envelope(&json!({"jsonrpc":"2.0","id":1,"result":{}})),
            Ok(Envelope::Response)
        ));
        for bad in [
            json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":5}),
            json!({"jsonrpc":"2.0","id":1}),
            json!([1]),
        ] {
            assert_eq!(
                envelope(&bad).unwrap_err().code,
                JsonRpcError::INVALID_REQUEST,
                "{bad}"
            );
        }
        let e =
            envelope(&json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":3}}))
                .unwrap_err();
        assert_eq!(
            (e.code, e.id, e.status),
            (JsonRpcError::INVALID_PARAMS, json!(7), StatusCode::OK)
        );
    }
}
