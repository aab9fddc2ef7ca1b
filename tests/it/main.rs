//! wharf's integration tests, in one binary (as ripgrep and uv do): fewer links, one place.
mod cli;
mod conformance;
mod image;
mod layering;
mod schema;
mod util;
