//! Moving a Service between the handlers' JSON and the typed `k8s_openapi` Service the
//! webhook crate's defaulting works on, without disturbing the client's key order.

use k8s_openapi::api::core::v1::Service;
use serde_json::Value;
use svcplane_rules::{decode, Kind};

use crate::error::ApiError;

/// Decodes a Service body (Go zero values filled in the way the webhook crate decodes them).
///
/// Errors: 400 naming the field, like kube-apiserver's decoder.
pub fn decode_service(obj: &Value) -> Result<Service, ApiError> {
    decode::<Service>(Kind::Service, obj.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "Service in version \"v1\" cannot be handled as a Service: {e}"
        ))
    })
}

/// Writes the typed Service's `spec` back into `obj`, keeping the order of keys the client
/// sent and appending keys that defaulting or allocation added.
pub fn write_spec(obj: &mut Value, svc: &Service) {
    let spec = serde_json::to_value(svc.spec.clone().unwrap_or_default())
        .unwrap_or_else(|_| Value::Object(Default::default()));
    if !obj["spec"].is_object() {
        obj["spec"] = Value::Object(Default::default());
    }
    merge_ordered(&mut obj["spec"], spec);
}

/// Makes `target` equal to `source` while keeping `target`'s key order: keys missing from
/// `source` are removed, existing keys are updated in place, new keys are appended.
pub fn merge_ordered(target: &mut Value, source: Value) {
    match (target, source) {
        (Value::Object(t), Value::Object(mut s)) => {
            t.retain(|k, _| s.contains_key(k));
            for (k, v) in t.iter_mut() {
                if let Some(sv) = s.remove(k) {
                    merge_ordered(v, sv);
                }
            }
            for (k, v) in s {
                t.insert(k, v);
            }
        }
        (Value::Array(t), Value::Array(s)) if t.len() == s.len() => {
            for (tv, sv) in t.iter_mut().zip(s) {
                merge_ordered(tv, sv);
            }
        }
        (t, s) => *t = s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_client_order_and_appends_new_keys() {
        let mut target = json!({"ports": [{"port": 80}], "selector": {"app": "x"}, "bogus": 1});
        let source = json!({"selector": {"app": "x"}, "ports": [{"port": 80, "protocol": "TCP"}], "type": "ClusterIP"});
        merge_ordered(&mut target, source);
        assert_eq!(
            target.to_string(),
            r#"{"ports":[{"port":80,"protocol":"TCP"}],"selector":{"app":"x"},"type":"ClusterIP"}"#
        );
    }

    #[test]
    fn decode_error_names_the_field() {
        let err =
            decode_service(&json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": "x"}}))
                .unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("spec.ports"), "{}", err.message);
    }
}
