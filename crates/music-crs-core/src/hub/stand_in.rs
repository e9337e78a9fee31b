//! A loopback stand-in of the Hugging Face hub API, for tests (feature `hub-stand-in`).
//!
//! It listens on `127.0.0.1:0` and answers the requests hf-hub's blocking client makes:
//! `GET /api/{models|datasets}/{id}/revision/{rev}` (the file listing) and
//! `GET /{id}/resolve/{rev}/{file}` (prefixed `datasets/` for datasets) with a `Range` of
//! `bytes=0-0` (metadata: `ETag`, `X-Repo-Commit`, `Content-Range`) or `bytes=N-` (the
//! content). A repository can require a token (`401` without it), and a file can be served
//! truncated (half its bytes, no `Content-Length`, connection closed). Every request is
//! counted and recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use super::{HubParams, RepoKind};

/// One repository the stand-in serves.
#[derive(Debug, Clone)]
pub struct StandInRepo {
    /// Model or dataset.
    pub kind: RepoKind,
    /// `owner/name`.
    pub id: String,
    /// The commit every revision resolves to.
    pub commit: String,
    /// The files: repository path and content.
    pub files: Vec<(String, Vec<u8>)>,
    /// When set, requests without `Authorization: Bearer <token>` get `401`.
    pub token: Option<String>,
    /// Files served truncated: half their bytes, then the connection closes.
    pub truncated: Vec<String>,
}

impl StandInRepo {
    /// A public repository at commit `0123…` with `files`.
    pub fn new(kind: RepoKind, id: &str, files: &[(&str, &[u8])]) -> Self {
        StandInRepo {
            kind,
            id: id.to_owned(),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            files: files
                .iter()
                .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
                .collect(),
            token: None,
            truncated: Vec::new(),
        }
    }
}

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path, percent-decoded.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
}

impl Request {
    /// True for a request that transfers file content (a `resolve` with a range other than
    /// the `bytes=0-0` metadata probe).
    pub fn is_download(&self) -> bool {
        self.path.contains("/resolve/") && self.range.as_deref() != Some("bytes=0-0")
    }
}

/// The running stand-in; it stops accepting when dropped.
#[derive(Debug)]
pub struct StandIn {
    endpoint: String,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl StandIn {
    /// Starts serving `repos` on a free loopback port.
    pub fn start(repos: Vec<StandInRepo>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let repos = Arc::new(repos);
        let (thread_log, thread_stop) = (Arc::clone(&log), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (repos, log) = (Arc::clone(&repos), Arc::clone(&thread_log));
                std::thread::spawn(move || {
                    // A client that hangs up early is not the stand-in's problem.
                    let _ = serve(stream, &repos, &log);
                });
            }
        });
        Ok(StandIn {
            endpoint,
            log,
            stop,
        })
    }

    /// `http://127.0.0.1:<port>`: the value for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The requests that transferred file content.
    pub fn downloads(&self) -> usize {
        self.requests().iter().filter(|r| r.is_download()).count()
    }

    /// Hub settings that reach this stand-in, with the cache in `cache`.
    pub fn hub_params(&self, cache: &std::path::Path) -> HubParams {
        HubParams {
            cache_dir: Some(cache.to_path_buf()),
            endpoint: Some(self.endpoint().to_owned()),
            ..HubParams::default()
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

/// Percent-decodes a URL path (hf-hub encodes `/` in revisions as `%2F`).
fn decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&path[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Send the body without `Content-Length` and close (a truncated transfer).
    close_delimited: bool,
}

impl Response {
    fn status(status: u16, message: &str) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain".to_owned())],
            body: message.as_bytes().to_vec(),
            close_delimited: false,
        }
    }
}

fn serve(
    stream: TcpStream,
    repos: &[StandInRepo],
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let path = decode(target.split('?').next().unwrap_or_default());
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let range = headers.get("range").cloned();
    let response = answer(&path, range.as_deref(), headers.get("authorization"), repos);
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Request {
            method: method.clone(),
            path,
            range,
            status: response.status,
        });
    let mut stream = stream;
    let reason = match response.status {
        200 => "OK",
        206 => "Partial Content",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Other",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nConnection: close\r\n",
        response.status
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !response.close_delimited {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&response.body)?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

fn answer(
    path: &str,
    range: Option<&str>,
    authorization: Option<&String>,
    repos: &[StandInRepo],
) -> Response {
    let find = |kind: RepoKind, id: &str| repos.iter().find(|r| r.kind == kind && r.id == id);
    let authorized = |repo: &StandInRepo| match &repo.token {
        None => true,
        Some(token) => authorization.is_some_and(|a| *a == format!("Bearer {token}")),
    };
    // The listing: /api/{models|datasets}/{id}/revision/{rev}
    if let Some(rest) = path.strip_prefix("/api/") {
        let (kind, rest) = if let Some(rest) = rest.strip_prefix("models/") {
            (RepoKind::Model, rest)
        } else if let Some(rest) = rest.strip_prefix("datasets/") {
            (RepoKind::Dataset, rest)
        } else {
            return Response::status(404, "unknown API");
        };
        let id = rest.split_once("/revision/").map_or(rest, |(id, _)| id);
        let Some(repo) = find(kind, id) else {
            return Response::status(404, "Repository not found");
        };
        if !authorized(repo) {
            return Response::status(401, "Access to this repository is restricted");
        }
        let siblings: Vec<String> = repo
            .files
            .iter()
            .map(|(name, _)| format!("{{\"rfilename\":\"{name}\"}}"))
            .collect();
        return Response {
            status: 200,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: format!(
                "{{\"sha\":\"{}\",\"siblings\":[{}]}}",
                repo.commit,
                siblings.join(",")
            )
            .into_bytes(),
            close_delimited: false,
        };
    }
    // A file: /[datasets/]{id}/resolve/{rev}/{file}
    let Some((repo_part, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return Response::status(404, "unknown path");
    };
    let (kind, id) = match repo_part.strip_prefix("datasets/") {
        Some(id) => (RepoKind::Dataset, id),
        None => (RepoKind::Model, repo_part),
    };
    let Some(repo) = find(kind, id) else {
        return Response::status(404, "Repository not found");
    };
    if !authorized(repo) {
        return Response::status(401, "Access to this repository is restricted");
    }
    // The revision may hold `/` (decoded from %2F): match the file name from the end.
    let Some((name, content)) = repo
        .files
        .iter()
        .find(|(name, _)| rest.ends_with(&format!("/{name}")))
    else {
        return Response::status(404, "Entry not found");
    };
    let etag = format!("{:016x}", fingerprint(content));
    let mut headers = vec![
        ("ETag", format!("\"{etag}\"")),
        ("X-Repo-Commit", repo.commit.clone()),
    ];
    let start = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(content.len());
    if range == Some("bytes=0-0") {
        headers.push(("Content-Range", format!("bytes 0-0/{}", content.len())));
        return Response {
            status: 206,
            headers,
            body: content.iter().take(1).copied().collect(),
            close_delimited: false,
        };
    }
    let truncated = repo.truncated.contains(name);
    let end = if truncated {
        start + (content.len() - start) / 2
    } else {
        content.len()
    };
    headers.push((
        "Content-Range",
        format!(
            "bytes {start}-{}/{}",
            content.len().saturating_sub(1),
            content.len()
        ),
    ));
    Response {
        status: if range.is_some() { 206 } else { 200 },
        headers,
        body: content[start..end].to_vec(),
        close_delimited: truncated,
    }
}

/// FNV-1a of the content: a stable ETag.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
