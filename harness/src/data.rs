//! Per-connection data (`--data FILE`): one record per client, from a CSV file with a header
//! line or from JSON Lines (one object per line), for the `{field}` placeholders of URLs,
//! headers, the CONNECT auth and emit arguments (docs/TESTING-YOUR-SERVER.md).
//!
//! Receives the file's bytes (read here, bounded by [`MAX_DATA_BYTES`]). Emits a [`Data`]:
//! the field names and the records, client `i` taking record `i` (wrapping around, or with
//! `--data-mode unique` refusing a plan with more clients than records), or a message naming
//! the line and the field of the first problem.
//! Must not: show a value anywhere: not in its messages, not in `Debug` (values are often
//! credentials; docs/results-format.md, "Per-connection data").

use std::io::Read;
use std::path::Path;

/// Largest data file read (bytes).
pub const MAX_DATA_BYTES: u64 = 64 << 20;
/// Most records a data file may hold.
pub const MAX_RECORDS: usize = 1_000_000;
/// Most fields per record.
pub const MAX_FIELDS: usize = 64;
/// Longest value (bytes).
pub const MAX_VALUE_BYTES: usize = 8192;

/// How clients take records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DataMode {
    /// Client `i` takes record `i mod records`.
    #[default]
    Wrap,
    /// Client `i` takes record `i`; a plan with more clients than records is refused.
    Unique,
}

impl DataMode {
    pub fn name(self) -> &'static str {
        match self {
            DataMode::Wrap => "wrap",
            DataMode::Unique => "unique",
        }
    }
}

/// The file's format, from its extension (`.csv`; `.jsonl`, `.ndjson`, `.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }

    fn of(path: &Path) -> Result<Format, String> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
            _ => Err(format!(
                "data file {}: name it .csv (with a header line) or .jsonl (one JSON object \
                 per line)",
                path.display()
            )),
        }
    }
}

/// The records of a data file. `Debug` shows the shape, never a value.
#[derive(Clone, PartialEq, Eq)]
pub struct Data {
    /// The file as given (for messages and the run file).
    pub path: String,
    pub format: Format,
    pub mode: DataMode,
    pub fields: Vec<String>,
    records: Vec<Box<[String]>>,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Data")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("mode", &self.mode)
            .field("fields", &self.fields)
            .field("records", &self.records.len())
            .finish()
    }
}

