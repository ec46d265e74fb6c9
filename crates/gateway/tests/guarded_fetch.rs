//! The SSRF-guarded fetch (guarded_fetch/) against tiny hand-written HTTP/1.1 servers on
//! 127.0.0.1: what is refused without a connection ever being made, redirects re-checked at every
//! hop, size limits while streaming, one deadline for the whole fetch, and cache lifetimes.
//! Nothing here reaches beyond 127.0.0.1: every other address in these tests is refused before a
//! socket is opened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcpgate_gateway::guarded_fetch::{FetchError, FetchPolicy, Network, fetch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loopback server running `handler` for each connection, given the request head.
struct Server {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

async fn serve<F, Fut>(handler: F) -> Server
where
    F: Fn(TcpStream, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let counted = conns.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                handler(stream, head).await;
            });
        }
    });
    Server { addr, conns, task }
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The request path of a request head.
fn path(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

/// A complete response with a Content-Length, then close.
async fn respond(mut stream: TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

fn trusting(nets: &[&str]) -> FetchPolicy {
    FetchPolicy {
        trusted_networks: nets.iter().map(|n| Network::parse(n).unwrap()).collect(),
        ..FetchPolicy::default()
    }
}

/// Asserts nobody connected to `listener` (a connection made would wait in its accept queue).
async fn assert_no_connection(listener: &TcpListener) {
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was made");
}

#[tokio::test]
async fn loopback_is_refused_by_default_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let policy = FetchPolicy::default();
    for url in [
        format!("http://127.0.0.1:{port}/doc"),
        format!("https://127.0.0.1:{port}/doc"),
        format!("http://localhost:{port}/doc"),
        format!("https://localhost:{port}/doc"),
        format!("http://LOCALHOST:{port}/doc"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://0.0.0.0:{port}/"),
    ] {
        let err = fetch(&url, &policy).await.unwrap_err();
        assert!(matches!(err, FetchError::ForbiddenAddress { .. }), "{url}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("loopback") || text.contains("unspecified"),
            "{url}: {text}"
        );
    }
    // A trusted network that is not loopback does not help.
    let err = fetch(&format!("http://127.0.0.1:{port}/"), &trusting(&["10.0.0.0/8"]))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::ForbiddenAddress { .. }), "{err:?}");
    assert_no_connection(&listener).await;
}

