//! What state tensors save, per backend: one kv-decoder step (statetensor_hlo::models) with
//! its KV cache kept on the device (`aliased`) against the same step with the cache copied
//! to the host and back (`round_trip`), at several cache sizes.
//!
//! - `sim/{aliased,round_trip}/<state bytes>`: the simulator's wall time per step (its
//!   modelled device time is what `statetensor bench` reports);
//! - `nrt-emu/{aliased,round_trip}/<state bytes>`: the libnrt driver over the emulator,
//!   through the real FFI path.
//!
//! Throughput is the state's bytes per step.

// criterion's macros generate undocumented items
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use statetensor_core::{HostTensor, StateInit, StatefulModel};
use statetensor_hlo::models;
use statetensor_open::{Backend, Bundle, Device, DeviceProfile};
use std::time::Duration;

const WIDTH: usize = 256;
const LENGTHS: [usize; 3] = [256, 4096, 32768];

fn inputs(m: &dyn StatefulModel) -> Vec<HostTensor> {
    let sig = m.signature();
    sig.input_params()
        .iter()
        .map(|&p| HostTensor::zeros(&sig.params[p]))
        .collect()
}

/// One step: aliased, or with every state written before and read after.
fn step(
    m: &dyn StatefulModel,
    set: &str,
    inputs: &[HostTensor],
    host: &mut [Vec<u8>],
    round_trip: bool,
) {
    let sig = m.signature();
    let names: Vec<&str> = sig
        .state_params()
        .iter()
        .map(|&p| sig.params[p].name.as_str())
        .collect();
    if round_trip {
        for (n, buf) in names.iter().zip(host.iter()) {
            m.write_state(set, n, 0, buf).unwrap();
        }
    }
    m.execute(set, inputs).unwrap();
    if round_trip {
        for (n, buf) in names.iter().zip(host.iter_mut()) {
            m.read_state(set, n, 0, buf).unwrap();
        }
    }
}

/// Both ways at every length; `device` makes the device a length's model is loaded on.
fn bench_backend(c: &mut Criterion, backend: &str, device: &dyn Fn() -> Device) {
    for way in ["aliased", "round_trip"] {
        let mut g = c.benchmark_group(format!("{backend}/{way}"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(300));
        for len in LENGTHS {
            let bundle = Bundle::from_text(&models::kv_decoder(len, WIDTH), "kv_decoder.hlo")
                .expect("the generated model parses");
            let m = device()
                .load(&bundle, &Default::default())
                .expect("the model loads");
            m.create_state_set("s", StateInit::Zeros).unwrap();
            let ins = inputs(&*m);
            let sig = m.signature().clone();
            let mut host: Vec<Vec<u8>> = sig
                .state_params()
                .iter()
                .map(|&p| vec![0u8; sig.params[p].size_bytes()])
                .collect();
            g.throughput(Throughput::Bytes(sig.state_bytes()));
            g.bench_function(BenchmarkId::from_parameter(sig.state_bytes()), |b| {
                b.iter(|| {
                    step(&*m, "s", &ins, &mut host, way == "round_trip");
                    // wrap the position before the cache is full
                    m.write_state("s", "pos", 0, &0i32.to_le_bytes()).unwrap();
                })
            });
            // sets belong to the device, which the driver's lengths share: free this one
            // before the next length creates its own
            m.drop_state_set("s").unwrap();
        }
        g.finish();
    }
}

fn sim(c: &mut Criterion) {
    bench_backend(c, "sim", &|| {
        Device::open(Backend::Sim, &DeviceProfile::inf2()).expect("a simulated device")
    });
}

fn nrt_emu(c: &mut Criterion) {
    let lib = nrt_emu::hook::built_library().expect("libnrt_emu.so is built as a dev-dependency");
    let device =
        Device::nrt_library(lib.to_str().unwrap()).expect("libnrt_emu.so loads through the driver");
    bench_backend(c, "nrt-emu", &|| device.clone());
}

criterion_group!(benches, sim, nrt_emu);
criterion_main!(benches);
