//! The engine's threads: the pool a step runs on, the helpers that keep its other threads
//! ready during a step, and the test every kernel makes before splitting its work.
//!
//! A step with helpers runs *on* one of the pool's threads, so a split kernel shares its
//! work with the thread that was already running it; a step without runs on the caller's
//! thread and never enters the pool. While a helped step runs, every other pool thread runs a
//! helper: it polls for work (taking every piece a kernel hands out) and stamps a
//! heartbeat each time round. A kernel splits only when a helper stamped it within the last
//! [`READY_WITHIN`] ([`helpers_ready`]); otherwise it runs on its own thread.
//!
//! Why: a split kernel waits for its slowest half. On a quiet machine the helpers are
//! running and take a half within a microsecond (waking a sleeping vCPU instead made a
//! kernel split in two slower than one thread; the README's engine notes give the figures).
//! On a busy machine the OS deschedules helpers to run other processes, and a half given to
//! a descheduled helper waited a whole scheduler slice: a decoder step beside one busy
//! process took 2.4x as long on two threads as on one. A stale heartbeat says the helper is
//! not running, so the kernel keeps its work.
//!
//! A helper that was descheduled notices (its polls, with no work between them, are more
//! than [`PREEMPTED`] apart): it stops helping, and the steps of the next [`BACKOFF`] start
//! no helpers at all, so the step's thread has a core to itself instead of sharing one with
//! a spinning helper; the backoff doubles while preemptions keep coming (up to
//! [`MAX_BACKOFF`]), and starts over after a calm spell. On a busy machine a threaded step
//! thus runs about as fast as on one thread; on a quiet one it splits as before.
//!
//! Helpers spin only briefly: with no work for [`SPIN`], a helper parks (its heartbeat goes
//! stale, so nothing is handed to it) until a kernel that would have split wakes it, or
//! [`PARK`] passes. Between kernels that come close together the helpers stay ready; a step
//! with long serial stretches does not burn a core on spinning, which on a shared machine
//! would slow the step's own thread too. The helpers end with the step.
//!
//! Over many steps, each program measures its steps both ways ([`SplitChoice`]): the
//! heartbeat and the backoff catch a helper that was descheduled, but not every way a
//! shared machine makes helping cost more than it gives (the step's own thread preempted by
//! its helper, a helper woken onto a core another process holds). The recent step times
//! with helpers and without decide how the next step runs, and one step in
//! [`SPLIT_EXPLORE`] runs the other way, so the choice follows the machine's load. The
//! times include handing a helped step to the pool and back, which a step alone skips: on
//! a busy machine the steps then run as fast as on one thread, or faster.
//!
//! Splitting depends on whether a helper is ready, never on what a result is: kernels split
//! their work by shape, never by thread count, and combine partial results in a fixed
//! order, so a step computes the same bits split or not.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A helper that polled this recently is running, and will take a half of a split kernel
/// at once.
const READY_WITHIN: Duration = Duration::from_micros(50);

/// A helper with no work for this long parks.
const SPIN: Duration = Duration::from_micros(300);

/// A parked helper looks again after this long, woken or not.
const PARK: Duration = Duration::from_millis(2);

/// A helper whose polls, with no work run between them, are further apart than this was
/// descheduled: the OS gave its core to another process.
const PREEMPTED: Duration = Duration::from_micros(300);

/// After a helper was descheduled, steps run without helpers for this long; each further
/// preemption within [`CALM`] of the last doubles it, up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A preemption this long after the previous one starts again from [`BACKOFF`].
const CALM: Duration = Duration::from_millis(500);

/// The pool's shared helper state: when a helper last polled, and who is parked.
struct Helpers {
    epoch: Instant,
    /// Nanoseconds after `epoch` of the latest poll of any helper; 0 for never.
    heartbeat: AtomicU64,
    parked: Mutex<Vec<Thread>>,
    parked_count: AtomicUsize,
    /// Nanoseconds after `epoch` before which steps start no helpers (the machine is busy).
    busy_until: AtomicU64,
    /// The current backoff, in nanoseconds.
    backoff: AtomicU64,
    /// Nanoseconds after `epoch` of the latest preemption seen.
    last_preempted: AtomicU64,
}

