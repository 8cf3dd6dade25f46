//! RFC 7386 JSON merge patch: how defaults and a spec are layered into one document.
//!
//! Written here rather than taken from a crate: the algorithm is a dozen lines, the
//! `json-patch` crate would add a dependency to the sans-I/O core for one function, and this
//! version works in place on values the caller already owns.

use serde_json::Value;

/// Applies `patch` to `target` as an RFC 7386 merge patch: an object patch merges key by key
/// (a `null` value removes the key, any other value is merged recursively); anything else
/// (an array, a string, a number, a boolean, `null`) replaces the target whole. Lists are
/// therefore never merged element by element.
///
/// ```
/// use pipeline_core::spec::merge_patch;
/// use serde_json::json;
/// let mut target = json!({"transform": {"image": "python:3.12", "env": {"A": "1"}},
///                         "datum_tries": 5, "tolerations": [{"key": "a"}]});
/// merge_patch(&mut target, json!({"transform": {"env": {"B": "2"}}, "datum_tries": null,
///                                 "tolerations": []}));
/// assert_eq!(target, json!({"transform": {"image": "python:3.12", "env": {"A": "1", "B": "2"}},
///                           "tolerations": []}));
/// ```
pub fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(fields) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            fields.remove(&key);
        } else {
            merge_patch(fields.entry(key).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut t = target;
        merge_patch(&mut t, patch);
        t
    }

    /// The examples of RFC 7386 appendix A.
    #[test]
    fn rfc_7386_appendix_a() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let got = merged(target.clone(), patch.clone());
            assert_eq!(got, want, "{target} patched with {patch}");
        }
    }

    #[test]
    fn null_removes_arrays_replace_objects_merge() {
        let defaults = json!({
            "resource_requests": {"cpu": 1, "memory": "1G"},
            "transform": {"image": "python:3.12", "env": {"A": "1"}},
            "tolerations": [{"key": "gpu"}, {"key": "spot"}],
            "datum_tries": 5
        });
        let spec = json!({
            "resource_requests": {"memory": "2G"},
            "transform": {"cmd": ["python3"], "env": {"A": null, "B": "2"}},
            "tolerations": [{"key": "arm"}],
            "datum_tries": null
        });
        assert_eq!(
            merged(defaults, spec),
            json!({
                "resource_requests": {"cpu": 1, "memory": "2G"},
                "transform": {"image": "python:3.12", "cmd": ["python3"], "env": {"B": "2"}},
                "tolerations": [{"key": "arm"}]
            })
        );
    }

    #[test]
    fn a_patch_never_leaves_nulls_behind() {
        let got = merged(json!({}), json!({"a": {"b": null, "c": {"d": null}}}));
        assert_eq!(got, json!({"a": {"c": {}}}));
    }
}