#[tokio::test]
async fn trusted_loopback_is_fetched_with_its_cache_lifetime() {
    let server = serve(|stream, head| async move {
        match path(&head) {
            "/doc" => {
                respond(
                    stream,
                    "200 OK",
                    &[("Cache-Control", "public, max-age=300")],
                    b"{\"ok\":true}",
                )
                .await
            }
            "/nostore" => respond(stream, "200 OK", &[("Cache-Control", "no-store")], b"{}").await,
            _ => respond(stream, "200 OK", &[], b"{}").await,
        }
    })
    .await;
    let policy = trusting(&["127.0.0.0/8"]);
    let got = fetch(&server.url("/doc"), &policy).await.unwrap();
    assert_eq!(got.body, b"{\"ok\":true}");
    assert_eq!(got.max_age, Some(Duration::from_secs(300)));
    assert_eq!(got.url.as_str(), server.url("/doc"));

    let got = fetch(&server.url("/nostore"), &policy).await.unwrap();
    assert_eq!(got.max_age, None);
    let got = fetch(&server.url("/plain"), &policy).await.unwrap();
    assert_eq!(got.max_age, None);

    // By name too: localhost resolves into the trusted network.
    let by_name = format!("http://localhost:{}/doc", server.addr.port());
    let got = fetch(&by_name, &trusting(&["127.0.0.0/8", "::1/128"])).await.unwrap();
    assert_eq!(got.body, b"{\"ok\":true}");
    assert_eq!(server.connections(), 4);
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_before_connecting() {
    let policy = FetchPolicy::default();
    for (url, addr) in [
        ("https://10.0.0.1/", "10.0.0.1"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("https://[fd00::1]/", "fd00::1"),
        ("https://[::1]/", "::1"),
        ("https://100.64.0.1/", "100.64.0.1"),
        ("https://192.168.1.1:8443/", "192.168.1.1"),
        ("https://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
    ] {
        let started = Instant::now();
        match fetch(url, &policy).await {
            Err(FetchError::ForbiddenAddress { addr: a, .. }) => assert_eq!(a.to_string(), addr, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{url}: refused without trying"
        );
    }
}

#[tokio::test]
async fn urls_that_are_not_https_or_carry_secrets_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let trusted = trusting(&["127.0.0.0/8"]);

    let err = fetch("https://user:secret@cimd.example/client.json", &FetchPolicy::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::UserInfoInUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    for url in [
        format!("http://user@127.0.0.1:{port}/"),
        format!("http://:pw@127.0.0.1:{port}/"),
    ] {
        let err = fetch(&url, &trusted).await.unwrap_err();
        assert!(matches!(err, FetchError::UserInfoInUrl { .. }), "{url}: {err:?}");
    }
    for url in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/"] {
        let err = fetch(url, &trusted).await.unwrap_err();
        assert!(matches!(err, FetchError::NotHttps { .. }), "{url}: {err:?}");
    }
    for url in ["not a url", "https://cimd.example/client.json#frag", "https://[::1"] {
        let err = fetch(url, &trusted).await.unwrap_err();
        assert!(matches!(err, FetchError::BadUrl { .. }), "{url}: {err:?}");
    }
    let long = format!("https://cimd.example/{}", "a".repeat(3000));
    let err = fetch(&long, &trusted).await.unwrap_err();
    assert!(
        matches!(err, FetchError::BadUrl { .. }) && err.to_string().len() < 400,
        "{err}"
    );
    assert_no_connection(&listener).await;
}

/// A trusted loopback server redirecting wherever its path says.
async fn redirector() -> Server {
    serve(|stream, head| async move {
        let to = match path(&head) {
            "/to-private" => "http://10.0.0.1/",
            "/to-metadata" => "http://169.254.169.254/latest/meta-data",
            "/to-mapped" => "https://[::ffff:a9fe:a9fe]/latest/meta-data",
            "/to-ftp" => "ftp://127.0.0.1/x",
            "/to-userinfo" => "http://u:p@127.0.0.1:1/",
            "/loop" => "/loop",
            "/301" => "/doc?via=301",
            "/303" => "/doc?via=303",
            "/307" => "doc?via=307",
            "/308" => "/308-next",
            "/308-next" => "/doc?via=308",
            "/no-location" => return respond(stream, "302 Found", &[], b"").await,
            _ => return respond(stream, "200 OK", &[], b"done").await,
        };
        let status = match path(&head) {
            "/301" => "301 Moved Permanently",
            "/303" => "303 See Other",
            "/307" => "307 Temporary Redirect",
            "/308" | "/308-next" => "308 Permanent Redirect",
            _ => "302 Found",
        };
        respond(stream, status, &[("Location", to)], b"moved").await;
    })
    .await
}

#[tokio::test]
async fn every_redirect_hop_is_checked() {
    let server = redirector().await;
    let policy = trusting(&["127.0.0.0/8"]);
    for (from, addr) in [
        ("/to-private", "10.0.0.1"),
        ("/to-metadata", "169.254.169.254"),
        ("/to-mapped", "::ffff:169.254.169.254"),
    ] {
        match fetch(&server.url(from), &policy).await {
            Err(FetchError::ForbiddenAddress { addr: a, .. }) => assert_eq!(a.to_string(), addr, "{from}"),
            other => panic!("{from}: {other:?}"),
        }
    }
    let err = fetch(&server.url("/to-ftp"), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::NotHttps { .. }), "{err:?}");
    let err = fetch(&server.url("/to-userinfo"), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::UserInfoInUrl { .. }), "{err:?}");
    let err = fetch(&server.url("/no-location"), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::BadRedirect { .. }), "{err:?}");
    // One connection per hop to the server itself; none anywhere else.
    assert_eq!(server.connections(), 6);
}

