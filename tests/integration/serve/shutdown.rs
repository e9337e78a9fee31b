//! Graceful shutdown: the requests in flight are answered, in process and in the real binary
//! on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use music_crs::serve::Limits;
use serde_json::json;

use super::{Gate, Held, Server, small_crs};
use crate::common::write_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_requests_in_flight() {
    let gate = Arc::new(Gate::default());
    let crs = small_crs(|inner| Held::boxed(inner, gate.clone()));
    let mut server = Server::start(crs, Limits::default()).await;
    let client = server.client.clone();
    let url = server.url("/v1/recommend");
    let in_flight = tokio::spawn(async move {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(json!({"messages": [{"role": "user", "content": "Nirvana"}]}).to_string())
            .send()
            .await
            .expect("the request in flight is answered");
        super::status_and_json(response).await
    });
    gate.wait_for_held(1).await;
    let stopped = server.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopped.is_finished(),
        "the server stopped with a request in flight"
    );
    // No new connection is accepted meanwhile.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
    gate.open();
    let (status, answer) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["tracks"][0]["track_id"], "t3");
    tokio::time::timeout(Duration::from_secs(30), stopped)
        .await
        .expect("the server stops once the request is answered")
        .unwrap()
        .unwrap();
}

#[test]
fn sigterm_lets_the_binary_finish_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "serve_test", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_music-crs"))
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .rsplit_once("http://")
        .map(|(_, addr)| addr.to_string())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    assert!(first.contains("serve_test"), "{first}");

    // A request whose body is half sent when the signal comes: it is in flight.
    let body =
        json!({"messages": [{"role": "user", "content": "play something calm"}]}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /v1/recommend HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();

    // The server stops accepting, but waits for the request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    stream.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_start = response.find("\r\n\r\n").unwrap() + 4;
    let answer: serde_json::Value = serde_json::from_str(&response[json_start..]).unwrap();
    assert_eq!(answer["tracks"].as_array().unwrap().len(), 20, "{answer}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}
