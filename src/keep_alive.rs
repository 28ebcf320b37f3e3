//! Honest keep-alive. When a handler answers without reading the whole
//! request body (a 401 before authentication, a 403 for a bad `Origin`, a 413),
//! hyper closes the connection after the response unless the rest of the body
//! has already arrived, and it does so without saying `Connection: close`. A
//! client that pools connections then sends its next request (typically the
//! OAuth discovery that follows a 401) into a socket that is already closing
//! and sees "server disconnected". Saying `Connection: close` whenever the
//! body was left unread lets every client know the connection ends here.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderValue, Version, header},
    middleware::Next,
    response::Response,
};
use http_body::{Body as HttpBody, Frame, SizeHint};

pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    // HTTP/2 streams end on their own and forbid the Connection header.
    if request.version() >= Version::HTTP_2 || !declares_body(&request) {
        return next.run(request).await;
    }
    let read_to_end = Arc::new(AtomicBool::new(false));
    let watched = Arc::clone(&read_to_end);
    let request = request.map(|inner| {
        Body::new(Watched {
            inner,
            read_to_end: watched,
        })
    });
    let mut response = next.run(request).await;
    if !read_to_end.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn declares_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// The request body, noting when it has been read to its end.
struct Watched {
    inner: Body,
    read_to_end: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read_to_end.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