fn helpers() -> &'static Helpers {
    static HELPERS: OnceLock<Helpers> = OnceLock::new();
    HELPERS.get_or_init(|| Helpers {
        epoch: Instant::now(),
        heartbeat: AtomicU64::new(0),
        parked: Mutex::new(Vec::new()),
        parked_count: AtomicUsize::new(0),
        busy_until: AtomicU64::new(0),
        backoff: AtomicU64::new(BACKOFF.as_nanos() as u64),
        last_preempted: AtomicU64::new(0),
    })
}

impl Helpers {
    fn now(&self) -> u64 {
        // saturates after 584 years
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    fn beat(&self) {
        self.heartbeat.store(self.now(), Ordering::Relaxed);
    }

    fn wake_parked(&self) {
        if self.parked_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let woken = std::mem::take(&mut *self.parked.lock().unwrap_or_else(|e| e.into_inner()));
        self.parked_count.store(0, Ordering::Relaxed);
        woken.iter().for_each(Thread::unpark);
    }

    /// A helper was descheduled: steps run on one thread for the backoff, which doubles
    /// while preemptions keep coming.
    fn preempted(&self) {
        let now = self.now();
        let since = now.saturating_sub(self.last_preempted.swap(now, Ordering::Relaxed));
        let backoff = if since > (CALM + MAX_BACKOFF).as_nanos() as u64 {
            BACKOFF.as_nanos() as u64
        } else {
            (self.backoff.load(Ordering::Relaxed) * 2).min(MAX_BACKOFF.as_nanos() as u64)
        };
        self.backoff.store(backoff, Ordering::Relaxed);
        self.busy_until.store(now + backoff, Ordering::Relaxed);
    }

    fn machine_busy(&self) -> bool {
        self.now() < self.busy_until.load(Ordering::Relaxed)
    }

    fn park(&self) {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(std::thread::current());
        self.parked_count.fetch_add(1, Ordering::Relaxed);
        std::thread::park_timeout(PARK);
    }
}

/// Whether a kernel should split its work now: some other pool thread is running a helper
/// that polled within [`READY_WITHIN`]. When none is, parked helpers are woken for the
/// kernels that follow, and this kernel runs on its own thread.
pub(crate) fn helpers_ready() -> bool {
    // a step alone runs on the caller's thread, outside the pool: it has no helpers, and a
    // split there would hand work to a pool it is not part of
    let on_engine_pool = engine_pool().is_some_and(|p| p.current_thread_index().is_some());
    if !on_engine_pool || rayon::current_num_threads() < 2 {
        return false;
    }
    let h = helpers();
    let last = h.heartbeat.load(Ordering::Relaxed);
    if last != 0 && h.now().saturating_sub(last) <= READY_WITHIN.as_nanos() as u64 {
        return true;
    }
    h.wake_parked();
    false
}

/// Steps at the start of a program's life that run with helpers, uncounted: the first
/// steps with helpers run slower than later ones (on the development machine the first
/// three took up to twice as long), and would bias the choice.
const SPLIT_WARM_UP: u64 = 4;

/// Steps after the warm-up that measure both ways, alternating.
const SPLIT_TRIALS: u64 = 2 * SPLIT_SAMPLES as u64;

/// After the trials, one step in this many runs the way currently measured slower, so a
/// change of load (another process starting or ending) is noticed within a few hundred
/// steps, at a cost of a sixty-fourth of the difference on a machine whose load is steady.
const SPLIT_EXPLORE: u64 = 64;

/// Step times kept per way; their median is the way's figure.
const SPLIT_SAMPLES: usize = 5;

/// Whether a program's steps start helpers, decided by measuring its steps both ways as
/// they run: each step runs the way whose recent steps took less (the median of the last
/// [`SPLIT_SAMPLES`]), and one step in [`SPLIT_EXPLORE`] the other way, to follow the
/// machine's load. A median, not a mean: a shared machine's noise comes in outliers (a step
/// descheduled), and a few of them must not flip the choice. The heartbeat and the backoff react within a step; this is the guarantee
/// over many: where helping does not pay (a busy machine, cores that share too much), the
/// steps settle on one thread and are not slower than one thread would be. Which way a
/// step runs never changes its result.
#[derive(Debug, Default)]
pub(crate) struct SplitChoice {
    /// Steps started so far.
    steps: AtomicU64,
    helped: StepTimes,
    alone: StepTimes,
}

/// The latest step times of one way, in nanoseconds (0: no sample yet).
#[derive(Debug, Default)]
struct StepTimes {
    samples: [AtomicU64; SPLIT_SAMPLES],
    next: AtomicUsize,
}

impl StepTimes {
    fn record(&self, took: Duration) {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % SPLIT_SAMPLES;
        let nanos = took.as_nanos().clamp(1, u64::MAX as u128) as u64;
        self.samples[slot].store(nanos, Ordering::Relaxed);
    }

