//! The template environment shared by every rendering (HTML, Markdown, SVG hover layers).
//!
//! Receives nothing; emits a minijinja [`Environment`] holding the crate's templates
//! (compiled into the binary with `include_str!`). Escaping is by file name: `.html` and
//! `.svg` templates escape every value for HTML, `.md` templates escape every value for
//! Markdown ([`markdown_escape`]): a close reason cannot open a tag, a table cell or a link,
//! nor mention a user. Only values marked `|safe` (SVG drawn by [`crate::chart::svg`]) pass
//! through.
//! Must not: load templates from disk at run time, or turn escaping off.

use minijinja::{AutoEscape, Environment, Error, Output, State, Value};

const TEMPLATES: [(&str, &str); 7] = [
    ("report.html", include_str!("../templates/report.html")),
    ("report.md", include_str!("../templates/report.md")),
    ("compare.html", include_str!("../templates/compare.html")),
    ("compare.md", include_str!("../templates/compare.md")),
    ("chart.html", include_str!("../templates/chart.html")),
    ("hits.svg", include_str!("../templates/hits.svg")),
    ("style.css", include_str!("../templates/style.css")),
];

const MARKDOWN: &str = "markdown";

/// An environment with every template of the crate.
pub fn environment() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") || name.ends_with(".svg") {
            AutoEscape::Html
        } else if name.ends_with(".md") {
            AutoEscape::Custom(MARKDOWN)
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

fn format_value(out: &mut Output<'_>, state: &State<'_, '_>, value: &Value) -> Result<(), Error> {
    if state.auto_escape() == AutoEscape::Custom(MARKDOWN) && !value.is_safe() {
        let text = if value.is_none() || value.is_undefined() {
            String::new()
        } else {
            value.to_string()
        };
        return out
            .write_str(&markdown_escape(&text))
            .map_err(|e| Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()));
    }
    minijinja::escape_formatter(out, state, value)
}

/// Escapes text for a Markdown table cell or paragraph (GitHub flavour): no HTML, no
/// emphasis, links, code, math, table breaks or @mentions can come out of it, and newlines
/// become spaces (so no line of it can start a heading or a list either: templates never put
/// a value at the start of a line).
pub fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push_str("&#64;"),
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escape_neutralises_markup() {
        let e = markdown_escape("<script>|*x*|[a](b) @team\n# h `c`");
        assert!(!e.contains('<') && !e.contains('\n'));
        assert!(!e.contains('@'));
        assert!(e.contains("\\|") && e.contains("\\*") && e.contains("\\["));
        assert_eq!(markdown_escape("plain text 42"), "plain text 42");
    }

    #[test]
    fn every_template_compiles_and_escaping_follows_the_name() {
        let env = environment().expect("templates compile");
        let mut env = env;
        env.add_template("t.html", "{{ v }}").expect("add");
        env.add_template("t.md", "{{ v }}|{{ v|safe }}")
            .expect("add");
        let v = "<b>|x_y";
        let html = env
            .get_template("t.html")
            .and_then(|t| t.render(minijinja::context! { v }))
            .expect("html");
        assert_eq!(html, "&lt;b&gt;|x_y");
        let md = env
            .get_template("t.md")
            .and_then(|t| t.render(minijinja::context! { v }))
            .expect("md");
        assert_eq!(md, "&lt;b&gt;\\|x\\_y|<b>|x_y");
    }
}
