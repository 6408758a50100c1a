//! statetensor-sim: a NeuronCore simulator behind the
//! [`StatefulModel`](statetensor_core::StatefulModel) trait (docs/architecture.md §5).
//!
//! Design choices:
//! - **It really executes.** Models are XLA HLO text run by `statetensor-hlo`; outputs are
//!   the model's real outputs, computed exactly as the fixtures' JAX oracle does.
//! - **State lives "on the device".** A [`SimDevice`] owns named state sets; a state buffer
//!   is moved into each execute and the aliased output moved back, so state is updated in
//!   place (a one-row KV-cache update costs the row) and never crosses host↔device.
//! - **Capacity is accounted, not allocated.** Weights (constants), state, staging for
//!   inputs and outputs, and the execute's peak temporaries are charged to the profile's
//!   HBM; exceeding it is `OutOfDeviceMemory` with the numbers, and the ledger is left as
//!   it was. Host memory stays close to what the model really holds.
//! - **Time is modelled, never slept.** Every transfer and execute is charged with the
//!   profile's cost model in the model's
//!   [`TransferLedger`](statetensor_core::TransferLedger).
//! - **Same validation as every backend.** Alias maps, inputs, state-set lookup, locking,
//!   poisoning, byte ranges and copies are checked by `statetensor-core`, so the driver
//!   rejects what the simulator rejects.
//!
//! ```
//! use statetensor_core::{DType, HostTensor, StateInit, StatefulModel};
//! use statetensor_sim::{DeviceProfile, SimDevice, SimModel};
//! let text = "HloModule counter, input_output_alias={ {1}: (0, {}, may-alias) }
//! ENTRY e {
//!   x = s32[] parameter(0)
//!   c = s32[] parameter(1)
//!   n = s32[] add(c, x)
//!   ROOT t = (s32[], s32[]) tuple(c, n)
//! }";
//! let device = SimDevice::new(DeviceProfile::inf2());
//! let model = SimModel::load(&device, text, "counter.hlo", &Default::default()).unwrap();
//! model.create_state_set("seq0", StateInit::Zeros).unwrap();
//! let one = HostTensor::new(DType::S32, vec![], 1i32.to_le_bytes().to_vec()).unwrap();
//! model.execute("seq0", &[one.clone()]).unwrap();
//! let out = model.execute("seq0", &[one]).unwrap();
//! assert_eq!(out[0].data, 1i32.to_le_bytes()); // output 0 is the counter before the step
//! ```

mod device;
mod model;
mod profile;
mod sharded;

pub use device::{Fault, SimDevice};
pub use model::SimModel;
pub use profile::DeviceProfile;
pub use sharded::SimShardedModel;
