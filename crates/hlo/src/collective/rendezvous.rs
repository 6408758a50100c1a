//! Where the cores of one SPMD step meet: each core hands in its operands of a collective
//! and receives every member's, in group order.
//!
//! A meeting is keyed by its group (the member cores in order) and by how many collectives
//! the core has already issued on that group in this step: cores that run the same
//! program issue their collectives on a group in the same order, which is what XLA and the
//! Neuron runtime require of a program too. Every member then computes its own result from
//! the same contributions in the same order, so the results agree bit for bit across
//! cores without a second round.
//!
//! A core that fails aborts the step: the others stop waiting and return an error naming
//! it, rather than waiting for a contribution that will never come. A wait that lasts
//! longer than the timeout (a program whose cores issue different collectives) aborts the
//! step the same way, naming the cores that never arrived.

use crate::tensor::Tensor;
use statetensor_core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One core's operands of one collective.
pub(crate) type Contribution = Vec<Arc<Tensor>>;

/// The meeting point of one step's cores.
#[derive(Debug)]
pub struct Communicator {
    cores: usize,
    timeout: Duration,
    state: Mutex<Meetings>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Meetings {
    open: HashMap<(Vec<usize>, u64), Meeting>,
    aborted: Option<Abort>,
}

/// Why a step stopped, and the core whose own failure stopped it (the one that failed,
/// met an unlike collective or waited past the timeout); the other cores were stopped.
#[derive(Clone, Debug)]
struct Abort {
    core: usize,
    why: String,
}

#[derive(Debug)]
struct Meeting {
    /// The instruction the first member brought; every member must bring the same.
    site: String,
    parts: Vec<Option<Contribution>>,
    /// Members that have not yet collected the result.
    waiting: usize,
}

/// How long a core waits at a collective for the others by default.
pub const DEFAULT_COLLECTIVE_TIMEOUT: Duration = Duration::from_secs(120);

impl Communicator {
    /// A meeting point for `cores` cores, waiting at most `timeout` at any collective.
    pub fn new(cores: usize, timeout: Duration) -> Communicator {
        Communicator {
            cores,
            timeout,
            state: Mutex::new(Meetings::default()),
            changed: Condvar::new(),
        }
    }

    /// The number of cores.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Stops the step: every core waiting at a collective, and every core that arrives at
    /// one later, returns an error saying core `core` failed with `why`. The first reason
    /// is kept.
    pub fn abort(&self, core: usize, why: &str) {
        self.stop(
            self.lock(),
            Abort {
                core,
                why: format!("core {core} failed: {why}"),
            },
        );
    }

    /// Records the first reason the step stopped and wakes every waiting core.
    fn stop(&self, mut s: MutexGuard<'_, Meetings>, abort: Abort) {
        if s.aborted.is_none() {
            s.aborted = Some(abort);
        }
        drop(s);
        self.changed.notify_all();
    }

    /// The reason the step was aborted, if it was.
    pub fn aborted(&self) -> Option<String> {
        self.lock().aborted.as_ref().map(|a| a.why.clone())
    }

    /// The core whose own failure stopped the step, if it stopped: the others return
    /// errors only saying they were stopped, so a caller reporting one error reports its.
    pub fn failed_core(&self) -> Option<usize> {
        self.lock().aborted.as_ref().map(|a| a.core)
    }

