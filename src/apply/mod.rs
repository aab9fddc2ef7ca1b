//! Executing a plan against the host through the `Driver` seam (tokio, as parallel as the
//! graph allows). Not built yet: it arrives with the reconciler (issue 6).
