//! Threads for our forward pass's pieces of work: a team of threads that spin between jobs
//! when called from outside rayon's pool, rayon's pool from inside it.
//!
//! Decoding one sequence of SmolLM2-135M runs 121 products a token, tens of microseconds
//! each on one thread. rayon's idle threads sleep between them, and waking one (and then the
//! caller, when the call came from outside the pool) costs about as much as the product: on
//! 2 cores one sequence decoded slower on 2 threads than on 1. The team's threads instead
//! spin for a moment after each job, so the next job starts at once, and the calling thread
//! takes pieces too; a thread that has seen no job for [`SPIN`] parks until the next one.
//! This is what llama.cpp's threads do between a token's operations.
//!
//! Work that already runs on rayon's threads (a batch's groups, one per thread) stays on
//! rayon: those threads are busy, and spinning team threads beside them would only take
//! their cores.
//!
//! (`micropool` offers a spinning pool whose callers take part, but its current releases need
//! a newer Rust than ours and its parallel loops need `paralight`'s optional sources; the
//! team needs one operation, a loop over pieces.)

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

/// How long a team thread spins for the next job before it parks: longer than the gaps
/// between a token's products (norms, attention, sampling), far shorter than a turn.
const SPIN: Duration = Duration::from_micros(500);

/// Where a call from this thread runs its pieces of work: rayon's thread count
/// (`RAYON_NUM_THREADS`, by default one per core) over the team or over rayon's pool, or this
/// thread alone (one thread, or already a team thread).
pub(crate) fn here() -> Here {
    let place = if ON_TEAM.with(std::cell::Cell::get) || rayon::current_num_threads() <= 1 {
        Place::Here
    } else if rayon::current_thread_index().is_some() {
        Place::Rayon
    } else {
        Place::Team
    };
    Here(place)
}

/// See [`here`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Here(Place);

impl Here {
    /// Threads the pieces may spread over, this one among them.
    pub(crate) fn threads(self) -> usize {
        match self.0 {
            Place::Here => 1,
            Place::Team | Place::Rayon => rayon::current_num_threads(),
        }
    }

    /// Whether pieces go to the team, whose jobs start far sooner than rayon's (so smaller
    /// work pays for splitting).
    pub(crate) fn spinning(self) -> bool {
        self.0 == Place::Team
    }

    /// Runs `work(piece)` once for every piece of `0..pieces`, over [`Here::threads`], and
    /// returns when all have run. A panic in a piece is raised again here once every piece
    /// has ended.
    pub(crate) fn for_each_piece(self, pieces: usize, work: &(dyn Fn(usize) + Sync)) {
        match if pieces > 1 { self.0 } else { Place::Here } {
            Place::Here => (0..pieces).for_each(work),
            Place::Team => {
                let turn = Team::global().and_then(|team| match team.caller.try_lock() {
                    Ok(turn) => Some((team, turn)),
                    // A panic raised by an earlier job poisons the turn, but `run` left the
                    // team as it found it.
                    Err(TryLockError::Poisoned(poisoned)) => Some((team, poisoned.into_inner())),
                    // Another thread (a second `serve` request) runs a job.
                    Err(TryLockError::WouldBlock) => None,
                });
                match turn {
                    Some((team, _turn)) => team.run(pieces, work),
                    None => on_rayon(pieces, work),
                }
            }
            Place::Rayon => on_rayon(pieces, work),
        }
    }
}

fn on_rayon(pieces: usize, work: &(dyn Fn(usize) + Sync)) {
    use rayon::prelude::*;
    (0..pieces).into_par_iter().for_each(work);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the calling thread alone: one thread, or already a team thread.
    Here,
    Team,
    Rayon,
}

