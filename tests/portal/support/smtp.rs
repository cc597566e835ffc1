//! A real SMTP server inside the test process (mailin-embedded), capturing what it receives.

use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};

/// One received message.
#[derive(Debug, Clone)]
pub struct Captured {
    pub to: Vec<String>,
    pub raw: String,
}

impl Captured {
    /// The decoded subject.
    pub fn subject(&self) -> String {
        let parsed = mailparse::parse_mail(self.raw.as_bytes()).unwrap();
        parsed
            .headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case("subject"))
            .map(|h| h.get_value())
            .unwrap_or_default()
    }

    /// The decoded body of the part with this MIME type (`text/plain`, `text/html`).
    pub fn part(&self, mime: &str) -> String {
        let parsed = mailparse::parse_mail(self.raw.as_bytes()).unwrap();
        fn find(p: &mailparse::ParsedMail, mime: &str) -> Option<String> {
            if p.ctype.mimetype == mime {
                return p.get_body().ok();
            }
            p.subparts.iter().find_map(|s| find(s, mime))
        }
        find(&parsed, mime).unwrap_or_default()
    }

    /// The path of the first link to `prefix` (e.g. `/invite/`) in the plain-text part.
    pub fn link_path(&self, prefix: &str) -> String {
        let text = self.part("text/plain");
        let start = text.find(prefix).unwrap_or_else(|| panic!("no {prefix} link in {text}"));
        text[start..].split_whitespace().next().unwrap().to_owned()
    }
}

#[derive(Clone)]
struct Sink {
    received: Arc<Mutex<Vec<Captured>>>,
    down: Arc<AtomicBool>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        if self.down.load(Ordering::SeqCst) { response::NO_SERVICE } else { response::OK }
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        if self.down.load(Ordering::SeqCst) { response::NO_SERVICE } else { response::OK }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        // Addresses at reject.example are refused for good (550), as a real server refuses an
        // unknown mailbox.
        if to.contains("@reject.example") { response::NO_MAILBOX } else { response::OK }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let raw = String::from_utf8_lossy(&self.data).into_owned();
        self.received.lock().unwrap().push(Captured { to: std::mem::take(&mut self.to), raw });
        response::OK
    }
}

/// The running server.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Captured>>>,
    down: Arc<AtomicBool>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let sink = Sink { received: received.clone(), down: down.clone(), to: Vec::new(), data: Vec::new() };
        let mut server = Server::new(sink);
        server
            .with_name("sink.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpSink { port, received, down }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Refuse mail with 421 (a temporary failure) while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.received.lock().unwrap().clone()
    }

    pub fn messages_to(&self, address: &str) -> Vec<Captured> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t.contains(address))).collect()
    }

    /// Waits (up to 10 s) until `count` messages to `address` have arrived; returns them all.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<Captured> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.messages_to(address);
            if got.len() >= count {
                return got;
            }
            assert!(Instant::now() < deadline, "{count} message(s) to {address} did not arrive; got {}", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
