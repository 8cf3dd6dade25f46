//! Output files as table rows, Pachyderm's rules (`sdata.CSVParser`, `sdata.JSONParser`):
//!
//! - **CSV** (RFC 4180: `,` separated, `"` quoted, `""` a quote, CRLF or LF; blank lines
//!   skipped). An unquoted empty field is NULL, a quoted one (`""`) the empty string. Without
//!   `columns` there is no header and each row has exactly the table's columns, in table
//!   order. With `columns` each file starts with a header row of as many names, each one of
//!   `columns`; the values go to the columns the header names.
//! - **JSON**: a stream of objects, one per row; the value of key `c` goes to column `c` for
//!   each of `columns` (our superset: every table column when `columns` is empty, where
//!   Pachyderm refuses the file); a missing key or `null` is NULL; strings as they are,
//!   numbers and booleans as written, arrays and objects as JSON text.
//!
//! Rows are handed on as CSV lines for PostgreSQL's `COPY ... (FORMAT csv)`, which converts
//! each text to its column's type, so no value is buffered beyond its row.

use std::io::{BufRead, Read};

/// One row: a value (`None` is NULL) per column.
pub(crate) type Row = Vec<Option<String>>;

/// A streaming RFC 4180 reader.
pub(crate) struct CsvRows<R> {
    input: R,
    line: u64,
}

impl<R: BufRead> CsvRows<R> {
    /// Reads CSV from `input`.
    pub(crate) fn new(input: R) -> Self {
        CsvRows { input, line: 0 }
    }

    /// The next record; `None` at the end. Errors name the line.
    pub(crate) fn next_record(&mut self) -> Option<Result<Row, String>> {
        loop {
            let mut raw = Vec::new();
            match self.input.read_until(b'\n', &mut raw) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(format!("reading line {}: {e}", self.line + 1))),
            }
            self.line += 1;
            let start = self.line;
            if is_blank(&raw) {
                continue;
            }
            // A quoted field may span lines: read on while a quote is open.
            while open_quote(&raw) {
                match self.input.read_until(b'\n', &mut raw) {
                    Ok(0) => {
                        return Some(Err(format!(
                            "line {start}: a quoted field is not closed before the end of the file"
                        )));
                    }
                    Ok(_) => self.line += 1,
                    Err(e) => return Some(Err(format!("reading line {}: {e}", self.line + 1))),
                }
            }
            self.line = start.max(self.line);
            let text = match String::from_utf8(raw) {
                Ok(t) => t,
                Err(_) => return Some(Err(format!("line {start}: not UTF-8"))),
            };
            return Some(split_record(&text).map_err(|e| format!("line {start}: {e}")));
        }
    }
}

fn is_blank(raw: &[u8]) -> bool {
    raw.iter().all(|b| *b == b'\n' || *b == b'\r')
}

/// Whether `raw` ends inside a quoted field.
fn open_quote(raw: &[u8]) -> bool {
    raw.iter().filter(|b| **b == b'"').count() % 2 == 1
}

/// One record's fields (line end removed).
fn split_record(text: &str) -> Result<Row, String> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            }
            fields.push(Some(value));
            match chars.next() {
                None => return Ok(fields),
                Some(',') => continue,
                Some(c) => {
                    return Err(format!(
                        "{c:?} after a closing quote (expected , or the line end)"
                    ));
                }
            }
        }
        let mut value = String::new();
        let mut ended = true;
        for c in chars.by_ref() {
            if c == ',' {
                ended = false;
                break;
            }
            if c == '"' {
                return Err("a quote inside an unquoted field".into());
            }
            value.push(c);
        }
        fields.push((!value.is_empty()).then_some(value));
        if ended {
            return Ok(fields);
        }
    }
}

