//! Reading the authorization server's inputs strictly: a query string or an
//! `application/x-www-form-urlencoded` body, each parameter at most once (RFC 6749 §3.1: "Request
//! and response parameters MUST NOT be included more than once"), valid UTF-8, bounded in size
//! and count. An ambiguous request is refused, never guessed at.

use std::collections::HashMap;

/// The largest form the token, register and authorize endpoints read.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
const MAX_PARAMS: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("the parameter {0} is given more than once")]
    Duplicate(String),
    #[error("the request has more than {MAX_PARAMS} parameters")]
    TooMany,
    #[error("the request is larger than {MAX_FORM_BYTES} bytes")]
    TooLarge,
    #[error("the request is not valid UTF-8 after percent-decoding")]
    NotUtf8,
    #[error("a parameter name is empty or not printable")]
    BadName,
}

/// The parameters, by name. Empty values count as given (a duplicate empty one is still a
/// duplicate) — callers treat an empty value as absent where the spec says so.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(raw: &[u8]) -> Result<Form, FormError> {
        if raw.len() > MAX_FORM_BYTES {
            return Err(FormError::TooLarge);
        }
        let mut map = HashMap::new();
        for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let k = decode(k)?;
            let v = decode(v)?;
            if k.is_empty() || k.chars().any(|c| c.is_control()) {
                return Err(FormError::BadName);
            }
            if map.len() >= MAX_PARAMS {
                return Err(FormError::TooMany);
            }
            if map.contains_key(&k) {
                return Err(FormError::Duplicate(printable(&k)));
            }
            map.insert(k, v);
        }
        Ok(Form(map))
    }

    /// A non-empty value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Every parameter's name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

fn printable(s: &str) -> String {
    crate::refusal::printable(s, 40)
}

/// `+` is a space, then percent-decoding; the result must be UTF-8 with no NUL.
fn decode(part: &[u8]) -> Result<String, FormError> {
    let spaced: Vec<u8> = part.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    let s = String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)?;
    if s.contains('\0') {
        return Err(FormError::NotUtf8);
    }
    Ok(s)
}

/// A value as it goes into a URL's query or a form.
pub fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_forms() {
        let f = Form::parse(b"a=1&b=x+y%20z&c=&d").unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y z"));
        assert_eq!(f.get("c"), None);
        assert!(f.has("c") && f.has("d"));
        assert_eq!(
            Form::parse(b"code=a&code=b").unwrap_err(),
            FormError::Duplicate("code".into())
        );
        // Encoded and plain spellings of one name are one name.
        assert!(matches!(Form::parse(b"code=a&%63ode=b"), Err(FormError::Duplicate(_))));
        assert!(matches!(Form::parse(b"c=a&c="), Err(FormError::Duplicate(_))));
        assert_eq!(Form::parse(b"a=%FF").unwrap_err(), FormError::NotUtf8);
        assert_eq!(Form::parse(b"a=%00").unwrap_err(), FormError::NotUtf8);
        assert_eq!(Form::parse(b"=x").unwrap_err(), FormError::BadName);
        let many: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
        assert_eq!(Form::parse(many.join("&").as_bytes()).unwrap_err(), FormError::TooMany);
        assert_eq!(
            Form::parse(&vec![b'a'; MAX_FORM_BYTES + 1]).unwrap_err(),
            FormError::TooLarge
        );
    }
}
