//! One JSON object per line: connections, or sockets.

use std::io::{self, Write};

use serde::Serialize;

/// Writes each item as one line of JSON.
pub fn write<T: Serialize>(out: &mut dyn Write, items: impl IntoIterator<Item = T>) -> io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, &item)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line() {
        let mut out = Vec::new();
        write(&mut out, [serde_json::json!({"a": 1}), serde_json::json!({"b": [2]})]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n{\"b\":[2]}\n");
    }
}
