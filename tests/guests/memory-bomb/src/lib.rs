//! Allocates and touches 1 MiB blocks forever: the host's memory limit must stop it.
use std::hint::black_box;

use powernode_sdk::{Context, Error, Info, Output, Step};

const MIB: usize = 1 << 20;

struct MemoryBomb;

impl Step for MemoryBomb {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "memory_bomb",
            env!("CARGO_PKG_VERSION"),
            "Allocates memory until stopped (test: memory limit)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = Vec::with_capacity(MIB);
            // Write every byte so the pages are really committed, not just reserved.
            block.resize(MIB, hoard.len() as u8 | 1);
            hoard.push(black_box(block));
            black_box(&mut hoard);
        }
    }
}

powernode_sdk::step!(MemoryBomb);
