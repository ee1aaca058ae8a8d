//! Set-up shared by the examples (not an example itself: cargo builds `examples/*.rs` and
//! `examples/*/main.rs` only).

use std::path::Path;

use majlis_core::roster::RosterChain;
use majlis_core::{Profile, RosterChange};

/// A fresh org in `dir`: member `a` founds it and adds member `b`, and both hold the whole
/// roster. Returns each profile with its roster chain.
pub fn two_members(
    dir: &Path,
) -> majlis_core::Result<((Profile, RosterChain), (Profile, RosterChain))> {
    let a = Profile::init(&dir.join("a"), "a")?;
    a.org_create("bench")?;
    let b = Profile::init(&dir.join("b"), "b")?;
    b.org_join(a.org()?.expect("org"))?;
    let mut chain = a.chain()?;
    a.change_roster(
        &mut chain,
        &RosterChange::AddMember {
            name: "b".into(),
            device: b.device_id(),
            role: None,
        },
    )?;
    let mut bc = b.chain()?;
    b.apply_rosters(&mut bc, chain.versions().to_vec())?;
    Ok(((a, chain), (b, bc)))
}
