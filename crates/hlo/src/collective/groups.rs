//! Who takes part in a collective: XLA's replica groups, in both spellings, read under the
//! op's group mode and resolved to cores.
//!
//! XLA numbers a device by (replica, partition); statetensor's core `k` is replica
//! `k / partitions`, partition `k % partitions`, so a core's number is XLA's flattened
//! id `replica * partitions + partition`. Which ids a `replica_groups` list holds depends
//! on the op (XLA's `CollectiveOpGroupMode`):
//!
//! | channel_id | use_global_device_ids | the lists hold | a group is |
//! |---|---|---|---|
//! | absent | absent or false | replica ids | those replicas, within each partition |
//! | present | absent (all-to-all, collective-permute, ...) | partition ids | those partitions, within each replica |
//! | present | false | replica ids | those replicas × every partition |
//! | present | true | flattened ids | those cores |
//!
//! An empty list (`{}`) is one group of every id. Members are ordered as the list orders
//! them; that order is the order of all-gather's blocks and of a reduction's operands.

use super::Topology;

/// How the ids in `replica_groups` are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupMode {
    CrossReplica,
    CrossPartition,
    CrossReplicaAndPartition,
    FlattenedId,
}

impl GroupMode {
    /// XLA's rule from the two attributes; `use_global` is `None` for ops that do not have
    /// the attribute.
    pub(crate) fn of(has_channel: bool, use_global: Option<bool>) -> Result<GroupMode, String> {
        match (has_channel, use_global) {
            (false, Some(true)) => Err("use_global_device_ids=true needs a channel_id".to_string()),
            (false, _) => Ok(GroupMode::CrossReplica),
            (true, None) => Ok(GroupMode::CrossPartition),
            (true, Some(false)) => Ok(GroupMode::CrossReplicaAndPartition),
            (true, Some(true)) => Ok(GroupMode::FlattenedId),
        }
    }

    /// What the ids in a list are, for messages.
    fn ids(self) -> &'static str {
        match self {
            GroupMode::CrossReplica | GroupMode::CrossReplicaAndPartition => "replica",
            GroupMode::CrossPartition => "partition",
            GroupMode::FlattenedId => "device",
        }
    }

    /// How many ids there are under this mode.
    fn id_count(self, topo: Topology) -> usize {
        match self {
            GroupMode::CrossReplica | GroupMode::CrossReplicaAndPartition => topo.replicas,
            GroupMode::CrossPartition => topo.partitions,
            GroupMode::FlattenedId => topo.cores(),
        }
    }
}

/// A collective's `replica_groups` under its mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceGroups {
    pub mode: GroupMode,
    /// The lists as written; empty means one group of every id.
    pub groups: Vec<Vec<usize>>,
}

impl DeviceGroups {
    /// The cores in `core`'s group, in group order.
    pub(crate) fn participants(&self, core: usize, topo: Topology) -> Result<Vec<usize>, String> {
        let (replica, partition) = topo.coordinates(core);
        let count = self.mode.id_count(topo);
        let all: Vec<usize>;
        let groups: &[Vec<usize>] = if self.groups.is_empty() {
            all = (0..count).collect();
            std::slice::from_ref(&all)
        } else {
            &self.groups
        };
        for g in groups {
            if let Some(&bad) = g.iter().find(|&&id| id >= count) {
                return Err(self.out_of_range(bad, topo));
            }
        }
        let mine = match self.mode {
            GroupMode::CrossReplica | GroupMode::CrossReplicaAndPartition => replica,
            GroupMode::CrossPartition => partition,
            GroupMode::FlattenedId => core,
        };
        let mut found = groups.iter().filter(|g| g.contains(&mine));
        let group = match (found.next(), found.next()) {
            (Some(g), None) if g.iter().filter(|&&id| id == mine).count() == 1 => g,
            (None, _) => {
                return Err(format!(
                    "{} {mine} (core {core}) is in no group of replica_groups",
                    self.mode.ids()
                ))
            }
            _ => {
                return Err(format!(
                    "{} {mine} appears more than once in replica_groups",
                    self.mode.ids()
                ))
            }
        };
        Ok(match self.mode {
            GroupMode::CrossReplica => group.iter().map(|&r| topo.core(r, partition)).collect(),
            GroupMode::CrossPartition => group.iter().map(|&p| topo.core(replica, p)).collect(),
            GroupMode::CrossReplicaAndPartition => group
                .iter()
                .flat_map(|&r| (0..topo.partitions).map(move |p| topo.core(r, p)))
                .collect(),
            GroupMode::FlattenedId => group.clone(),
        })
    }

