//! Plans for unit tests elsewhere in the crate.
use super::*;

/// A one-phase broadcast plan (raw WS would need a URL; this is Socket.IO, embedded).
pub fn broadcast_plan(
    publishers: u32,
    subscribers: u32,
    rooms: u32,
    room_size: Option<u32>,
) -> Plan {
    let mut text =
        String::from("[[phase]]\nname = \"b\"\nscenario = \"broadcast\"\nduration = \"1s\"\n");
    if publishers == 0 {
        text.push_str("server-publisher = \"lobby\"\n");
    } else {
        text.push_str(&format!("publishers = {publishers}\n"));
    }
    text.push_str(&format!("subscribers = {subscribers}\n"));
    match room_size {
        Some(m) => text.push_str(&format!("room-size = {m}\n")),
        None if rooms > 0 => text.push_str(&format!("rooms = {rooms}\n")),
        None => {}
    }
    from_toml(&text, "t", None, &RawOutput::default()).expect("valid test plan")
}
