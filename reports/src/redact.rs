//! Secrets out of everything swarm writes: the command line and the target URL.
//!
//! Receives a URL or an argument list; emits the same with secret values replaced by
//! [`MASK`]. The rule (docs/results-format.md, "Redaction"): every value of the URL's query
//! string and of `--query` (keys kept), every `--header`/`-H` value (names kept), the whole
//! `--auth` payload, and a password in the URL's user info.
//! Must not: keep a secret value in any form, or change the structure a reader relies on
//! (keys, header names, scheme, host, path).

/// What replaces a secret.
pub const MASK: &str = "***";

/// `scheme://user:pass@host/path?k=v&k2=v2#f` -> `scheme://user:***@host/path?k=***&k2=***#f`.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn redact_userinfo(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:{MASK}@{host}{path}")
        }
        None => base.to_string(),
    }
}

/// `a=1&b=2&c` -> `a=***&b=***&c`.
pub fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) => format!("{k}={MASK}"),
            None => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `K: V` -> `K: ***`; `K=V` -> `K=***` (the separator of a header or a query pair).
fn redact_pair(s: &str, sep: char) -> String {
    match s.split_once(sep) {
        Some((k, _)) => {
            let space = if sep == ':' { " " } else { "" };
            format!("{k}{sep}{space}{MASK}")
        }
        None => MASK.to_string(),
    }
}

/// How the value of a secret-bearing flag is masked.
type Masker = fn(&str) -> String;

/// The command line with every secret value masked (see the module docs).
pub fn redact_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next: Option<Masker> = None;
    for a in args {
        if let Some(f) = next.take() {
            out.push(f(a));
            continue;
        }
        let mask_all = |_: &str| MASK.to_string();
        let header = |v: &str| redact_pair(v, ':');
        let query = |v: &str| redact_pair(v, '=');
        let flag_value: Option<(&str, Masker)> = [
            ("--auth", mask_all as Masker),
            ("--header", header),
            ("--query", query),
        ]
        .into_iter()
        .find_map(|(flag, f)| {
            (a == flag || a.starts_with(&format!("{flag}="))).then_some((flag, f))
        });
        if let Some((flag, f)) = flag_value {
            match a.strip_prefix(&format!("{flag}=")) {
                Some(v) => out.push(format!("{flag}={}", f(v))),
                None => {
                    out.push(a.clone());
                    next = Some(f);
                }
            }
            continue;
        }
        // Short flags: `-H V`, `-HV`, and clusters of value-less flags ending in H (`-qH V`).
        if let Some(cluster) = a.strip_prefix('-').filter(|c| !c.starts_with('-'))
            && let Some(at) = cluster.find('H')
            && cluster[..at].chars().all(|c| c == 'q')
        {
            let value = &cluster[at + 1..];
            if value.is_empty() {
                out.push(a.clone());
                next = Some(header);
            } else {
                out.push(format!("-{}H{}", &cluster[..at], header(value)));
            }
            continue;
        }
        if a.contains("://") {
            out.push(redact_url(a));
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn urls_keep_keys_and_lose_values() {
        assert_eq!(
            redact_url("http://u:pw@h:1/p?token=abc&room=lobby&flag#frag"),
            "http://u:***@h:1/p?token=***&room=***&flag#frag"
        );
        assert_eq!(
            redact_url("ws://127.0.0.1:3000/ws/echo"),
            "ws://127.0.0.1:3000/ws/echo"
        );
    }

    #[test]
    fn every_secret_form_of_the_command_line_is_masked() {
        let args = v(&[
            "echo",
            "http://h/?key=S1",
            "--auth",
            "{\"token\":\"S2\"}",
            "--auth={\"t\":\"S3\"}",
            "-H",
            "Authorization: Bearer S4",
            "-Hx-api-key: S5",
            "-qH",
            "Cookie: S6",
            "--header",
            "X: S7",
            "--header=Y: S8",
            "--query",
            "token=S9",
            "--query=k=S10",
            "--url",
            "https://h/?sig=S11",
            "--clients",
            "10",
        ]);
        let out = redact_args(&args).join(" ");
        for i in 1..=11 {
            assert!(!out.contains(&format!("S{i}")), "S{i} in {out}");
        }
        for kept in [
            "Authorization: ***",
            "x-api-key: ***",
            "token=***",
            "key=***",
            "--clients 10",
        ] {
            assert!(out.contains(kept), "{kept} in {out}");
        }
    }
}