#[tokio::test]
async fn redirects_are_followed_relative_to_the_current_url() {
    let server = redirector().await;
    let policy = trusting(&["127.0.0.0/8"]);
    for (from, to) in [
        ("/301", "/doc?via=301"),
        ("/303", "/doc?via=303"),
        ("/307", "/doc?via=307"),
        ("/308", "/doc?via=308"),
    ] {
        let got = fetch(&server.url(from), &policy).await.unwrap();
        assert_eq!(got.body, b"done", "{from}");
        assert_eq!(got.url.as_str(), server.url(to), "{from}");
    }
}

#[tokio::test]
async fn redirect_loop_stops_at_the_limit() {
    let server = redirector().await;
    let policy = trusting(&["127.0.0.0/8"]);
    let err = fetch(&server.url("/loop"), &policy).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects { max: 3, .. }), "{err:?}");
    assert_eq!(server.connections(), 4, "the first request and three redirects");

    let no_redirects = FetchPolicy {
        max_redirects: 0,
        ..policy
    };
    let err = fetch(&server.url("/308"), &no_redirects).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects { max: 0, .. }), "{err:?}");
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let server = serve(|mut stream, head| async move {
        match path(&head) {
            // Chunked, no Content-Length, and it would never end: refused once past the limit.
            "/chunked" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await;
                let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            }
            // Announces too much, then sends nothing: refused without waiting.
            "/announced" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            "/exact" => respond(stream, "200 OK", &[], &[b'y'; 1024]).await,
            _ => respond(stream, "200 OK", &[], &[b'y'; 1025]).await,
        }
    })
    .await;
    let policy = FetchPolicy {
        max_bytes: 1024,
        ..trusting(&["127.0.0.0/8"])
    };
    for from in ["/chunked", "/announced", "/over"] {
        let started = Instant::now();
        let err = fetch(&server.url(from), &policy).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 1024, .. }),
            "{from}: {err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{from}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(fetch(&server.url("/exact"), &policy).await.unwrap().body.len(), 1024);

    // The default limit is 64 KiB.
    let default_limit = trusting(&["127.0.0.0/8"]);
    let err = fetch(&server.url("/chunked"), &default_limit).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: 65536, .. }), "{err:?}");
}

#[tokio::test]
async fn one_deadline_covers_a_slow_drip() {
    let server = serve(|mut stream, head| async move {
        if path(&head) == "/silent" {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            .await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b"z").await.is_err() {
                return;
            }
        }
    })
    .await;
    let policy = FetchPolicy {
        timeout: Duration::from_millis(500),
        ..trusting(&["127.0.0.0/8"])
    };
    for from in ["/drip", "/silent"] {
        let started = Instant::now();
        let err = fetch(&server.url(from), &policy).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, FetchError::Timeout { .. }), "{from}: {err:?}");
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
            "{from}: {took:?}"
        );
    }
}

#[tokio::test]
async fn errors_name_the_status_never_the_body() {
    let server = serve(|stream, head| async move {
        let status = if path(&head) == "/missing" {
            "404 Not Found"
        } else {
            "500 Internal Server Error"
        };
        respond(stream, status, &[], b"SECRET-BODY-TEXT").await;
    })
    .await;
    let policy = trusting(&["127.0.0.0/8"]);
    for (from, code) in [("/missing", 404), ("/broken", 500)] {
        let err = fetch(&server.url(from), &policy).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status, .. } if status == code),
            "{err:?}"
        );
        assert!(!err.to_string().contains("SECRET") && !format!("{err:?}").contains("SECRET"));
    }
}

/// The address is pinned, the name is not: TLS to `localhost` still asks for `localhost` (SNI),
/// so the certificate is verified for the URL's host name.
#[tokio::test]
async fn tls_is_for_the_host_name_of_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hello = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        buf.truncate(n);
        buf
    });
    let policy = trusting(&["127.0.0.0/8", "::1/128"]);
    let err = fetch(&format!("https://localhost:{port}/client.json"), &policy)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Connect { .. } | FetchError::Request { .. }),
        "not a TLS server: {err:?}"
    );
    let hello = hello.await.unwrap();
    assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record");
    assert!(hello.windows(9).any(|w| w == b"localhost"), "SNI names the host");
}