impl Data {
    /// Reads and parses `path` (at most [`MAX_DATA_BYTES`]).
    pub fn load(path: &Path, mode: DataMode) -> Result<Data, String> {
        let shown = path.display();
        let format = Format::of(path)?;
        let file = std::fs::File::open(path).map_err(|e| format!("data file {shown}: {e}"))?;
        let mut bytes = Vec::new();
        file.take(MAX_DATA_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("data file {shown}: {e}"))?;
        if bytes.len() as u64 > MAX_DATA_BYTES {
            return Err(format!(
                "data file {shown} is larger than {} MiB",
                MAX_DATA_BYTES >> 20
            ));
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!("data file {shown}, line {line}: not UTF-8")
        })?;
        let (fields, records) = match format {
            Format::Csv => parse_csv(text),
            Format::JsonLines => parse_jsonl(text),
        }
        .map_err(|e| format!("data file {shown}, {e}"))?;
        Ok(Data {
            path: path.display().to_string(),
            format,
            mode,
            fields,
            records,
        })
    }

    /// Data given in memory (tests).
    pub fn from_csv(text: &str, mode: DataMode) -> Result<Data, String> {
        let (fields, records) = parse_csv(text)?;
        Ok(Data {
            path: "-".into(),
            format: Format::Csv,
            mode,
            fields,
            records,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The index of the record client `client` takes.
    pub fn index(&self, client: u32) -> usize {
        // Unique mode was checked against the client count; wrap anyway rather than panic.
        client as usize % self.records.len().max(1)
    }

    /// The record of client `client` (its values in the order of [`Data::fields`]).
    pub fn record(&self, client: u32) -> &[String] {
        self.records
            .get(self.index(client))
            .map(|r| &r[..])
            .unwrap_or(&[])
    }

    /// Every record, in file order (for `--record-data`).
    pub fn records(&self) -> impl Iterator<Item = &[String]> {
        self.records.iter().map(|r| &r[..])
    }
}

/// A field name: what a `{placeholder}` can name.
pub fn field_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Names the placeholders reserve.
pub const RESERVED: [&str; 3] = ["client", "room", "payload"];

fn check_fields(fields: &[String], line: usize) -> Result<(), String> {
    if fields.is_empty() {
        return Err(format!("line {line}: no fields"));
    }
    if fields.len() > MAX_FIELDS {
        return Err(format!("line {line}: more than {MAX_FIELDS} fields"));
    }
    for (i, f) in fields.iter().enumerate() {
        if !field_name_ok(f) {
            return Err(format!(
                "line {line}: field name #{} {f:?} must be 1 to 64 of [A-Za-z0-9_-]",
                i + 1
            ));
        }
        if RESERVED.contains(&f.as_str()) {
            return Err(format!(
                "line {line}: field name {f:?} is reserved (the swarm fills {{{f}}} itself)"
            ));
        }
        if fields[..i].contains(f) {
            return Err(format!("line {line}: field {f:?} appears twice"));
        }
    }
    Ok(())
}

/// A value: bounded, without control characters (it may go into a header). The message
/// names the field, never the value.
fn check_value(v: &str, field: &str, line: usize) -> Result<(), String> {
    if v.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "line {line}: field {field:?} is longer than {MAX_VALUE_BYTES} bytes"
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(format!(
            "line {line}: field {field:?} holds a control character (value not shown)"
        ));
    }
    Ok(())
}

fn push_record(
    records: &mut Vec<Box<[String]>>,
    record: Vec<String>,
    line: usize,
) -> Result<(), String> {
    if records.len() >= MAX_RECORDS {
        return Err(format!("line {line}: more than {MAX_RECORDS} records"));
    }
    records.push(record.into_boxed_slice());
    Ok(())
}

type Parsed = (Vec<String>, Vec<Box<[String]>>);

/// CSV (RFC 4180): a header line, then one record per line; fields in double quotes may
/// hold commas, doubled quotes and line breaks; blank lines are skipped.
pub fn parse_csv(text: &str) -> Result<Parsed, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = CsvRows {
        rest: text,
        line: 1,
    };
    let (header_line, header) = loop {
        match rows.next_row()? {
            None => return Err("line 1: empty file (a header line is required)".into()),
            Some((_, row)) if row.len() == 1 && row[0].is_empty() => continue,
            Some(r) => break r,
        }
    };
    let fields: Vec<String> = header.into_iter().map(|f| f.trim().to_string()).collect();
    check_fields(&fields, header_line)?;
    let mut records = Vec::new();
    while let Some((line, row)) = rows.next_row()? {
        if row.len() == 1 && row[0].is_empty() {
            continue;
        }
        if row.len() != fields.len() {
            return Err(format!(
                "line {line}: {} fields, the header has {}",
                row.len(),
                fields.len()
            ));
        }
        for (v, f) in row.iter().zip(&fields) {
            check_value(v, f, line)?;
        }
        push_record(&mut records, row, line)?;
    }
    if records.is_empty() {
        return Err(format!("line {header_line}: no record after the header"));
    }
    Ok((fields, records))
}

struct CsvRows<'a> {
    rest: &'a str,
    line: usize,
}

impl CsvRows<'_> {
    /// The next row and the line it starts on; `None` at the end.
    fn next_row(&mut self) -> Result<Option<(usize, Vec<String>)>, String> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let start = self.line;
        let mut row = Vec::new();
        let mut field = String::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut quoted = false;
        let mut was_quoted = false;
        let mut end = self.rest.len();
        while let Some((i, c)) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek().map(|p| p.1) == Some('"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        self.line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                if field.len() > MAX_VALUE_BYTES {
                    return Err(format!(
                        "line {start}: a field is longer than {MAX_VALUE_BYTES} bytes"
                    ));
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                '"' => {
                    return Err(format!(
                        "line {}: a quote inside an unquoted field (write the field in quotes, \
                         doubling the quotes inside)",
                        self.line
                    ));
                }
                ',' => {
                    row.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek().map(|p| p.1) == Some('\n') => {}
                '\n' => {
                    end = i + 1;
                    self.line += 1;
                    break;
                }
                _ if was_quoted => {
                    return Err(format!("line {}: text after a closing quote", self.line));
                }
                _ => field.push(c),
            }
            if field.len() > MAX_VALUE_BYTES {
                return Err(format!(
                    "line {start}: a field is longer than {MAX_VALUE_BYTES} bytes"
                ));
            }
            if row.len() > MAX_FIELDS {
                return Err(format!("line {start}: more than {MAX_FIELDS} fields"));
            }
        }
        if quoted {
            return Err(format!("line {start}: a quoted field is never closed"));
        }
        row.push(field);
        self.rest = &self.rest[end..];
        Ok(Some((start, row)))
    }
}

