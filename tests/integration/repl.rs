//! The `chat` REPL of the real binary: on a pseudo-terminal (line editing, Ctrl-C, Ctrl-D,
//! history kept across sessions) and on piped stdin (scripts), plus `--version` and shell
//! completions.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

use crate::common::{music_crs, text, write_config};

/// How long a test waits for the binary's answer (the debug build loads the demo catalog).
const PATIENCE: Duration = Duration::from_secs(120);

/// The binary running on the slave side of a pseudo-terminal; everything it writes is
/// collected from the master side by a thread.
struct Pty {
    child: Child,
    input: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    /// Bytes of `output` already matched by [`Pty::expect`].
    seen: usize,
}

impl Pty {
    fn spawn(cwd: &Path, args: &[&str]) -> Pty {
        let size = Winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).expect("a pseudo-terminal");
        let slave = |_| Stdio::from(pty.slave.try_clone().unwrap());
        let child = Command::new(env!("CARGO_BIN_EXE_music-crs"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .env("TERM", "xterm")
            .env_remove(music_crs_history_env())
            .stdin(slave(0))
            .stdout(slave(1))
            .stderr(slave(2))
            .spawn()
            .expect("the binary runs");
        drop(pty.slave);
        let input = std::fs::File::from(pty.master);
        let mut reader = input.try_clone().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Linux reports EIO once the last slave descriptor closes: the end of output.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            input,
            output,
            seen: 0,
        }
    }

    fn send(&mut self, keys: &str) {
        self.send_bytes(keys.as_bytes());
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.input.write_all(bytes).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits until `needle` appears after what earlier calls matched; returns the text up to
    /// and including it.
    fn expect(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let all = text(&self.output.lock().unwrap());
            if let Some(at) = all[self.seen.min(all.len())..].find(needle) {
                let end = self.seen + at + needle.len();
                let chunk = all[self.seen..end].to_string();
                self.seen = end;
                return chunk;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("{needle:?} never came; the terminal shows:\n{all}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to end and returns whether it succeeded.
    fn wait(mut self) -> bool {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!(
                    "the REPL did not quit; the terminal shows:\n{}",
                    text(&self.output.lock().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn music_crs_history_env() -> &'static str {
    "MUSIC_CRS_HISTORY"
}

#[test]
fn repl_on_a_terminal_edits_lines_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "chat", "");
    let history = dir.path().join("state/history");
    let args = [
        "--quiet",
        "chat",
        "--config",
        config.to_str().unwrap(),
        "--history",
        history.to_str().unwrap(),
        "--show",
        "3",
    ];

    let mut pty = Pty::spawn(dir.path(), &args);
    pty.expect("you> ");
    pty.send("/help\r");
    pty.expect("/reset");
    pty.expect("you> ");
    pty.send("some upbeat pop please\r");
    let reply = pty.expect("you> ");
    assert!(reply.contains("crs> "), "{reply}");
    assert!(
        reply.contains("title") && reply.contains("album"),
        "{reply}"
    );
    assert!(reply.contains(" 3. ") && !reply.contains(" 4. "), "{reply}");
    // Ctrl-C drops the half-typed line; the REPL goes on.
    pty.send("this line is cancelled");
    pty.expect("cancelled");
    pty.send("\x03");
    pty.expect("you> ");
    // A line that is not UTF-8 is reported and skipped; the REPL goes on.
    pty.send_bytes(b"caf\xe9\r");
    pty.expect("not valid UTF-8");
    pty.expect("you> ");
    pty.send("/k 3\r");
    pty.expect("(showing 3 tracks per reply)");
    pty.expect("you> ");
    pty.send("/k 2\r");
    pty.expect("(showing 2 tracks per reply)");
    pty.expect("you> ");
    // Ctrl-D on an empty line quits.
    pty.send("\x04");
    assert!(pty.wait(), "the REPL exits with success on Ctrl-D");

    let saved = std::fs::read_to_string(&history).expect("the history file is written");
    assert!(saved.contains("/help") && saved.contains("some upbeat pop please"));
    assert!(saved.contains("/k 2"), "{saved}");
    assert!(
        !saved.contains("cancelled"),
        "a cancelled line is not history: {saved}"
    );

    // A new session recalls the last line with Up.
    let mut pty = Pty::spawn(dir.path(), &args);
    pty.expect("you> ");
    pty.send("\x1b[A");
    pty.expect("/k 2");
    pty.send("\r");
    pty.expect("(showing 2 tracks per reply)");
    pty.send("/quit\r");
    assert!(pty.wait());
}

/// `music-crs chat` on the demo data with `input` piped to it, to the end of the input.
fn chat_piped(input: &[u8]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "chat", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_music-crs"))
        .args(["--quiet", "chat", "--config", config.to_str().unwrap()])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn repl_reads_piped_commands_and_messages() {
    let out = chat_piped(
        b"/help\n/k 2\nsome upbeat pop please\n/k 0\n/user nobody\n/reset\n/bogus\nmore like that\n",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("/user ID"), "{stdout}");
    assert!(stdout.contains("(showing 2 tracks per reply)"), "{stdout}");
    assert!(stdout.contains("/k takes a number from 1 to"), "{stdout}");
    assert!(
        stdout.contains("listener nobody (no profile in the users table)"),
        "{stdout}"
    );
    assert!(stdout.contains("(new conversation)"), "{stdout}");
    assert!(stdout.contains("unknown command /bogus"), "{stdout}");
    // Two replies, each with a header and two numbered rows.
    assert_eq!(stdout.matches("crs> ").count(), 2, "{stdout}");
    let rows = |n: &str| {
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("{n}. ")))
            .count()
    };
    assert_eq!((rows("1"), rows("2"), rows("3")), (2, 2, 0), "{stdout}");
    // Rows line up: the artist column starts at the same place in the header and each row.
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines.iter().position(|l| l.contains("title")).unwrap();
    let column = |line: &str, at: usize| line.chars().nth(at);
    let artist_at = lines[header].find("artist").unwrap();
    for row in &lines[header + 1..header + 3] {
        assert_eq!(column(row, artist_at - 1), Some(' '), "{stdout}");
        assert_ne!(column(row, artist_at), Some(' '), "{stdout}");
    }
}

#[test]
fn piped_lines_that_are_not_utf8_are_skipped_not_fatal() {
    let out = chat_piped(b"/k 2\r\nsome caf\xe9 jazz\nsome upbeat pop please\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 2: that line is not valid UTF-8"),
        "{stderr}"
    );
    // The line before (with a CRLF ending) and the line after are both handled.
    assert!(stdout.contains("(showing 2 tracks per reply)"), "{stdout}");
    assert_eq!(stdout.matches("crs> ").count(), 1, "{stdout}");
}

#[test]
fn version_names_the_compiled_features() {
    let dir = tempfile::tempdir().unwrap();
    let out = music_crs(dir.path(), &["--version"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("music-crs "), "{stdout}");
    for (feature, on) in [
        ("hub", cfg!(feature = "hub")),
        ("llama", cfg!(feature = "llama")),
        ("bert", cfg!(feature = "bert")),
    ] {
        assert_eq!(stdout.contains(feature), on, "{feature}: {stdout}");
    }
}

#[test]
fn completions_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = music_crs(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for command in [
            "run",
            "train-ranker",
            "evaluate",
            "validate",
            "demo-data",
            "chat",
        ] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let out = music_crs(dir.path(), &["completions", "tcsh"]);
    assert!(!out.status.success());
    // A reader that went away (`| head`) ends the command quietly, not with a panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_music-crs"))
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
}