    /// The median of the samples taken; `u64::MAX` for none. Read every step: no allocation.
    fn median(&self) -> u64 {
        let mut samples: [u64; SPLIT_SAMPLES] =
            std::array::from_fn(|i| self.samples[i].load(Ordering::Relaxed));
        samples.sort_unstable();
        let taken = &samples[samples.iter().take_while(|&&s| s == 0).count()..];
        taken.get(taken.len() / 2).copied().unwrap_or(u64::MAX)
    }
}

impl SplitChoice {
    /// Runs a step `f` the way measured best: on one of `pool`'s threads with helpers on the
    /// others, or alone on the caller's thread. A step alone never enters the pool: handing
    /// it to a pool thread and back costs two wake-ups, which beside a busy process took
    /// ~150 µs of a 1.7 ms decoder step (the woken thread waits for a core). The time
    /// measured includes that hand-off, so the choice weighs what helping really costs.
    pub(crate) fn run<R: Send>(&self, pool: &rayon::ThreadPool, f: impl FnOnce() -> R + Send) -> R {
        let n = self.steps.fetch_add(1, Ordering::Relaxed);
        let helped = pool.current_num_threads() > 1 && self.helps(n) && !helpers().machine_busy();
        let start = Instant::now();
        let out = if helped {
            pool.install(|| with_helpers(f))
        } else {
            f()
        };
        if n >= SPLIT_WARM_UP {
            self.record(helped, start.elapsed());
        }
        out
    }

    /// Whether step `n` starts helpers.
    fn helps(&self, n: u64) -> bool {
        if n < SPLIT_WARM_UP + SPLIT_TRIALS {
            return n < SPLIT_WARM_UP || n % 2 == 0;
        }
        let faster_helped = self.helped.median() <= self.alone.median();
        faster_helped != (n % SPLIT_EXPLORE == 0)
    }

    fn record(&self, helped: bool, took: Duration) {
        if helped {
            self.helped.record(took)
        } else {
            self.alone.record(took)
        }
    }
}

/// Runs `f` on the current pool thread with a helper on each of the pool's other threads
/// for as long as `f` runs (see the module docs). [`SplitChoice::run`] has already decided
/// that the step is helped (the pool has other threads, the machine is not busy).
fn with_helpers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let count = rayon::current_num_threads().saturating_sub(1);
    /// Releases the helpers when the step ends, also when a kernel panics (the scope would
    /// otherwise wait for helpers polling forever, and a bug would hang instead of fail).
    struct Release<'a>(&'a AtomicBool);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
            helpers().wake_parked();
        }
    }
    let done = AtomicBool::new(false);
    let owner = rayon::current_thread_index();
    rayon::in_place_scope(|scope| {
        for _ in 0..count {
            scope.spawn(|_| {
                // the step's own thread may pick a helper up while it waits inside a
                // kernel; polling there would wait for itself
                if rayon::current_thread_index() != owner {
                    help(&done);
                }
            });
        }
        let _release = Release(&done);
        f()
    })
}

