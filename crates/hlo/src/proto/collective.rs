//! The attributes of a collective instruction, read from an `HloInstructionProto` and
//! spelled as HLO text spells them, so the planner reads both forms one way.

use super::list;
use super::messages::{HloInstructionProto, ReplicaGroup};

/// Collective attributes as HLO text spells them: `channel_id`, `use_global_device_ids`,
/// `replica_groups` (from whichever of the three fields holds them; the iota form as
/// `[G,S]<=[dims]T(perm)`), `source_target_pairs`.
pub(super) fn collective_attributes(i: &HloInstructionProto, add: &mut impl FnMut(&str, String)) {
    let groups = |gs: &[ReplicaGroup]| {
        let inner: Vec<String> = gs.iter().map(|g| list(&g.replica_ids)).collect();
        format!("{{{}}}", inner.join(","))
    };
    if i.channel_id > 0 {
        add("channel_id", i.channel_id.to_string());
    }
    if i.use_global_device_ids {
        add("use_global_device_ids", "true".into());
    }
    let iota = i.iota_collective_device_list.as_ref().or(i
        .collective_device_list
        .as_ref()
        .and_then(|l| l.iota_replica_group_list.as_ref()));
    let listed = i
        .collective_device_list
        .as_ref()
        .map(|l| &l.replica_groups)
        .filter(|g| !g.is_empty());
    if let Some(iota) = iota {
        let mut text = format!(
            "[{},{}]<={}",
            iota.num_replica_groups,
            iota.num_devices_per_group,
            list(&iota.iota_reshape_dims)
                .replace('{', "[")
                .replace('}', "]")
        );
        if !iota.iota_transpose_perm.is_empty() {
            let perm: Vec<String> = iota
                .iota_transpose_perm
                .iter()
                .map(|p| p.to_string())
                .collect();
            text.push_str(&format!("T({})", perm.join(",")));
        }
        add("replica_groups", text);
    } else if let Some(list) = listed {
        add("replica_groups", groups(list));
    } else if !i.replica_groups.is_empty() {
        add("replica_groups", groups(&i.replica_groups));
    }
    if !i.source_target_pairs.is_empty() {
        let pairs: Vec<String> = i
            .source_target_pairs
            .iter()
            .map(|p| format!("{{{},{}}}", p.source, p.target))
            .collect();
        add("source_target_pairs", format!("{{{}}}", pairs.join(",")));
    }
}

#[cfg(test)]
mod collective_tests {
    use super::*;
    use crate::proto::messages::{CollectiveDeviceListProto, IotaReplicaGroupListProto};

    fn groups_of(i: &HloInstructionProto) -> Option<String> {
        let mut found = None;
        collective_attributes(i, &mut |name, value| {
            if name == "replica_groups" {
                found = Some(value);
            }
        });
        found
    }

    #[test]
    fn replica_groups_are_read_from_whichever_field_holds_them() {
        let iota = IotaReplicaGroupListProto {
            num_replica_groups: 2,
            num_devices_per_group: 2,
            iota_reshape_dims: vec![2, 2],
            iota_transpose_perm: vec![1, 0],
        };
        // newer XLA: the instruction's own field
        let newer = HloInstructionProto {
            iota_collective_device_list: Some(iota.clone()),
            ..Default::default()
        };
        assert_eq!(groups_of(&newer).as_deref(), Some("[2,2]<=[2,2]T(1,0)"));
        // older XLA: inside collective_device_list
        let older = HloInstructionProto {
            collective_device_list: Some(CollectiveDeviceListProto {
                replica_groups: vec![],
                iota_replica_group_list: Some(iota),
            }),
            ..Default::default()
        };
        assert_eq!(groups_of(&older).as_deref(), Some("[2,2]<=[2,2]T(1,0)"));
        // an empty device list does not hide the legacy field
        let legacy = HloInstructionProto {
            collective_device_list: Some(CollectiveDeviceListProto::default()),
            replica_groups: vec![
                ReplicaGroup {
                    replica_ids: vec![0, 1],
                },
                ReplicaGroup {
                    replica_ids: vec![2, 3],
                },
            ],
            ..Default::default()
        };
        assert_eq!(groups_of(&legacy).as_deref(), Some("{{0,1},{2,3}}"));
    }
}
