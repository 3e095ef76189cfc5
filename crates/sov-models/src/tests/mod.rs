#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod builder;
mod convert_tests;
mod gguf_tests;
mod manifest_tests;
mod safetensors_tests;
mod store_tests;
