//! The pages people see: sign-in with consent, and errors that cannot be sent back to a client.
//! Server-rendered, no script, every caller-given text escaped; framing refused.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A client's name as people may see it: printable, at most 100 characters, and without the
/// invisible formatting characters (bidirectional overrides and isolates, zero-width ones) that
/// could make it read as another name.
pub fn display_name(s: &str) -> String {
    let invisible = |c: char| {
        matches!(c as u32,
            0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064
            | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
    };
    let kept: String = s.chars().filter(|c| !invisible(*c)).collect();
    crate::refusal::printable(kept.trim(), 100)
}

/// Text as it may appear in HTML content or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.5}\
h1{font-size:1.4rem}.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0}\
.warn{color:#8a4b00}code{word-break:break-all}label{display:block;font-weight:600;margin-top:1rem}\
input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem;font-size:1rem}ul{padding-left:1.2rem}";

/// A whole page with the security headers every page carries.
pub fn render(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · mcpgate</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with the
    // page's own form, which the answer refuses; other sites still get no Referer.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An error shown to the person, not sent to the client (its redirect could not be trusted).
pub fn error(status: StatusCode, what: &str, todo: &str) -> Response {
    render(
        status,
        "Cannot sign in",
        &format!(
            "<h1>This sign-in cannot go on</h1><div class=\"box\"><p>{}</p><p>{}</p></div>",
            escape(what),
            escape(todo)
        ),
    )
}

/// What the consent page names.
pub struct Consent<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    /// False for clients that registered themselves: their name is their own claim.
    pub verified: bool,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    /// The original request's parameters, sent back with the answer.
    pub hidden: &'a [(&'a str, &'a str)],
    pub csrf: &'a str,
    pub action: &'a str,
    /// The person this browser is signed in as, if it is.
    pub signed_in: Option<&'a SignedIn>,
    /// Where else one may sign in: (name, link to its start).
    pub providers: &'a [(String, String)],
}

/// A browser's web session, as the consent page names it.
pub struct SignedIn {
    pub user: String,
    /// Where the sign-out form posts.
    pub sign_out: String,
    /// Where sign-out comes back to (this page), when it is a plain path.
    pub return_to: Option<String>,
}

pub fn consent(c: &Consent<'_>) -> Response {
    let unverified = if c.verified {
        String::new()
    } else {
        "<p class=\"warn\">This application registered itself: its name is unverified. Continue only if you started this sign-in.</p>".into()
    };
    let scopes = if c.scopes.is_empty() {
        "<li>no scopes: only tools that need none</li>".to_string()
    } else {
        c.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect::<String>()
    };
    let hidden: String = c
        .hidden
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
        .collect();
    let (key, sign_out) = match c.signed_in {
        None => (
            "<label for=\"api_key\">Your mcpgate API key</label>\
             <input type=\"password\" id=\"api_key\" name=\"api_key\" autocomplete=\"off\" required>"
                .to_string(),
            String::new(),
        ),
        Some(s) => (
            format!(
                "<p>You are signed in as <strong><bdi>{user}</bdi></strong>.</p>\
                 <label for=\"api_key\">Another mcpgate API key (optional)</label>\
                 <input type=\"password\" id=\"api_key\" name=\"api_key\" autocomplete=\"off\">",
                user = escape(&display_name(&s.user)),
            ),
            format!(
                "<form method=\"post\" action=\"{action}\">{back}<button type=\"submit\">Sign out</button></form>",
                action = escape(&s.sign_out),
                back = s
                    .return_to
                    .as_deref()
                    .map(|t| format!("<input type=\"hidden\" name=\"return_to\" value=\"{}\">", escape(t)))
                    .unwrap_or_default(),
            ),
        ),
    };
    let elsewhere = if c.signed_in.is_none() && !c.providers.is_empty() {
        let links: String = c
            .providers
            .iter()
            .map(|(name, href)| {
                format!(
                    "<li><a class=\"provider\" href=\"{}\">Sign in with {}</a></li>",
                    escape(href),
                    escape(name)
                )
            })
            .collect();
        format!(
            "<div class=\"box\"><p>Sign in first:</p><ul>{links}</ul><p>or with an mcpgate API key below.</p></div>"
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Sign in to allow <q><bdi>{name}</bdi></q></h1>\
         <div class=\"box\"><p><strong><bdi>{name}</bdi></strong> (<code>{id}</code>) asks to use this MCP server as you.</p>{unverified}\
         <p>After you answer, your browser goes to <code>{redirect}</code>.</p>\
         <p>It asks for:</p><ul>{scopes}</ul>\
         <p>Scopes you do not hold are not given, whatever it asks.</p></div>\
         {elsewhere}<form method=\"post\" action=\"{action}\">{hidden}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         {key}\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" formnovalidate>Deny</button></form>{sign_out}",
        name = escape(c.client_name),
        id = escape(c.client_id),
        redirect = escape(c.redirect_uri),
        action = escape(c.action),
        csrf = escape(c.csrf),
    );
    render(StatusCode::OK, "Allow access", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_text_is_escaped() {
        assert_eq!(escape("<script>\"x'&"), "&lt;script&gt;&quot;x&#39;&amp;");
        assert_eq!(escape("a\u{0}b"), "a\u{fffd}b");
    }
}
