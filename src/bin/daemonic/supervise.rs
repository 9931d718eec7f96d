//! `--supervise`: stays as the program's parent (placeholder until the
//! supervisor lands).

use crate::args::Start;

pub fn run(_start: Start) -> i32 {
    eprintln!("daemonic: --supervise is not built yet");
    crate::exit::USAGE
}
