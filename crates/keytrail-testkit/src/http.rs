//! A loopback HTTP/1.1 server for tests of downloads: serves fixed responses by
//! path on 127.0.0.1 (a free port) from a background thread, counts requests, and
//! stops when dropped. Never reaches beyond this machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Route-table prefix of the responses given once ([`Server::set_once`]).
const ONCE: &str = "once:";

/// One canned response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (`Last-Modified`…).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// `200 OK` with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A response with status `status` and a short text body.
    pub fn status(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: format!("status {status}\n").into_bytes(),
        }
    }

    /// The same response with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The server. Paths not set answer `404`.
pub struct Server {
    addr: String,
    routes: Arc<Mutex<HashMap<String, Response>>>,
    requests: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts a server on a free loopback port.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address").to_string();
        let routes: Arc<Mutex<HashMap<String, Response>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, n, s, h) = (
            routes.clone(),
            requests.clone(),
            stop.clone(),
            heads.clone(),
        );
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        n.fetch_add(1, Ordering::Relaxed);
                        let _ = serve(stream, &r, &h);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            addr,
            routes,
            requests,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` (starting with `/`) with `response` from now on.
    pub fn set(&self, path: &str, response: Response) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), response);
    }

    /// Answers `path` with `first` once, then with `then` from then on (a
    /// rate limit that lifts, a transient failure).
    pub fn set_once(&self, path: &str, first: Response, then: Response) {
        self.set(path, then);
        self.routes
            .lock()
            .unwrap()
            .insert(format!("{ONCE}{path}"), first);
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// The request line and headers of every request received so far, one
    /// string each (lines joined by `\n`), in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    routes: &Mutex<HashMap<String, Response>>,
    heads: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut head = request_line.trim_end().to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        head.push('\n');
        head.push_str(h.trim_end());
    }
    heads.lock().unwrap().push(head);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let resp = {
        let mut routes = routes.lock().unwrap();
        match routes.remove(&format!("{ONCE}{path}")) {
            Some(first) => first,
            None => routes
                .get(&path)
                .cloned()
                .unwrap_or_else(|| Response::status(404)),
        }
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&resp.body)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(url: &str, path: &str) -> String {
        let addr = url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_set_paths_and_404_elsewhere() {
        let srv = Server::start();
        srv.set("/a", Response::ok("hello").header("Last-Modified", "x"));
        let a = get(&srv.url(), "/a");
        assert!(
            a.starts_with("HTTP/1.1 200") && a.ends_with("hello") && a.contains("Last-Modified: x"),
            "{a}"
        );
        assert!(get(&srv.url(), "/b").starts_with("HTTP/1.1 404"));
        assert_eq!(srv.requests(), 2);
    }
}
