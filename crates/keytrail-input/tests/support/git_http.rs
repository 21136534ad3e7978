//! A smart-HTTP git server on loopback for tests (`git http-backend` as CGI),
//! shared by the keytrail-input git tests and the keytrail-cli git tests.

/// A tiny smart-HTTP git server on 127.0.0.1 for tests: each request runs
/// `git http-backend` as a CGI program over the repositories under `root`.
/// Closed when dropped.
pub struct GitHttpServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Requests served, as `METHOD PATH?QUERY`.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitHttpServer {
    /// Serve the repositories under `root` (`/NAME.git` is `root/NAME.git`).
    pub fn start(root: &std::path::Path) -> GitHttpServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let root = root.to_path_buf();
        let thread = {
            let (stop, requests) = (stop.clone(), requests.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (root, requests) = (root.clone(), requests.clone());
                    std::thread::spawn(move || {
                        let _ = serve_connection(conn, &root, &requests);
                    });
                }
            })
        };
        GitHttpServer {
            base: format!("http://{addr}"),
            requests,
            stop,
            addr,
            thread: Some(thread),
        }
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serve HTTP/1.1 requests on one connection until the client closes it.
fn serve_connection(
    conn: std::net::TcpStream,
    root: &std::path::Path,
    requests: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().unwrap_or(0);
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let size =
                    usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        requests.lock().unwrap().push(format!("{method} {target}"));
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut cgi = std::process::Command::new("git");
        cgi.arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if let Some(ct) = header("content-type") {
            cgi.env("CONTENT_TYPE", ct);
        }
        if let Some(p) = header("git-protocol") {
            cgi.env("GIT_PROTOCOL", p);
        }
        let mut child = cgi.spawn()?;
        {
            let mut stdin = child.stdin.take().unwrap();
            // The backend may answer without reading everything.
            let _ = stdin.write_all(&body);
        }
        let output = child.wait_with_output()?;
        let raw = output.stdout;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let (head, payload) = match split {
            Some((i, n)) => (
                String::from_utf8_lossy(&raw[..i]).into_owned(),
                &raw[i + n..],
            ),
            None => (String::new(), &raw[..]),
        };
        let mut status = "200 OK".to_string();
        let mut response = Vec::new();
        let mut extra = String::new();
        for h in head.lines() {
            if let Some(s) = h.strip_prefix("Status:") {
                status = s.trim().to_string();
            } else if !h.trim().is_empty() {
                extra.push_str(h.trim_end());
                extra.push_str("\r\n");
            }
        }
        write!(
            response,
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n",
            payload.len()
        )?;
        response.extend_from_slice(payload);
        out.write_all(&response)?;
        out.flush()?;
    }
}
