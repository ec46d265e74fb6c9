//! A response whose body keeps something alive (a stream permit, a connection's request count)
//! until the client has read it all or gone away.

use axum::body::Body;
use axum::response::Response;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Keeps `held` (a stream permit, a connection's request count) alive until `response`'s body
/// ends or is dropped, which is when the client has it all or went away.
pub fn hold_until_body_ends<T: Send + Unpin + 'static>(response: Response, held: T) -> Response {
    response.map(|body| Body::new(Holding { body, _held: held }))
}

/// A response body that keeps `held` alive until the body ends or is dropped.
struct Holding<T> {
    body: Body,
    _held: T,
}

impl<T: Unpin> http_body::Body for Holding<T> {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    // Forwarded so a known length still becomes Content-Length.
    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
