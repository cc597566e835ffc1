//! CSV exports (RFC 4180) that a spreadsheet never reads as formulas (issue 12, point 7).

/// Characters that make a spreadsheet read what follows as a formula, with their full-width
/// forms (some spreadsheets fold those to the ASCII ones).
const FORMULA_STARTS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];
/// Characters after which a spreadsheet may start a new cell (`;` in locales that use it as the
/// separator) or a new line.
const CELL_BREAKS: [char; 5] = [',', ';', '\t', '\r', '\n'];

/// One CSV cell: always quoted, quotes doubled (RFC 4180 2.5-2.7). Wherever a spreadsheet could
/// start a cell (at the start, and after any `,` `;` tab CR or LF), a formula character
/// (`= + - @` or `＝ ＋ － ＠`), after optional spaces, gets `'` before it (OWASP "CSV injection").
pub fn cell(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut at_cell_start = true;
    for c in value.chars() {
        if at_cell_start && FORMULA_STARTS.contains(&c) {
            out.push('\'');
        }
        if c == '"' {
            out.push('"');
        }
        out.push(c);
        at_cell_start = if CELL_BREAKS.contains(&c) { true } else { at_cell_start && c == ' ' };
    }
    out.push('"');
    out
}

/// A CSV line of `cells`, ending in CRLF.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = cells.iter().map(|c| cell(c.as_ref())).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// A CSV export as a download: `text/csv` with a header line, saved as `filename`.
pub fn download(body: String, filename: &'static str) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse as _;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8; header=present"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_is_quoted_and_quotes_doubled() {
        assert_eq!(cell("plain"), "\"plain\"");
        assert_eq!(cell(""), "\"\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(line(&["a", "b"]), "\"a\",\"b\"\r\n");
    }

    #[test]
    fn formulas_are_neutralised_wherever_a_cell_could_start() {
        for (value, expected) in [
            ("=1+1", "\"'=1+1\""),
            ("  +1", "\"  '+1\""),
            ("-1", "\"'-1\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("＝1", "\"'＝1\""),
            ("＠x", "\"'＠x\""),
            ("ok;=cmd", "\"ok;'=cmd\""),
            ("a, +b", "\"a, '+b\""),
            ("a\t－b", "\"a\t'－b\""),
            ("a\r\n@b", "\"a\r\n'@b\""),
            ("a=b", "\"a=b\""),
            ("x -1", "\"x -1\""),
        ] {
            assert_eq!(cell(value), expected, "{value:?}");
        }
    }
}
