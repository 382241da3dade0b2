//! `wsstack package`: the four handlers' Lambda zips, and a listing of
//! them on standard output.

use std::io::Write;

use anyhow::Result;

use crate::flags::PackageArgs;

pub fn run(args: PackageArgs, w: &mut dyn Write) -> Result<()> {
    let zips = wsadmin_deploy::package::package(args.arch, args.out.as_deref())?;
    w.write_all(wsadmin_deploy::package::listing(&zips).as_bytes())?;
    w.flush()?;
    Ok(())
}
