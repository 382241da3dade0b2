//! dynalite for tests: the one launcher, [`wsadmin_dynalite::Dynalite`],
//! run from the checkout (`Dynalite::start`, `Dynalite::start_persistent`).

pub use wsadmin_dynalite::Dynalite;
