//! wharf: a daemonless, declarative reconciler for Compose files.
//!
//! The pipeline (see DESIGN.md): [`compose`] loads and normalizes the Compose files,
//! [`graph`] turns the project into a dependency graph of resources, [`plan`] compares it with
//! the live host, [`apply`] carries the plan out through the side-effect modules
//! ([`runtime`], [`network`], [`image`], [`state`]). [`cli`] is the command line.
//! `compose`, `graph` and `plan` are pure and never import the side-effect modules
//! (`tests/it/layering.rs` enforces this).
#![deny(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod compose;
pub mod graph;
pub mod image;
pub mod network;
pub mod plan;
pub mod runtime;
pub mod state;
pub mod watch;