/// The values of one JSON row for `columns`.
pub(crate) fn json_row(value: &serde_json::Value, columns: &[String]) -> Result<Row, String> {
    let serde_json::Value::Object(map) = value else {
        return Err(format!("expected an object per row, got {}", kind(value)));
    };
    Ok(columns
        .iter()
        .map(|c| map.get(c).and_then(json_text))
        .collect())
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// A stream of JSON values read one at a time.
pub(crate) fn json_values<R: Read>(
    input: R,
) -> impl Iterator<Item = Result<serde_json::Value, String>> {
    serde_json::Deserializer::from_reader(input)
        .into_iter::<serde_json::Value>()
        .map(|v| v.map_err(|e| format!("line {}: {e}", e.line())))
}

/// Appends `row` to `out` as one CSV line for `COPY (FORMAT csv)`: NULL unquoted and empty,
/// every other value quoted (so an empty string stays one).
pub(crate) fn encode_copy_line(row: &Row, out: &mut Vec<u8>) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(v) = v {
            out.push(b'"');
            for b in v.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        }
    }
    out.push(b'\n');
}

/// Which table columns a CSV header fills: each header name must be one of `columns`
/// (Pachyderm: "unexpected header column"), and a column of the table.
pub(crate) fn header_columns(
    header: &Row,
    columns: &[String],
    table: &[String],
) -> Result<Vec<String>, String> {
    if header.len() != columns.len() {
        return Err(format!(
            "the header has {} fields, file_format.columns {}",
            header.len(),
            columns.len()
        ));
    }
    header
        .iter()
        .map(|h| {
            let h = h.as_deref().unwrap_or_default();
            if !columns.iter().any(|c| c == h) {
                return Err(format!(
                    "unexpected header column {h:?} (file_format.columns: {})",
                    columns.join(", ")
                ));
            }
            table_column(h, table)
        })
        .collect()
}

/// The table's spelling of column `name` (matched case-insensitively, as Pachyderm's
/// information-schema lookup does).
pub(crate) fn table_column(name: &str, table: &[String]) -> Result<String, String> {
    table
        .iter()
        .find(|t| t.eq_ignore_ascii_case(name))
        .cloned()
        .ok_or_else(|| {
            format!(
                "column {name:?} is not in the table (its columns: {})",
                table.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<Result<Row, String>> {
        let mut r = CsvRows::new(text.as_bytes());
        std::iter::from_fn(|| r.next_record()).collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn csv_quotes_nulls_and_line_ends() {
        let rows = all("1,a,\"b,c\"\r\n\n2,,\"\"\n3,\"x\"\"y\",\"multi\nline\"");
        let rows: Vec<Row> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows[0], [s("1"), s("a"), s("b,c")]);
        assert_eq!(rows[1], [s("2"), None, s("")]);
        assert_eq!(rows[2], [s("3"), s("x\"y"), s("multi\nline")]);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let rows = all("1,2\n3,\"4\n");
        assert_eq!(rows[0], Ok(vec![s("1"), s("2")]));
        assert!(
            rows[1].as_ref().unwrap_err().starts_with("line 2:"),
            "{rows:?}"
        );
        let rows = all("a\"b\"c\n");
        assert!(
            rows[0].as_ref().unwrap_err().contains("quote inside"),
            "{rows:?}"
        );
    }

    #[test]
    fn json_rows_take_their_columns_by_key() {
        let cols = vec!["id".to_string(), "name".to_string(), "tags".to_string()];
        let values: Vec<_> = json_values(
            r#"{"id": 1, "name": "a"} {"id": 2, "name": null, "tags": [1]}"#.as_bytes(),
        )
        .map(Result::unwrap)
        .collect();
        assert_eq!(json_row(&values[0], &cols).unwrap(), [s("1"), s("a"), None]);
        assert_eq!(
            json_row(&values[1], &cols).unwrap(),
            [s("2"), None, s("[1]")]
        );
        assert!(json_row(&serde_json::json!([1]), &cols).is_err());
    }

    #[test]
    fn copy_lines_keep_nulls_apart_from_empty_strings() {
        let mut out = Vec::new();
        encode_copy_line(&vec![s("a\"b"), None, s("")], &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\"\"b\",,\"\"\n");
    }

    #[test]
    fn headers_map_to_table_columns() {
        let table = vec!["id".to_string(), "Name".to_string()];
        let cols = vec!["id".to_string(), "name".to_string()];
        let got = header_columns(&vec![s("name"), s("id")], &cols, &table).unwrap();
        assert_eq!(got, ["Name", "id"]);
        assert!(header_columns(&vec![s("x"), s("id")], &cols, &table).is_err());
        assert!(header_columns(&vec![s("id")], &cols, &table).is_err());
    }
}
