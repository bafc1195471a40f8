//! One JSON object per line.

use serde::Serialize;

/// Appends `item` as one line of JSON.
pub fn line<T: Serialize>(buf: &mut Vec<u8>, item: &T) {
    serde_json::to_writer(&mut *buf, item).expect("records serialize to JSON");
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line() {
        let mut out = Vec::new();
        line(&mut out, &serde_json::json!({"a": 1}));
        line(&mut out, &serde_json::json!({"b": [2]}));
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n{\"b\":[2]}\n");
    }
}
