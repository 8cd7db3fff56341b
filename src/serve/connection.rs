//! Serving HTTP/1.1 connections with hyper directly instead of `axum::serve`, for two things it
//! does not offer: a deadline for a request's headers (a client that opens a connection and
//! sends nothing, or a header a byte a minute, is cut off), and a JSON error body on the answers
//! hyper writes by itself to requests it cannot parse (`400`, `414`, `431`), so that every error
//! a client gets is `{"error": "..."}` as the API promises.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection until it closes.
pub async fn serve(stream: TcpStream, router: Router) {
    let io = TokioIo::new(JsonErrors::new(stream));
    let service = TowerToHyperService::new(router);
    // An error here is the client's (a reset, a timeout, a malformed request already answered).
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, service)
        .await;
}

/// A stream that rewrites hyper's own bodiless error answers into JSON ones.
struct JsonErrors<S> {
    inner: S,
    /// A rewritten answer being written, and how much of it is written.
    rewritten: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrors<S> {
    fn new(inner: S) -> Self {
        JsonErrors {
            inner,
            rewritten: None,
        }
    }
}

/// The JSON answer for `head`, if it is one of hyper's own error answers: a 4xx status with an
/// empty body. The application's answers always have a body.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let status = text.strip_prefix("HTTP/1.1 4")?;
    if !text.ends_with("\r\n\r\n")
        || !text
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let code = format!("4{}", status.get(..2)?);
    let message = match code.as_str() {
        "400" => "malformed HTTP request",
        "414" => "the request's URI is too long",
        "431" => "the request's headers are too large",
        _ => "the request could not be read",
    };
    let reason = text.lines().next()?.strip_prefix("HTTP/1.1 ")?;
    let body = serde_json::json!({ "error": message }).to_string();
    Some(
        format!(
            "HTTP/1.1 {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewritten.is_none() {
            this.rewritten = rewrite(buf).map(|bytes| (bytes, 0));
        }
        let Some((bytes, at)) = this.rewritten.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *at < bytes.len() {
            match ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*at..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *at += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        this.rewritten = None;
        // What hyper asked to write is written, in its new form.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn only_bodiless_client_errors_are_rewritten() {
        let bare =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(out.ends_with(r#"{"error":"the request's headers are too large"}"#));
        let declared: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, out.split("\r\n\r\n").nth(1).unwrap().len());
        // The application's own answers carry a body, and successes are never touched.
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"{\"error\":\"x\"}").is_none());
    }
}