    fn out_of_range(&self, id: usize, topo: Topology) -> String {
        format!(
            "replica_groups names {} {id}, but {} has {} {}s; run it on more cores",
            self.mode.ids(),
            topo,
            self.mode.id_count(topo),
            self.mode.ids()
        )
    }

    /// The fewest cores on which every id the lists name exists (1 for `{}`).
    pub(crate) fn min_ids(&self) -> usize {
        self.groups
            .iter()
            .flatten()
            .map(|&i| i + 1)
            .max()
            .unwrap_or(1)
    }
}

/// `collective-permute`'s `source_target_pairs` under its mode (replica ids without a
/// channel, partition ids with one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PermutePairs {
    pub mode: GroupMode,
    pub pairs: Vec<(usize, usize)>,
}

impl PermutePairs {
    /// The cores that exchange with `core` (its replica's partitions, or its partition's
    /// replicas) in id order, and the index among them of the core that sends to `core`,
    /// if any.
    pub(crate) fn route(
        &self,
        core: usize,
        topo: Topology,
    ) -> Result<(Vec<usize>, Option<usize>), String> {
        let (replica, partition) = topo.coordinates(core);
        let (count, mine) = match self.mode {
            GroupMode::CrossPartition => (topo.partitions, partition),
            _ => (topo.replicas, replica),
        };
        let id_name = if self.mode == GroupMode::CrossPartition {
            "partition"
        } else {
            "replica"
        };
        for &(s, t) in &self.pairs {
            if s.max(t) >= count {
                return Err(format!(
                    "source_target_pairs names {id_name} {}, but {topo} has {count} {id_name}s; run it on more cores",
                    s.max(t)
                ));
            }
        }
        let set: Vec<usize> = (0..count)
            .map(|id| match self.mode {
                GroupMode::CrossPartition => topo.core(replica, id),
                _ => topo.core(id, partition),
            })
            .collect();
        let source = self
            .pairs
            .iter()
            .find(|&&(_, t)| t == mine)
            .map(|&(s, _)| s);
        Ok((set, source))
    }
}

/// Reads `replica_groups`: the list form `{{0,1},{2,3}}` (or `{}`); the iota form
/// `[G,S]<=[d0,d1,...]` with an optional `T(perm)`: the ids `0..d0*d1*...` laid out with
/// dimensions `d`, transposed by `perm`, read in row-major order into G groups of S; or
/// the mesh form `mesh['a'=2,'b'=4] {'b'}`: the ids laid out row-major over the mesh, one
/// group for each position of the axes not listed, its members along the listed axes
/// (row-major in the order listed).
pub(crate) fn parse_replica_groups(text: &str) -> Option<Vec<Vec<usize>>> {
    let t = text.trim();
    if t.starts_with('[') {
        return parse_iota_groups(t);
    }
    if let Some(mesh) = t.strip_prefix("mesh") {
        return parse_mesh_groups(mesh);
    }
    let inner = t.strip_prefix('{')?.strip_suffix('}')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let mut groups = Vec::new();
    let mut rest = inner;
    loop {
        rest = rest.trim_start();
        let body = rest.strip_prefix('{')?;
        let end = body.find('}')?;
        let ids = body[..end].trim();
        groups.push(if ids.is_empty() {
            Vec::new()
        } else {
            ids.split(',')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<Vec<usize>>>()?
        });
        rest = body[end + 1..].trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.is_empty() => return Some(groups),
            None => return None,
        }
    }
}

/// The most device ids an iota or mesh form may spell (far beyond any Neuron instance's
/// cores), so a mistyped size cannot allocate without bound.
const MAX_IOTA_IDS: usize = 1 << 20;

