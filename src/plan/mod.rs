//! The planner: desired state (from the resource graph) against live state, as a plan of steps.
//!
//! Pure, like `compose` and `graph`: data in, data out. Not built yet — it arrives with the
//! reconciler (issue 6). Until then only [`crate::compose::hash`] exists, which the planner
//! will compare against the hash each container records.
