//! wharf's integration tests, in one binary (as ripgrep and uv do): fewer links, one place.
mod cgroup;
mod cli;
mod conformance;
mod dns;
mod events;
mod image;
mod layering;
mod lifecycle;
mod network;
mod networking;
mod ps;
mod registry;
// Not every test uses every helper of the harness.
#[allow(dead_code)]
mod registry_harness;
mod registry_harness_selftest;
mod replay;
mod run;
mod runtime;
mod schema;
mod up;
mod util;
