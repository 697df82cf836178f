//! What `latchkey-local` serves besides the embedded-store server: the emulated Lambda path
//! (`latchkey-local lambda`), which the end-to-end tests of the function binaries use too.

pub mod emulator;