fn parse_mesh_groups(t: &str) -> Option<Vec<Vec<usize>>> {
    let body = t.trim_start().strip_prefix('[')?;
    let end = body.find(']')?;
    let mut axes: Vec<(String, usize)> = Vec::new();
    for part in body[..end].split(',') {
        let (name, size) = part.split_once('=')?;
        let name = name.trim().strip_prefix('\'')?.strip_suffix('\'')?;
        axes.push((name.to_string(), size.trim().parse().ok()?));
    }
    let chosen = body[end + 1..]
        .trim()
        .strip_prefix('{')?
        .strip_suffix('}')?;
    let mut listed = Vec::new();
    for name in chosen.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let name = name.strip_prefix('\'')?.strip_suffix('\'')?;
        let axis = axes.iter().position(|(n, _)| n == name)?;
        if listed.contains(&axis) {
            return None;
        }
        listed.push(axis);
    }
    let dims: Vec<usize> = axes.iter().map(|a| a.1).collect();
    let rest: Vec<usize> = (0..dims.len()).filter(|d| !listed.contains(d)).collect();
    // the transposition that puts the unlisted axes first: one group per their position
    let perm: Vec<usize> = rest.iter().chain(&listed).copied().collect();
    let size = listed
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(dims[d]))?;
    let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    let text = format!(
        "[{},{size}]<=[{}]T({})",
        total.checked_div(size)?,
        dims.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        perm.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    parse_iota_groups(&text)
}

fn bracket_list(s: &str) -> Option<(Vec<usize>, &str)> {
    let body = s.trim_start().strip_prefix('[')?;
    let end = body.find(']')?;
    let list = body[..end]
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    Some((list, &body[end + 1..]))
}