/// JSON Lines: one object per line; the first object's keys are the fields (in alphabetical
/// order; placeholders name them, so the order matters only to `--record-data`) and every
/// object must have exactly those. Values are strings, numbers or booleans (written as
/// text); blank lines are skipped.
pub fn parse_jsonl(text: &str) -> Result<Parsed, String> {
    let mut fields: Option<Vec<String>> = None;
    let mut records = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(raw) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(format!("line {line}: not a JSON object")),
            // serde's message may quote the text: only its column is kept.
            Err(e) => {
                return Err(format!(
                    "line {line}: not valid JSON (column {})",
                    e.column()
                ));
            }
        };
        let names = match &fields {
            Some(f) => f,
            None => {
                let f: Vec<String> = obj.keys().cloned().collect();
                check_fields(&f, line)?;
                fields.insert(f)
            }
        };
        if obj.len() != names.len() || names.iter().any(|n| !obj.contains_key(n)) {
            return Err(format!(
                "line {line}: the keys differ from the first record's ({})",
                names.join(", ")
            ));
        }
        let mut record = Vec::with_capacity(names.len());
        for n in names {
            let v = match &obj[n] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(x) => x.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(format!(
                        "line {line}: field {n:?} must be a string, number or boolean"
                    ));
                }
            };
            check_value(&v, n, line)?;
            record.push(v);
        }
        push_record(&mut records, record, line)?;
    }
    match fields {
        Some(f) => Ok((f, records)),
        None => Err("line 1: no record (one JSON object per line)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_crlf_and_blank_lines() {
        let (f, r) = parse_csv("user,token\r\nalice,\"a,b\"\r\n\r\n\"bo\"\"b\",t2\n").unwrap();
        assert_eq!(f, ["user", "token"]);
        assert_eq!(r.len(), 2);
        assert_eq!(&r[0][..], ["alice", "a,b"]);
        assert_eq!(&r[1][..], ["bo\"b", "t2"]);
    }

    #[test]
    fn csv_errors_name_the_line_not_the_value() {
        let e = parse_csv("user,token\nalice,SECRETX\nbob\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("1 fields"), "{e}");
        let e = parse_csv("user,token\nalice,\"SECRETX\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("never closed"), "{e}");
        assert!(!e.contains("SECRETX"));
        let e = parse_csv("user,client\na,b\n").unwrap_err();
        assert!(e.contains("reserved"), "{e}");
        let e = parse_csv("user,user\na,b\n").unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse_csv("user\n").unwrap_err();
        assert!(e.contains("no record"), "{e}");
        let e = parse_csv("a,b\nx,SE\u{7}CRETX\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("control") && !e.contains("SE"),
            "{e}"
        );
        assert!(parse_csv("a\nx\"y\n").is_err());
    }

    #[test]
    fn jsonl_records() {
        let (f, r) = parse_jsonl("{\"user\":\"a\",\"n\":1}\n\n{\"n\":2,\"user\":\"b\"}\n").unwrap();
        // serde_json's map keeps keys sorted: the field order is alphabetical.
        assert_eq!(f, ["n", "user"]);
        assert_eq!(&r[1][..], ["2", "b"]);
        let e = parse_jsonl("{\"user\":\"a\"}\n{\"name\":\"SECRETX\"}\n").unwrap_err();
        assert!(e.contains("line 2") && !e.contains("SECRETX"), "{e}");
        let e = parse_jsonl("{\"user\":\"a\"}\n{\"user\":\"SECRETX\"\n").unwrap_err();
        assert!(e.contains("line 2") && !e.contains("SECRETX"), "{e}");
        let e = parse_jsonl("{\"user\":{\"a\":1}}\n").unwrap_err();
        assert!(e.contains("string, number or boolean"), "{e}");
    }

    #[test]
    fn wrap_and_debug_hides_values() {
        let d = Data::from_csv("t\nSECRETA\nSECRETB\n", DataMode::Wrap).unwrap();
        assert_eq!(d.record(0), ["SECRETA"]);
        assert_eq!(d.record(3), ["SECRETB"]);
        let shown = format!("{d:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("records: 2"),
            "{shown}"
        );
    }

    #[test]
    fn file_bounds_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.txt");
        std::fs::write(&p, "a\nb\n").unwrap();
        assert!(Data::load(&p, DataMode::Wrap).unwrap_err().contains(".csv"));
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a\n\u{FFFD}b\n").unwrap();
        assert_eq!(Data::load(&p, DataMode::Wrap).unwrap().len(), 1);
        std::fs::write(&p, b"a\nok\n\xff\n").unwrap();
        let e = Data::load(&p, DataMode::Wrap).unwrap_err();
        assert!(e.contains("line 3") && e.contains("UTF-8"), "{e}");
        let big = dir.path().join("big.csv");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_DATA_BYTES + 1).unwrap();
        let e = Data::load(&big, DataMode::Wrap).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }
}