std::thread_local! {
    static ON_TEAM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One published job: its pieces are claimed from `next` by whichever thread comes first.
struct Job {
    /// The caller's closure, its lifetime erased: valid until the caller has seen every
    /// piece end and every team thread leave the job (see [`Team::run`]).
    work: *const (dyn Fn(usize) + Sync + 'static),
    pieces: usize,
    next: AtomicUsize,
    ended: AtomicUsize,
    panicked: AtomicBool,
}

impl Job {
    /// Claims and runs pieces until none is left. Returns whether one panicked.
    fn take_pieces(&self) -> bool {
        let mut panicked = false;
        loop {
            let piece = self.next.fetch_add(1, Ordering::Relaxed);
            if piece >= self.pieces {
                return panicked;
            }
            // SAFETY: an unclaimed piece exists, so the caller has not returned from
            // `Team::run` (it waits for every piece to end), and `work` is alive.
            let work = unsafe { &*self.work };
            panicked |= catch_unwind(AssertUnwindSafe(|| work(piece))).is_err();
            self.ended.fetch_add(1, Ordering::Release);
        }
    }
}

/// The spinning threads (rayon's thread count minus the caller).
struct Team {
    /// The job being run, or null between jobs.
    job: AtomicPtr<Job>,
    /// Bumped for every job, so a thread joins each job once.
    epoch: AtomicUsize,
    /// Team threads between reading `job` and leaving it; the caller waits for 0 before
    /// the job (on its stack) goes away.
    inside: AtomicUsize,
    /// Team threads parked (or about to) on `wake`.
    parked: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    /// Held by the thread running a job: one caller at a time.
    caller: Mutex<()>,
}

impl Team {
    /// The process's team, started on first use with rayon's thread count less one; `None`
    /// when a thread could not be started (the work then goes to rayon).
    fn global() -> Option<&'static Team> {
        static TEAM: OnceLock<Option<&'static Team>> = OnceLock::new();
        *TEAM.get_or_init(|| {
            let team: &'static Team = Box::leak(Box::new(Team {
                job: AtomicPtr::new(ptr::null_mut()),
                epoch: AtomicUsize::new(0),
                inside: AtomicUsize::new(0),
                parked: AtomicUsize::new(0),
                sleep: Mutex::new(()),
                wake: Condvar::new(),
                caller: Mutex::new(()),
            }));
            for index in 1..rayon::current_num_threads() {
                let started = std::thread::Builder::new()
                    .name(format!("music-crs-team-{index}"))
                    .spawn(move || team.serve());
                if let Err(error) = started {
                    tracing::warn!(%error, "could not start a decoding thread; using rayon's");
                    return None;
                }
            }
            Some(team)
        })
    }

    /// A team thread's loop: wait for a new job, take pieces of it, repeat.
    fn serve(&self) {
        ON_TEAM.with(|on| on.set(true));
        let mut seen = self.epoch.load(Ordering::SeqCst);
        loop {
            seen = self.next_epoch(seen);
            self.inside.fetch_add(1, Ordering::SeqCst);
            let job = self.job.load(Ordering::SeqCst);
            if !job.is_null() {
                // SAFETY: `inside` counts this thread, so the caller keeps the job alive.
                let job = unsafe { &*job };
                if job.take_pieces() {
                    job.panicked.store(true, Ordering::Relaxed);
                }
            }
            self.inside.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Spins until the epoch differs from `seen`, parking after [`SPIN`]; returns it.
    fn next_epoch(&self, seen: usize) -> usize {
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            if epoch != seen {
                return epoch;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && started.elapsed() >= SPIN {
                break;
            }
        }
        let mut guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        self.parked.fetch_add(1, Ordering::SeqCst);
        // A job published after this check finds `parked` raised and takes the lock to
        // wake us, which it cannot get before `wait` releases it: no wake-up is lost.
        while self.epoch.load(Ordering::SeqCst) == seen {
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.parked.fetch_sub(1, Ordering::SeqCst);
        self.epoch.load(Ordering::SeqCst)
    }

    /// Publishes a job, takes pieces of it, and waits until every piece has ended and no
    /// team thread still looks at it.
    fn run(&self, pieces: usize, work: &(dyn Fn(usize) + Sync)) {
        // SAFETY: only the lifetime is erased; this function does not return while a team
        // thread can still call `work` (below).
        let work: &(dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(work) };
        let job = Job {
            work,
            pieces,
            next: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        };
        self.job
            .store(ptr::from_ref(&job).cast_mut(), Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) > 0 {
            drop(self.sleep.lock().unwrap_or_else(|e| e.into_inner()));
            self.wake.notify_all();
        }
        let panicked_here = job.take_pieces();
        // Every piece is claimed by now; wait for those team threads still running one.
        wait_until(|| job.ended.load(Ordering::Acquire) == pieces);
        self.job.store(ptr::null_mut(), Ordering::SeqCst);
        // A team thread counted in `inside` may yet read the job (to find no piece left).
        wait_until(|| self.inside.load(Ordering::SeqCst) == 0);
        if panicked_here || job.panicked.load(Ordering::Relaxed) {
            resume_unwind(Box::new("a piece of a decoding job panicked"));
        }
    }
}

/// Spins until `done`, yielding the core after a while (a team thread may have been
/// descheduled in the middle of its piece).
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < 1 << 12 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_runs_once_on_the_team_and_on_rayon() {
        for pieces in [0, 1, 2, 3, 17, 1000] {
            let counts: Vec<AtomicUsize> = (0..pieces).map(|_| AtomicUsize::new(0)).collect();
            let count = |piece: usize| {
                counts[piece].fetch_add(1, Ordering::Relaxed);
            };
            for _ in 0..50 {
                here().for_each_piece(pieces, &count);
            }
            // Inside a rayon pool the pieces go to rayon.
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap()
                .install(|| here().for_each_piece(pieces, &count));
            assert!(
                counts.iter().all(|c| c.load(Ordering::Relaxed) == 51),
                "{pieces} pieces"
            );
        }
    }

    #[test]
    fn callers_on_several_threads_each_get_all_their_pieces() {
        let sums: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|caller| {
                    scope.spawn(move || {
                        let total = AtomicUsize::new(0);
                        for _ in 0..200 {
                            here().for_each_piece(8, &|piece| {
                                total.fetch_add(piece + caller, Ordering::Relaxed);
                            });
                        }
                        total.into_inner()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (caller, sum) in sums.into_iter().enumerate() {
            assert_eq!(sum, 200 * (28 + 8 * caller));
        }
    }

    #[test]
    fn a_panicking_piece_is_raised_in_the_caller_after_the_others_ended() {
        let ran = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            here().for_each_piece(16, &|piece| {
                ran.fetch_add(1, Ordering::Relaxed);
                assert_ne!(piece, 5, "piece 5 fails");
            })
        }));
        assert!(result.is_err());
        assert_eq!(ran.load(Ordering::Relaxed), 16);
        // The team still works afterwards.
        let after = AtomicUsize::new(0);
        here().for_each_piece(16, &|_| {
            after.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(after.into_inner(), 16);
    }
}
