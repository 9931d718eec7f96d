//! Drops the unwind tables (`.eh_frame`) from this `panic = "abort"`
//! program, as the library's build.rs does for the `daemonic` command
//! (README, "Building tiny"): nothing here unwinds or prints a backtrace.
//! The C runtime's start files keep theirs: their start-up code names them.

use std::env;

const DISCARD_UNWIND_TABLES: &str = "SECTIONS { /DISCARD/ : { EXCLUDE_FILE(*crtbegin*.o *crtend*.o) *(.eh_frame) } } INSERT AFTER .text;\n";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // The C library once more, last on the link line: a build without LTO
    // (the debug profile) keeps the prebuilt `core`'s calls to `memcmp`,
    // which the linker meets after the `-lc` the program's `#[link]` adds
    // (a static libc.a gives only what was asked for before it).
    println!("cargo::rustc-link-arg=-lc");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let Some(out_dir) = env::var_os("OUT_DIR").filter(|_| linux) else {
        return;
    };
    let script = std::path::Path::new(&out_dir).join("discard-unwind-tables.ld");
    std::fs::write(&script, DISCARD_UNWIND_TABLES).expect("write the linker script");
    // rust-lld (aarch64 here) takes linker options as they are; a C
    // compiler driver wants them behind -Wl.
    if env::var("RUSTC_LINKER").is_ok_and(|linker| linker.ends_with("lld")) {
        println!("cargo::rustc-link-arg=-T");
        println!("cargo::rustc-link-arg={}", script.display());
    } else {
        println!("cargo::rustc-link-arg=-Wl,-T,{}", script.display());
    }
}
