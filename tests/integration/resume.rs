//! Resumable runs on the real binary: `music-crs run` killed with SIGKILL at random points
//! and continued with `--resume` writes the same prediction file, byte for byte, as a run
//! never interrupted; a checkpoint of another run is refused; a run without `--resume`
//! replaces an old checkpoint and says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{expect_error, music_crs, text, write_config};

/// Turns in the demo test split.
const TURNS: usize = 1600;
/// Kills before the run is let finish.
const KILLS: usize = 8;
/// A run never takes this long, even on a loaded machine: a test that waits longer fails
/// rather than hang.
const PATIENCE: Duration = Duration::from_secs(300);

/// `music-crs run` of `config` into `output`, with info logs to `log` (stderr).
fn spawn_run(dir: &Path, config: &Path, output: &Path, extra: &[&str], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_music-crs"))
        .args(["run", "--config"])
        .arg(config)
        .arg("-o")
        .arg(output)
        .args(extra)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary starts")
}

/// Whole lines in the checkpoint (the header included); 0 when there is none.
fn whole_lines(checkpoint: &Path) -> usize {
    std::fs::read(checkpoint)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

/// The number logged right after `prefix`, at its first occurrence followed by digits.
fn number_after(log: &str, prefix: &str) -> Option<usize> {
    log.match_indices(prefix).find_map(|(at, _)| {
        let digits: String = log[at + prefix.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// The answered turns a resumed run found in its checkpoint, from its log line
/// `resuming from PATH: N of M turns already answered`.
fn resumed_from(log: &str) -> Option<usize> {
    let line = log
        .lines()
        .find(|line| line.contains("turns already answered"))?;
    let before = &line[..line.find(" of ")?];
    before.rsplit(' ').next()?.parse().ok()
}

fn kill(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // It may have finished by itself in between: then there is nothing to kill.
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
}

/// Waits until `child` ends by itself or `until` says to kill it; true when killed.
fn run_until(child: &mut Child, mut until: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if until() {
            kill(child);
            return true;
        }
        assert!(started.elapsed() < PATIENCE, "the run never ended");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_run_killed_at_random_points_and_resumed_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "resume", "");
    let reference = dir.path().join("reference.json");
    let out = music_crs(
        dir.path(),
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "-o",
            reference.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let seed = std::env::var("MUSIC_CRS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let output = dir.path().join("killed.json");
    let checkpoint = PathBuf::from(format!("{}.partial.jsonl", output.display()));
    let log = dir.path().join("run.log");
    // Small batches (3 turns, against 256 for the reference) make many kill points, and
    // check that how turns are batched changes no prediction.
    let batch = ["--batch-size", "3"];
    let mut history = Vec::new();
    let mut kills = 0;
    let mut resumed_with_progress = 0;
    while kills < KILLS {
        let answered = whole_lines(&checkpoint).saturating_sub(1);
        let extra: Vec<&str> = if history.is_empty() {
            batch.to_vec()
        } else {
            [&batch[..], &["--resume"]].concat()
        };
        let mut child = spawn_run(dir.path(), &config, &output, &extra, &log);
        // Most kills wait for the checkpoint to grow by a random number of turns; some come
        // after a random delay, which may fall in loading or in the final write.
        let by_delay = rng.random_bool(0.25);
        let started = Instant::now();
        let delay = Duration::from_millis(rng.random_range(0..400));
        let grow = rng.random_range(1..=300);
        let killed = run_until(&mut child, || {
            if by_delay {
                started.elapsed() >= delay
            } else {
                whole_lines(&checkpoint).saturating_sub(1) >= answered + grow
            }
        });
        let logged = std::fs::read_to_string(&log).unwrap();
        if let Some(reported) = resumed_from(&logged) {
            // The resumed run kept every turn the checkpoint held.
            assert_eq!(reported, answered, "seed {seed}: {logged}");
            resumed_with_progress += usize::from(reported > 0);
        }
        if !killed {
            // It finished before the kill: start over from no checkpoint.
            assert!(!checkpoint.exists(), "seed {seed}");
            history.push("finished".to_string());
            continue;
        }
        kills += 1;
        let lines = whole_lines(&checkpoint);
        // Now and then, cut the last line as a kill in the middle of a write would.
        let mut cut = 0;
        if lines > 1 && rng.random_bool(0.3) {
            let bytes = std::fs::read(&checkpoint).unwrap();
            cut = rng.random_range(1..=30);
            std::fs::write(&checkpoint, &bytes[..bytes.len() - cut]).unwrap();
        }
        history.push(format!(
            "killed after {} ({} turns in the checkpoint, {cut} bytes cut)",
            if by_delay {
                format!("{delay:?}")
            } else {
                format!("{grow} more turns")
            },
            lines.saturating_sub(1)
        ));
    }

    // The last resume runs to the end.
    let answered = whole_lines(&checkpoint).saturating_sub(1);
    let mut child = spawn_run(
        dir.path(),
        &config,
        &output,
        &[&batch[..], &["--resume"]].concat(),
        &log,
    );
    assert!(!run_until(&mut child, || false));
    let status = child.wait().unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "seed {seed}, {history:?}: {logged}");
    let context = format!("seed {seed}, {history:?}: {logged}");
    // Only the turns the checkpoint lacked were predicted.
    if answered > 0 {
        assert_eq!(resumed_from(&logged), Some(answered), "{context}");
        resumed_with_progress += 1;
    }
    assert_eq!(
        number_after(&logged, "predicted "),
        Some(TURNS - answered),
        "{context}"
    );
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&reference).unwrap(),
        "{context}"
    );
    assert!(!checkpoint.exists(), "{context}");
    // At least one run went on from turns an earlier one had answered.
    assert!(resumed_with_progress > 0, "{context}");
    eprintln!("kill test, seed {seed}: {history:?}; the last resume found {answered} turns");
}

#[test]
fn another_run_s_checkpoint_is_refused_and_a_fresh_run_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "refuse", "");
    let output = dir.path().join("out.json");
    let checkpoint = PathBuf::from(format!("{}.partial.jsonl", output.display()));
    let log = dir.path().join("run.log");
    let mut child = spawn_run(dir.path(), &config, &output, &["--batch-size", "2"], &log);
    assert!(
        run_until(&mut child, || whole_lines(&checkpoint) > 50),
        "the run ended before it was killed"
    );
    let config_arg = config.to_str().unwrap();
    let output_arg = output.to_str().unwrap();
    // Another --limit is another run.
    expect_error(
        dir.path(),
        &[
            "run", "--config", config_arg, "-o", output_arg, "--resume", "--limit", "100",
        ],
        "belongs to another run; differs: turns to predict: 1600 in the checkpoint, 100 now",
    );
    // So is another setting of the method.
    let out = music_crs(
        dir.path(),
        &[
            "run", "--config", config_arg, "-o", output_arg, "--resume", "-k", "10",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&checkpoint.display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("retriever.k: 20 in the checkpoint, 10 now"),
        "{stderr}"
    );
    assert!(checkpoint.exists(), "a refused checkpoint is kept");
    assert!(!output.exists());

    // A corrupt line in the middle is named, never skipped.
    let whole = std::fs::read_to_string(&checkpoint).unwrap();
    let mut lines: Vec<&str> = whole.lines().collect();
    lines[5] = "{not json";
    std::fs::write(&checkpoint, lines.join("\n") + "\n").unwrap();
    expect_error(
        dir.path(),
        &["run", "--config", config_arg, "-o", output_arg, "--resume"],
        &format!(
            "checkpoint {}, line 6: not a predicted turn",
            checkpoint.display()
        ),
    );

    // Without --resume the checkpoint is replaced, with a warning, and the run completes.
    let out = music_crs(
        dir.path(),
        &[
            "run", "--config", config_arg, "-o", output_arg, "--limit", "40",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "replacing the checkpoint {} of an earlier run",
            checkpoint.display()
        )),
        "{stderr}"
    );
    assert!(!checkpoint.exists());
    let written = music_crs::output::read_predictions(&output).unwrap();
    assert_eq!(written.len(), 40);

    // --resume with no checkpoint starts from the first turn.
    let out = music_crs(
        dir.path(),
        &[
            "run", "--config", config_arg, "-o", output_arg, "--limit", "40", "--resume",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        music_crs::output::read_predictions(&output).unwrap(),
        written
    );
}
