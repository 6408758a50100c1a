//! `nrt_load_collectives`: the cores of one SPMD program, each a model loaded with its
//! global device id and the device count, meeting at the collectives when they execute.
//!
//! On hardware the runtime connects the ranks (NeuronLink within an instance, EFA across);
//! here they are models in one process. The models loaded with the same program bytes and
//! device count form a *world*, one model per device id: a load joins the first world of
//! its program that has no model with its id yet, so loading rank 0..N−1 once gives one
//! world and loading them twice gives two. Each execute of a world member is its next
//! step: step `s` of every member meets at one communicator (the engine's
//! [`Communicator`]), and every member must execute once per step, each on its own
//! thread, as on hardware. A member that reaches a step after the others gave up on it
//! (a timeout) finds it stopped and fails at once, so the members stay in step; a member
//! that skips a step altogether (never calls `nrt_execute` for it) leaves its world out of
//! step until it is unloaded — the driver never does, it calls every core once a step. A member that fails — a bad tensor set, an engine error, a
//! hazard the emulator cannot replay across cores — stops the step for the others, which
//! return `NRT_EXEC_HW_ERR_COLLECTIVES`; the failing member returns its own status.

use super::*;
use statetensor_hlo::collective::{Communicator, Topology, DEFAULT_COLLECTIVE_TIMEOUT};
use std::hash::{Hash, Hasher};

/// What a model asks for when it is loaded with collectives.
pub(super) struct Join {
    /// `ctx_device_count`: how many cores run the program.
    pub devices: usize,
    /// `ctx_device_id`: which of them this model is.
    pub device: usize,
    /// The program's bytes, hashed: only models of one program meet.
    fingerprint: u64,
}

/// A model's place in a world.
pub(super) struct Seat {
    world: u64,
    /// Its device id.
    pub device: usize,
    /// How the world's cores are numbered (replicas × partitions).
    pub topology: Topology,
}

/// The models of one program loaded across cores, and the steps in flight.
pub(super) struct World {
    fingerprint: u64,
    /// Which device ids have a model.
    loaded: Vec<bool>,
    /// How many executes each device id has started.
    started: Vec<u64>,
    /// Each step in flight: its communicator, and how many members have not reached it.
    steps: HashMap<u64, (Arc<Communicator>, usize)>,
}

/// `NRT_STATUS nrt_load_collectives(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count, uint32_t ctx_device_id, uint32_t ctx_device_count, nrt_model_t **model)`.
///
/// Loads core `ctx_device_id` of a program run by `ctx_device_count` cores on NeuronCore
/// `vnc`. `NRT_INVALID` when the id is not below the count or the program's collectives
/// cannot run on that many cores.
///
/// # Safety
/// As `nrt_load`.
#[no_mangle]
pub unsafe extern "C" fn nrt_load_collectives(
    neff_bytes: *const c_void,
    size: usize,
    vnc: i32,
    _vnc_count: i32,
    ctx_device_id: u32,
    ctx_device_count: u32,
    model: *mut *mut c_void,
) -> NRT_STATUS {
    if neff_bytes.is_null() || ctx_device_count == 0 || ctx_device_id >= ctx_device_count {
        warn(&format!(
            "nrt_load_collectives: device {ctx_device_id} of {ctx_device_count}: the id must be below the count"
        ));
        return NRT_INVALID;
    }
    // SAFETY: the caller provides `size` readable bytes at `neff_bytes`.
    let bytes = unsafe { std::slice::from_raw_parts(neff_bytes as *const u8, size) };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    let join = Join {
        devices: ctx_device_count as usize,
        device: ctx_device_id as usize,
        fingerprint: h.finish(),
    };
    // SAFETY: forwarded under the same contract.
    unsafe { model::load_model(neff_bytes, size, vnc, model, Some(join)) }
}

/// Seats a model of `program` (already checked to run on `join.devices` cores) in the
/// first world of its program without its device id, or in a new one.
pub(super) fn seat(g: &mut Emu, join: Join, program: &Program) -> Seat {
    let topology = program
        .topology(join.devices)
        .expect("checked before the model was seated");
    let found = g.worlds.iter().find_map(|(&id, w)| {
        (w.fingerprint == join.fingerprint
            && w.loaded.len() == join.devices
            && !w.loaded[join.device])
            .then_some(id)
    });
    let id = found.unwrap_or_else(|| {
        let id = g.next_world;
        g.next_world += 1;
        g.worlds.insert(
            id,
            World {
                fingerprint: join.fingerprint,
                loaded: vec![false; join.devices],
                started: vec![0; join.devices],
                steps: HashMap::new(),
            },
        );
        id
    });
    let w = g.worlds.get_mut(&id).expect("just found or made");
    w.loaded[join.device] = true;
    // a model replacing one that left starts where the others are
    w.started[join.device] = w.started.iter().copied().max().unwrap_or(0);
    Seat {
        world: id,
        device: join.device,
        topology,
    }
}

/// Takes an unloaded model out of its world; a world left empty is removed.
pub(super) fn leave(g: &mut Emu, seat: &Seat) {
    if let Some(w) = g.worlds.get_mut(&seat.world) {
        w.loaded[seat.device] = false;
        if !w.loaded.contains(&true) {
            g.worlds.remove(&seat.world);
        }
    }
}

/// The communicator of this member's next step, shared with the other members' executes
/// of the same step.
pub(super) fn next_step(g: &mut Emu, seat: &Seat) -> Arc<Communicator> {
    let w = g
        .worlds
        .get_mut(&seat.world)
        .expect("a loaded model's world exists");
    let step = w.started[seat.device];
    w.started[seat.device] += 1;
    let members = w.loaded.len();
    let (comm, waiting) = w.steps.entry(step).or_insert_with(|| {
        (
            Arc::new(Communicator::new(members, DEFAULT_COLLECTIVE_TIMEOUT)),
            members,
        )
    });
    let comm = comm.clone();
    *waiting -= 1;
    if *waiting == 0 {
        w.steps.remove(&step);
    }
    comm
}

/// The status a world member returns when its step failed: its own failure's, or
/// `NRT_EXEC_HW_ERR_COLLECTIVES` when another member stopped it.
pub(super) fn failed_status(comm: &Communicator, me: usize, own: NRT_STATUS) -> NRT_STATUS {
    match comm.failed_core() {
        Some(core) if core != me => NRT_EXEC_HW_ERR_COLLECTIVES,
        _ => own,
    }
}