/// A helper's loop: take work while there is some, spin while there was some recently,
/// park otherwise; until `done`. A helper that finds it was descheduled stops helping for
/// the rest of the step and tells the steps that follow to start none for a while.
fn help(done: &AtomicBool) {
    let h = helpers();
    let mut idle_since = Instant::now();
    let mut last_poll = idle_since;
    while !done.load(Ordering::Acquire) {
        let now = Instant::now();
        if now.duration_since(last_poll) > PREEMPTED {
            h.preempted();
            while !done.load(Ordering::Acquire) {
                h.park();
            }
            return;
        }
        h.beat();
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle_since = Instant::now();
            last_poll = idle_since;
        } else if now.duration_since(idle_since) >= SPIN {
            h.park();
            idle_since = Instant::now();
            last_poll = idle_since;
        } else {
            last_poll = now;
            std::hint::spin_loop();
        }
    }
}

/// The engine's worker threads, one per core (or `RAYON_NUM_THREADS`). A step with helpers
/// runs *on* one of them (see the module docs). Run from the caller's thread instead, every parallel
/// kernel woke all the workers while the caller slept, and between kernels the spinning
/// workers competed with the caller for the cores: on two cores that was 86 context
/// switches and a quarter of the time of a large decoder step. `None` if the threads cannot
/// be started; then the step runs on the caller's thread.
pub(crate) fn engine_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("statetensor-hlo-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_settle_on_the_way_measured_faster_and_keep_trying_the_other() {
        let choice = SplitChoice::default();
        let trials = SPLIT_WARM_UP..SPLIT_WARM_UP + SPLIT_TRIALS;
        let helped_trials = trials.clone().filter(|&n| choice.helps(n)).count() as u64;
        assert_eq!(helped_trials, SPLIT_TRIALS / 2);
        assert!((0..SPLIT_WARM_UP).all(|n| choice.helps(n)));
        let later = trials.end..trials.end + 4 * SPLIT_EXPLORE;
        // helping measured slower: alone, but for one step in SPLIT_EXPLORE
        let ms = Duration::from_millis;
        for (helped, alone) in [(9, 6), (8, 7), (10, 6)] {
            choice.record(true, ms(helped));
            choice.record(false, ms(alone));
        }
        let helped = later.clone().filter(|&n| choice.helps(n)).count() as u64;
        assert_eq!(helped, 4);
        // one fast outlier does not flip the choice
        choice.record(true, ms(1));
        assert_eq!(later.clone().filter(|&n| choice.helps(n)).count(), 4);
        // the load changes: helped steps get faster, and the choice follows within a few
        choice.record(true, ms(3));
        choice.record(true, ms(3));
        let alone = later.filter(|&n| !choice.helps(n)).count() as u64;
        assert_eq!(alone, 4);
    }

    #[test]
    fn preemptions_close_together_double_the_backoff_up_to_its_cap() {
        let h = helpers();
        h.preempted();
        assert!(h.machine_busy());
        let first = h.backoff.load(Ordering::Relaxed);
        assert!(first >= BACKOFF.as_nanos() as u64);
        h.preempted();
        let second = h.backoff.load(Ordering::Relaxed);
        assert_eq!(second, (first * 2).min(MAX_BACKOFF.as_nanos() as u64));
        for _ in 0..64 {
            h.preempted();
        }
        assert_eq!(
            h.backoff.load(Ordering::Relaxed),
            MAX_BACKOFF.as_nanos() as u64
        );
        // leave the pool usable for other tests in this binary
        h.busy_until.store(0, Ordering::Relaxed);
    }
}
