//! A finished span as it is exported: ids, times, attributes, events and status. Nothing here
//! reads a request; the pipeline decides what goes in (and keeps secrets out).

/// An attribute's value (the OTLP kinds mcpgate uses).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

pub type Attributes = Vec<(&'static str, Value)>;

/// What a span stands for toward its neighbours (OTLP `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server = 2,
    Client = 3,
}

/// OTLP `Status.code`: unset unless the span ended in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unset = 0,
    Error = 2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time_ns: u64,
    pub name: &'static str,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub trace_state: Option<String>,
    pub sampled: bool,
    pub name: String,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Attributes,
    pub events: Vec<Event>,
    pub status: Status,
}
