#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixture;
mod gguf;
mod rules_tests;
mod store_tests;
