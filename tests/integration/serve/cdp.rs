//! A small Chrome DevTools Protocol client for the browser test: launches headless Chromium
//! with a fresh profile, opens one page, sends commands and collects every console error,
//! uncaught exception and failed load of that page.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium to drive: `$CHROMIUM`, else the first of Debian's and other usual names on
/// `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|candidate| candidate.is_file())
}

/// One headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    sink: tokio::sync::Mutex<Sink>,
    pending: Pending,
    problems: Arc<Mutex<Vec<String>>>,
    next_id: AtomicU64,
    session: String,
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and opens a blank page.
    pub async fn launch(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{} does not start: {err}", chromium.display()));
        // Chromium writes its DevTools port and browser path once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("ws://127.0.0.1:{port}{path}");
                }
            }
            assert!(Instant::now() < deadline, "Chromium never opened DevTools");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .expect("a DevTools connection");
        let (sink, mut stream) = socket.split();
        let pending: Pending = Arc::default();
        let problems: Arc<Mutex<Vec<String>>> = Arc::default();
        let (reader_pending, reader_problems) = (pending.clone(), problems.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = value["id"].as_u64() {
                    if let Some(reply) = reader_pending.lock().unwrap().remove(&id) {
                        let _ = reply.send(value);
                    }
                } else if let Some(problem) = problem_of(&value) {
                    reader_problems.lock().unwrap().push(problem);
                }
            }
        });
        let mut browser = Browser {
            child,
            _profile: profile,
            sink: tokio::sync::Mutex::new(sink),
            pending,
            problems,
            next_id: AtomicU64::new(1),
            session: String::new(),
        };
        let target = browser
            .command("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .command(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({})).await;
        }
        browser
    }

    async fn send(&self, method: &str, params: Value, session: Option<&str>) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (reply, answer) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, reply);
        self.sink
            .lock()
            .await
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("DevTools is connected");
        let value = tokio::time::timeout(COMMAND_TIMEOUT, answer)
            .await
            .unwrap_or_else(|_| panic!("{method} got no answer"))
            .expect("DevTools answered");
        assert!(value.get("error").is_none(), "{method}: {value}");
        value["result"].clone()
    }

    /// A browser-level command.
    async fn command(&self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    /// A command to the page.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.send(method, params, Some(&self.session.clone())).await
    }

    /// Loads `url` and waits until the document is complete.
    pub async fn navigate(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for("document.readyState === 'complete'", "the page loads")
            .await;
    }

    /// The value of a JavaScript expression (promises awaited).
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits (up to a minute) until `condition` is true on the page.
    pub async fn wait_for(&self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.eval(&format!("Boolean({condition})")).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what} ({condition}); problems: {:?}",
                self.problems()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types text into the focused element, as a keyboard would insert it.
    pub async fn type_text(&self, text: &str) {
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Presses and releases `Enter` or `Tab` (with Shift when `shift`).
    pub async fn press(&self, key: &str, shift: bool) {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            other => panic!("no key code for {other}"),
        };
        let modifiers = if shift { 8 } else { 0 };
        let mut down = json!({"type": "keyDown", "key": key, "code": key,
            "windowsVirtualKeyCode": code, "modifiers": modifiers});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down).await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": key,
                "windowsVirtualKeyCode": code, "modifiers": modifiers}),
        )
        .await;
    }

    /// Renders the page at `width` x `height` CSS pixels (`mobile` for a phone).
    pub async fn resize(&self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Saves a PNG of what the viewport shows.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Console errors, uncaught exceptions and failed loads seen so far.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of an event that shows a problem on the page: `console.error` or `console.assert`,
/// an uncaught exception, or an error the browser logged (failed loads, security policy).
fn problem_of(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.consoleAPICalled"
            if matches!(params["type"].as_str(), Some("error" | "assert")) =>
        {
            let args: Vec<String> = params["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| {
                    arg["value"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| arg["description"].as_str().map(str::to_string))
                        .unwrap_or_else(|| arg.to_string())
                })
                .collect();
            Some(format!(
                "console.{}: {}",
                params["type"].as_str()?,
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => {
            let details = &params["exceptionDetails"];
            Some(format!(
                "uncaught: {} {}",
                details["text"].as_str().unwrap_or_default(),
                details["exception"]["description"]
                    .as_str()
                    .unwrap_or_default()
            ))
        }
        "Log.entryAdded" if params["entry"]["level"] == "error" => Some(format!(
            "browser log: {} {}",
            params["entry"]["text"].as_str().unwrap_or_default(),
            params["entry"]["url"].as_str().unwrap_or_default()
        )),
        _ => None,
    }
}

#[test]
fn problems_are_recognised() {
    let console = json!({"method": "Runtime.consoleAPICalled",
        "params": {"type": "error", "args": [{"type": "string", "value": "boom"}]}});
    assert_eq!(problem_of(&console).unwrap(), "console.error: boom");
    let log = json!({"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": []}});
    assert!(problem_of(&log).is_none());
    let thrown = json!({"method": "Runtime.exceptionThrown",
        "params": {"exceptionDetails": {"text": "Uncaught", "exception": {"description": "TypeError: x"}}}});
    assert!(problem_of(&thrown).unwrap().contains("TypeError: x"));
    let failed = json!({"method": "Log.entryAdded", "params": {"entry": {"level": "error",
        "text": "Failed to load resource: 404", "url": "http://x/app.js"}}});
    assert!(problem_of(&failed).unwrap().contains("app.js"));
}
