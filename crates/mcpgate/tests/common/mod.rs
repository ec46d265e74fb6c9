//! The one helper that cannot live in mcpgate-testkit: where Cargo put this package's `mcpgate`
//! binary. `env!("CARGO_BIN_EXE_mcpgate")` is defined only while compiling this package's
//! integration tests, so the testkit's process helpers take the path from here.

use std::path::Path;

pub fn gateway_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mcpgate"))
}
