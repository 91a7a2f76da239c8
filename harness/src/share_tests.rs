use super::*;
use crate::plan::tests_support::broadcast_plan;

/// Every room's publishers and subscribers land in one worker, rooms are dealt round
/// robin, and every client has exactly one owner.
#[test]
fn rooms_stay_whole_and_every_client_has_one_owner() {
    let plan = broadcast_plan(4, 40, 4, None);
    let owners = Owners::new(&plan, 3, false).unwrap();
    let layout = Layout::new(&plan);
    for c in 0..plan.max_clients() {
        let o = owners.owner(c);
        assert!(o < 3);
        if let Role::Publisher { room } | Role::Subscriber { room } = layout.role(0, c) {
            assert_eq!(o, room % 3, "client {c} in room {room}");
        }
    }
    let peaks = owners.per_worker_peak();
    assert_eq!(peaks.iter().sum::<u32>(), plan.max_clients());
    // Rooms 0 and 3 go to worker 0: 2 publishers + 20 subscribers; 1 and 2: 11 each.
    assert_eq!(peaks, vec![22, 11, 11]);
}

#[test]
fn one_worker_owns_everything() {
    let plan = broadcast_plan(2, 10, 2, None);
    let owners = Owners::new(&plan, 1, false).unwrap();
    assert!((0..plan.max_clients()).all(|c| owners.owner(c) == 0));
    let shard = (owners, Shard { index: 0, count: 1 });
    assert!(owns(Some(&shard), 5));
    assert!(owns(None, 5));
}

#[test]
fn procs_parse_and_auto_sizes_by_clients() {
    assert_eq!(Procs::parse("auto"), Ok(Procs::Auto));
    assert_eq!(Procs::parse(" 3 "), Ok(Procs::Exactly(3)));
    assert!(Procs::parse("-1").is_err());
    assert!(Procs::parse("lots").is_err());
    assert!(Procs::parse("5000").is_err());
    assert_eq!(Procs::Auto.local_workers(1), 1);
    assert_eq!(Procs::Auto.local_workers(CLIENTS_PER_PROC), 1);
    assert_eq!(Procs::Auto.local_workers(CLIENTS_PER_PROC + 1), 2);
    assert_eq!(Procs::Auto.local_workers(100_000), 7);
    assert_eq!(Procs::Exactly(4).local_workers(10), 4);
}

/// The server publisher's one room is split: its subscribers are dealt round robin, so the
/// workers hold equal shares of it.
#[test]
fn a_server_publisher_room_is_dealt_round_robin() {
    let plan = broadcast_plan(0, 30_001, 0, None);
    let owners = Owners::new(&plan, 3, false).unwrap();
    assert_eq!(owners.owner(0), 0);
    assert_eq!(owners.owner(1), 1);
    assert_eq!(owners.owner(5), 2);
    assert_eq!(owners.per_worker_peak(), vec![10_001, 10_000, 10_000]);
}

/// Fewer rooms than workers: the run is split, every client c in worker c mod N; a steered
/// run keeps its rooms whole instead, and so does a run against several targets.
#[test]
fn fewer_rooms_than_workers_split_the_run_unless_it_must_stay_whole() {
    let plan = broadcast_plan(2, 10, 1, None);
    let owners = Owners::new(&plan, 3, false).unwrap();
    assert!(owners.split());
    assert!((0..plan.max_clients()).all(|c| owners.owner(c) == c % 3));
    assert_eq!(owners.per_worker_peak(), vec![4, 4, 4]);
    let steered = Owners::new(&plan, 3, true).unwrap();
    assert!(!steered.split(), "a capacity search keeps rooms whole");
    assert!((0..plan.max_clients()).all(|c| steered.owner(c) == 0));
    let mut two = plan.clone();
    let (more, _) = crate::plan::Endpoint::parse("http://127.0.0.1:9/").unwrap();
    two.target.more.push(more);
    assert!(!Owners::new(&two, 2, false).unwrap().split());
    // Enough rooms: whole, as before.
    let rooms = broadcast_plan(3, 30, 3, None);
    assert!(!Owners::new(&rooms, 3, false).unwrap().split());
}

/// Whole rooms that would crowd one worker past its share: split; a steered run is refused
/// with why.
#[test]
fn a_room_too_large_for_one_worker_splits_the_run() {
    let plan = broadcast_plan(1, CLIENTS_PER_PROC + 10, 2, Some(CLIENTS_PER_PROC));
    let owners = Owners::new(&plan, 2, false).unwrap();
    assert!(owners.split());
    let peaks = owners.per_worker_peak();
    assert!(peaks.iter().all(|&p| p <= CLIENTS_PER_PROC), "{peaks:?}");
    let why = Owners::new(&plan, 2, true).unwrap_err();
    assert!(why.contains("capacity search"), "{why}");
}
