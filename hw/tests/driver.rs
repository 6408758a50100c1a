//! What is specific to the driver: library loading, NEFF name conventions, bindings.

use crate::{emulator, DriverHarness, DEVICE_LOCK};
use statetensor_conformance::contract::{self, ContractDevice, Harness};
use statetensor_conformance::{fixture_hlo, fixture_path};
use statetensor_core::{ErrorKind, StateInit, StatefulModel};
use statetensor_hlo::Bundle;
use statetensor_hw::{probe, NrtDevice, NrtModel};

#[test]
fn a_missing_library_lists_every_path_tried() {
    let e = NrtDevice::open(Some("/nonexistent/libnrt.so.1")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BackendUnavailable);
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/libnrt.so.1") && msg.contains("STATETENSOR_LIBNRT"),
        "{msg}"
    );
}

#[test]
fn probe_reports_the_emulated_runtime() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let info = probe(Some(emulator().to_str().unwrap())).unwrap();
    assert_eq!(
        info.visible_cores, 24,
        "an inf2.48xlarge unless STATETENSOR_EMU_CORES says"
    );
    assert!(info
        .version
        .unwrap_or_default()
        .contains("statetensor-nrt-emu"));
}

#[test]
fn torch_names_are_discovered_and_states_bound_in_place() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dev = NrtDevice::open(Some(emulator().to_str().unwrap())).unwrap();
    // the HLO text: a model.neff compiled into the fixture directory is for hardware
    let bundle = Bundle::from_text(&fixture_hlo("kv_decoder"), "kv_decoder").unwrap();
    let m = NrtModel::load(&dev, &bundle, &Default::default()).unwrap();
    let (ins, outs) = m.io_names();
    assert_eq!(ins[5], "input5");
    assert_eq!(outs[1], "output1");
    m.create_state_set("s", StateInit::Zeros).unwrap();
    assert_eq!(m.signature().returned_outputs(), vec![0]);
}

#[test]
fn bindings_json_maps_names_and_a_wrong_name_is_reported() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dev = NrtDevice::open(Some(emulator().to_str().unwrap())).unwrap();
    let dir = std::env::temp_dir().join(format!("statetensor-bindings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture_path("mlp_cache").join("model.hlo"),
        dir.join("model.hlo"),
    )
    .unwrap();
    std::fs::write(
        dir.join("bindings.json"),
        r#"{"inputs": {"x": "input0", "3": "input3"}, "outputs": {"1": "output1"}}"#,
    )
    .unwrap();
    NrtModel::open(&dev, &dir, &Default::default()).unwrap();
    std::fs::write(
        dir.join("bindings.json"),
        r#"{"inputs": {"nope": "input0"}}"#,
    )
    .unwrap();
    assert_eq!(
        NrtModel::open(&dev, &dir, &Default::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

/// The driver over an emulator with a fault armed from the start.
struct FaultyEmu(&'static str);

impl Harness for FaultyEmu {
    fn name(&self) -> String {
        format!("the driver over the emulator with fault '{}'", self.0)
    }

    fn device(&self) -> ContractDevice {
        let d = DriverHarness::emulated().device();
        crate::configure(self.0, 0);
        d
    }

    fn device_with_capacity(&self, bytes: u64) -> Option<ContractDevice> {
        let d = DriverHarness::emulated().device_with_capacity(bytes);
        crate::configure(self.0, 0);
        d
    }
}

#[test]
fn every_emulator_fault_mode_is_caught_by_the_contract_suite() {
    for fault in ["fail_execute:2", "lost_write", "hazard"] {
        let caught =
            std::panic::catch_unwind(|| contract::walkthrough_two_steps(&FaultyEmu(fault)))
                .is_err();
        assert!(caught, "the walkthrough did not notice fault mode {fault}");
    }
    // and without a fault it passes
    contract::walkthrough_two_steps(&DriverHarness::emulated());
}