fn parse_iota_groups(t: &str) -> Option<Vec<Vec<usize>>> {
    let (shape, rest) = bracket_list(t)?;
    let [count, size] = shape[..] else {
        return None;
    };
    let (dims, rest) = bracket_list(rest.trim_start().strip_prefix("<=")?)?;
    let rest = rest.trim();
    let perm: Vec<usize> = if rest.is_empty() {
        (0..dims.len()).collect()
    } else {
        let body = rest.strip_prefix("T(")?.strip_suffix(')')?;
        body.split(',')
            .map(|x| x.trim().parse().ok())
            .collect::<Option<_>>()?
    };
    let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if total != count.checked_mul(size)?
        || total > MAX_IOTA_IDS
        || !crate::ir::is_permutation(&perm, dims.len())
    {
        return None;
    }
    // ids in the transposed order: walk the permuted dimensions row-major
    let tdims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let mut strides = vec![1usize; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * dims[d + 1];
    }
    let mut index = vec![0usize; dims.len()];
    let mut ids = Vec::with_capacity(total);
    for _ in 0..total {
        ids.push(index.iter().zip(&perm).map(|(&i, &p)| i * strides[p]).sum());
        for d in (0..tdims.len()).rev() {
            index[d] += 1;
            if index[d] < tdims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(ids.chunks(size.max(1)).map(<[usize]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(replicas: usize, partitions: usize) -> Topology {
        Topology {
            replicas,
            partitions,
        }
    }

    #[test]
    fn both_spellings_of_replica_groups_are_read() {
        assert_eq!(parse_replica_groups("{}"), Some(vec![]));
        assert_eq!(
            parse_replica_groups("{{0,1},{2,3}}"),
            Some(vec![vec![0, 1], vec![2, 3]])
        );
        assert_eq!(
            parse_replica_groups("{ {3, 1}, {0,2} }"),
            Some(vec![vec![3, 1], vec![0, 2]])
        );
        assert_eq!(
            parse_replica_groups("[1,4]<=[4]"),
            Some(vec![vec![0, 1, 2, 3]])
        );
        assert_eq!(
            parse_replica_groups("[2,2]<=[4]"),
            Some(vec![vec![0, 1], vec![2, 3]])
        );
        assert_eq!(
            parse_replica_groups("[2,2]<=[2,2]T(1,0)"),
            Some(vec![vec![0, 2], vec![1, 3]])
        );
        // the transposed array's element (a,b,c) is the original's (c,b,a) = 4c + 2b + a
        assert_eq!(
            parse_replica_groups("[4,2]<=[2,2,2]T(2,1,0)"),
            Some(vec![vec![0, 4], vec![2, 6], vec![1, 5], vec![3, 7]])
        );
        assert_eq!(
            parse_replica_groups("mesh['axis_0'=2,'axis_1'=2] {'axis_1'}"),
            Some(vec![vec![0, 1], vec![2, 3]])
        );
        assert_eq!(
            parse_replica_groups("mesh['x'=4,'y'=2] {'x'}"),
            Some(vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]])
        );
        assert_eq!(
            parse_replica_groups("mesh['x'=2,'y'=2] {'y','x'}"),
            Some(vec![vec![0, 2, 1, 3]])
        );
        for bad in [
            "mesh['x'=2] {'bogus'}",
            "mesh['x'=2] {'5'}",
            "{{0,1}",
            "[2,2]<=[5]",
            "[2,2]<=[2,2]T(0,0)",
            "{{a}}",
            "[4]<=[4]",
        ] {
            assert_eq!(parse_replica_groups(bad), None, "{bad}");
        }
    }

    #[test]
    fn modes_follow_xla_rule() {
        assert_eq!(GroupMode::of(false, None), Ok(GroupMode::CrossReplica));
        assert_eq!(
            GroupMode::of(false, Some(false)),
            Ok(GroupMode::CrossReplica)
        );
        assert!(GroupMode::of(false, Some(true)).is_err());
        assert_eq!(GroupMode::of(true, None), Ok(GroupMode::CrossPartition));
        assert_eq!(
            GroupMode::of(true, Some(false)),
            Ok(GroupMode::CrossReplicaAndPartition)
        );
        assert_eq!(GroupMode::of(true, Some(true)), Ok(GroupMode::FlattenedId));
    }

    #[test]
    fn participants_resolve_to_cores_under_each_mode() {
        let t = topo(2, 3); // cores: replica r, partition p = 3r + p
        let g = |mode, groups: Vec<Vec<usize>>| DeviceGroups { mode, groups };
        let cross_replica = g(GroupMode::CrossReplica, vec![]);
        assert_eq!(cross_replica.participants(4, t), Ok(vec![1, 4]));
        let cross_partition = g(GroupMode::CrossPartition, vec![vec![2, 0], vec![1]]);
        assert_eq!(cross_partition.participants(3, t), Ok(vec![5, 3]));
        assert_eq!(cross_partition.participants(4, t), Ok(vec![4]));
        let both = g(GroupMode::CrossReplicaAndPartition, vec![vec![1, 0]]);
        assert_eq!(both.participants(2, t), Ok(vec![3, 4, 5, 0, 1, 2]));
        let flat = g(GroupMode::FlattenedId, vec![vec![0, 5], vec![1, 2, 3, 4]]);
        assert_eq!(flat.participants(5, t), Ok(vec![0, 5]));
        assert!(flat
            .participants(5, topo(1, 4))
            .unwrap_err()
            .contains("device 5"));
        let missing = g(GroupMode::FlattenedId, vec![vec![0, 1]]);
        assert!(missing
            .participants(2, t)
            .unwrap_err()
            .contains("in no group"));
        let twice = g(GroupMode::FlattenedId, vec![vec![0, 1], vec![1, 2]]);
        assert!(twice
            .participants(1, t)
            .unwrap_err()
            .contains("more than once"));
    }

    #[test]
    fn permute_routes_within_the_replica_or_partition() {
        let t = topo(2, 2);
        let ring = PermutePairs {
            mode: GroupMode::CrossPartition,
            pairs: vec![(0, 1), (1, 0)],
        };
        assert_eq!(ring.route(3, t), Ok((vec![2, 3], Some(0))));
        let one_way = PermutePairs {
            mode: GroupMode::CrossReplica,
            pairs: vec![(0, 1)],
        };
        assert_eq!(one_way.route(1, t), Ok((vec![1, 3], None)));
        assert_eq!(one_way.route(3, t), Ok((vec![1, 3], Some(0))));
    }
}