    fn lock(&self) -> MutexGuard<'_, Meetings> {
        // a core that panicked while holding the lock left the map consistent (every
        // update is a single insert or remove), so its poison is ignored
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands in `mine` as member `me` of `group` at this core's `seq`-th collective on that
    /// group, from instruction `site`; returns every member's contribution in group order.
    /// Members that bring different instructions (cores whose control flow went apart)
    /// stop the step rather than combine unlike values.
    pub(crate) fn exchange(
        &self,
        op: &str,
        site: &str,
        group: &[usize],
        seq: u64,
        me: usize,
        mine: Contribution,
    ) -> Result<Vec<Contribution>> {
        if group.len() == 1 {
            return Ok(vec![mine]);
        }
        let key = (group.to_vec(), seq);
        let mut s = self.lock();
        if let Some(a) = &s.aborted {
            return Err(stopped(op, &a.why));
        }
        let meeting = s.open.entry(key.clone()).or_insert_with(|| Meeting {
            site: site.to_string(),
            parts: vec![None; group.len()],
            waiting: group.len(),
        });
        if meeting.site != site {
            let why = format!(
                "{op}: core {} reached {site} where another core of its group reached {} (cores must issue the same collectives in the same order)",
                group[me], meeting.site
            );
            let core = group[me];
            self.stop(
                s,
                Abort {
                    core,
                    why: why.clone(),
                },
            );
            return Err(Error::runtime("execute", why));
        }
        meeting.parts[me] = Some(mine);
        self.changed.notify_all();
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(a) = &s.aborted {
                return Err(stopped(op, &a.why));
            }
            let meeting = s
                .open
                .get_mut(&key)
                .expect("a meeting stays open until all collect");
            if meeting.parts.iter().all(Option::is_some) {
                let all: Vec<Contribution> = meeting.parts.iter().flatten().cloned().collect();
                meeting.waiting -= 1;
                if meeting.waiting == 0 {
                    s.open.remove(&key);
                }
                return Ok(all);
            }
            let now = Instant::now();
            if now >= deadline {
                let missing: Vec<usize> = group
                    .iter()
                    .zip(&meeting.parts)
                    .filter(|(_, p)| p.is_none())
                    .map(|(&c, _)| c)
                    .collect();
                let why = format!(
                    "{op}: core {} waited {:.0} s for cores {missing:?}, which never reached this collective (do all cores run the same program?)",
                    group[me],
                    self.timeout.as_secs_f64()
                );
                let core = group[me];
                self.stop(
                    s,
                    Abort {
                        core,
                        why: why.clone(),
                    },
                );
                return Err(Error::runtime("execute", why));
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn stopped(op: &str, why: &str) -> Error {
    Error::runtime("execute", format!("{op}: the step was stopped: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use statetensor_core::DType;

    fn scalar(v: f32) -> Contribution {
        vec![Arc::new(
            Tensor::from_f64s(DType::F32, &[], &[v as f64]).unwrap(),
        )]
    }

    #[test]
    fn every_member_receives_all_contributions_in_group_order() {
        let comm = Communicator::new(3, DEFAULT_COLLECTIVE_TIMEOUT);
        let group = [2, 0, 1];
        let results: Vec<Vec<f64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|me| {
                    let comm = &comm;
                    s.spawn(move || {
                        // two collectives in a row on the same group stay apart
                        let first = comm
                            .exchange("all-reduce", "a", &group, 0, me, scalar(me as f32))
                            .unwrap();
                        let second = comm
                            .exchange("all-reduce", "b", &group, 1, me, scalar(10.0 + me as f32))
                            .unwrap();
                        first
                            .iter()
                            .chain(&second)
                            .map(|c| c[0].to_f64_vec()[0])
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            assert_eq!(r, vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
        }
        assert!(comm.lock().open.is_empty());
    }

    #[test]
    fn an_abort_releases_the_waiting_cores_with_the_reason() {
        let comm = Communicator::new(2, DEFAULT_COLLECTIVE_TIMEOUT);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| comm.exchange("all-gather", "a", &[0, 1], 0, 0, scalar(1.0)));
            std::thread::sleep(Duration::from_millis(20));
            comm.abort(1, "input 0 has the wrong shape");
            let e = waiter.join().unwrap().unwrap_err();
            assert!(e.to_string().contains("core 1 failed"), "{e}");
        });
        // a second abort keeps the first reason and its core
        comm.abort(0, "stopped");
        assert_eq!(comm.failed_core(), Some(1));
        // and a core arriving later is refused at once
        let e = comm
            .exchange("all-gather", "a", &[0, 1], 1, 1, scalar(1.0))
            .unwrap_err();
        assert!(e.to_string().contains("wrong shape"), "{e}");
    }

    #[test]
    fn cores_that_bring_different_instructions_stop_the_step() {
        let comm = Communicator::new(2, DEFAULT_COLLECTIVE_TIMEOUT);
        std::thread::scope(|s| {
            let first =
                s.spawn(|| comm.exchange("all-reduce", "x in main", &[0, 1], 0, 0, scalar(1.0)));
            std::thread::sleep(Duration::from_millis(20));
            let e = comm
                .exchange("all-reduce", "y in main", &[0, 1], 0, 1, scalar(1.0))
                .unwrap_err();
            assert!(e.to_string().contains("reached y in main"), "{e}");
            assert!(first.join().unwrap().is_err());
        });
        // the core that met the unlike instruction is the one that failed
        assert_eq!(comm.failed_core(), Some(1));
    }

    #[test]
    fn a_core_that_never_arrives_times_out_naming_it() {
        let comm = Communicator::new(3, Duration::from_millis(50));
        let e = comm
            .exchange("all-reduce", "a", &[2, 0, 1], 0, 1, scalar(1.0))
            .unwrap_err();
        assert!(e.to_string().contains("cores [2, 1]"), "{e}");
        assert!(comm
            .aborted()
            .is_some_and(|why| why.contains("core 0 waited")));
        // the core that waited is the one that failed (member 1 of the group is core 0)
        assert_eq!(comm.failed_core(), Some(0));
    }
}
